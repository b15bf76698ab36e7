"""Reading and writing images with Pillow, with one clear error per way a file can be bad.

Inputs: anything Pillow opens (PNG, JPEG, WebP, TIFF, BMP, still GIF, ...); images with
several frames (animations, multi-page TIFF) are refused. The EXIF orientation is applied;
palette, grayscale, CMYK and 16-bit images become 8-bit RGB, or RGBA when they carry
transparency. A PNG whose pixel data stops early is refused (Pillow would fill the missing
rows with black). Outputs are written atomically (temporary file in the same folder, then
a rename), in the format named by the file extension; a SIGTERM during the write removes
the temporary file before the process exits.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import KMeansError, MissingDependencyError, ValidationError

# Raised in the main thread by SIGTERM while :func:`terminate_cleanly` is active (exit code 143);
# the ``kmeans`` command line's own handler raises the same class, so either reports it.
from kmeans.errors import Terminated as Terminated
from kmeans.io import write_atomic

UInt8Array = NDArray[np.uint8]


class ImageFileError(KMeansError, ValueError):
    """An input image that cannot be read, or an output that must not be written."""


def pil() -> Any:
    """The ``PIL.Image`` module, or a :class:`MissingDependencyError` with the install hint."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingDependencyError(
            f"image support needs Pillow ({exc}); install it with: pip install 'kmeans[image]'"
        ) from exc
    return Image


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    Image = pil()
    saved = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None:
        # Pillow refuses images above twice its limit (and only warns above it).
        Image.MAX_IMAGE_PIXELS = max(1, max_pixels // 2)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _bomb_message(path: object, exc: Exception, limit: int | None) -> str:
    return (
        f"{path}: refusing to decode a possible decompression bomb ({exc}). "
        f"If you trust this file, raise the limit: --max-pixels N on the command line, or "
        f"quantize(..., max_pixels=N) / PIL.Image.MAX_IMAGE_PIXELS in Python"
        + ("" if limit is None else f" (current limit {limit} pixels)")
    )


def to_rgb_or_rgba(image: Any) -> Any:
    """``image`` as mode ``RGB``, or ``RGBA`` when it has any transparency."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    has_alpha = mode in ("LA", "La", "PA", "RGBa") or "transparency" in image.info
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: keep the 8 most significant bits rather than Pillow's clipping.
        # Mode "I" (32-bit) is 16-bit data when it exceeds 255, else already 8-bit levels.
        arr = np.asarray(image, dtype=np.int64)
        wide = mode != "I" or int(arr.max()) > 255
        gray = np.clip(arr >> 8 if wide else arr, 0, 255).astype(np.uint8)
        return pil().fromarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(arr * 255.0 if arr.max() <= 1.0 else arr), 0, 255).astype(np.uint8)
        return pil().fromarray(np.repeat(gray[:, :, None], 3, axis=2))
    return image.convert("RGBA" if has_alpha else "RGB")


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> UInt8Array:
    """Read ``path`` as an ``(h, w, 3)`` RGB or ``(h, w, 4)`` RGBA uint8 array.

    ``max_pixels`` replaces Pillow's decompression-bomb limit for this call (``None``
    keeps Pillow's). Raises :class:`ImageFileError` naming the file and the problem.
    """
    pil()  # the install hint comes before any file check
    p = Path(path)
    if not p.exists():
        raise ImageFileError(f"{p}: no such file")
    if p.is_dir():
        raise ImageFileError(f"{p}: is a directory, not an image")
    try:
        data = p.read_bytes()
    except PermissionError as exc:
        raise ImageFileError(f"{p}: permission denied") from exc
    except OSError as exc:
        raise ImageFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    return decode_image(data, p, max_pixels=max_pixels)


def decode_image(data: bytes, name: object, *, max_pixels: int | None = None) -> UInt8Array:
    """Decode the bytes of an image file, as :func:`load_image`; ``name`` appears in errors."""
    Image = pil()
    from PIL import ImageOps, UnidentifiedImageError

    p = name
    try:
        with _pixel_limit(max_pixels), warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                frames = int(getattr(im, "n_frames", 1))
                if frames > 1:
                    raise ImageFileError(
                        f"{p}: has {frames} frames (an animation or a multi-page file); only still images "
                        "are quantized: extract a frame first, e.g. with Pillow's Image.seek"
                    )
                im.load()
                if im.format == "PNG":
                    check_png_data(p, data)
                im = ImageOps.exif_transpose(im)
                arr = np.asarray(to_rgb_or_rgba(im))
    except ImageFileError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageFileError(_bomb_message(p, exc, max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise ImageFileError(f"{p}: not an image that Pillow can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFileError(f"{p}: damaged or truncated image ({exc})") from exc
    return np.ascontiguousarray(arr, dtype=np.uint8)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # color type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_scanline_bytes(width: int, height: int, bits: int, channels: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines a PNG's IDAT stream must inflate to (each row: 1 filter byte + data)."""

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * channels * bits + 7) // 8)

    if not interlaced:
        return rows(width, height)
    # Adam7 pass (x0, y0, dx, dy): columns x0, x0 + dx, ... and rows y0, y0 + dy, ...
    return sum(rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def check_png_data(name: object, data: bytes) -> None:
    """Refuse a PNG whose IDAT stream inflates to fewer bytes than its header's rows need.

    Pillow stops quietly when the zlib stream ends early and leaves the remaining rows
    black; this inflates the stream once more (discarding the output) and counts the bytes.
    """
    pos, header, stream = 8, None, zlib.decompressobj()
    produced, seen_idat = 0, False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR" and len(body) >= 13:
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            seen_idat = True
            produced += _inflated_size(stream, body)
        elif seen_idat:
            break  # the IDAT chunks are consecutive; an APNG's later frames are in fdAT
    if header is None or header[3] not in _PNG_CHANNELS:
        return
    width, height, bits, color_type, _, _, interlace = header
    channels = _PNG_CHANNELS[color_type]
    needed = _png_scanline_bytes(width, height, bits, channels, interlace == 1)
    if produced < needed:
        rows = produced // (1 + (width * channels * bits + 7) // 8)
        what = f"ends after {rows} of {height} rows" if interlace != 1 else f"holds {produced} of {needed} bytes"
        raise ImageFileError(f"{name}: damaged or truncated image (its pixel data {what})")


def _inflated_size(stream: Any, chunk: bytes) -> int:
    """Bytes ``chunk`` inflates to in ``stream``, in 1 MiB pieces so memory stays small."""
    total = 0
    piece = stream.decompress(chunk, 1 << 20)
    while piece:
        total += len(piece)
        if stream.eof:
            break
        piece = stream.decompress(stream.unconsumed_tail, 1 << 20)
    return total


def as_image_array(image: Any) -> UInt8Array:
    """An ``(h, w, 3|4)`` uint8 array from an array (RGB, RGBA or 2-D grayscale) or a PIL image."""
    if hasattr(image, "mode") and hasattr(image, "size") and not isinstance(image, np.ndarray):
        from PIL import ImageOps

        return np.ascontiguousarray(np.asarray(to_rgb_or_rgba(ImageOps.exif_transpose(image))), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValidationError(
            f"an image array must have shape (height, width), (height, width, 3) or (height, width, 4); got {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValidationError(f"the image is empty (shape {arr.shape})")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "biuf":
            raise ValidationError(f"image arrays must be numeric (uint8 levels 0..255); got dtype {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValidationError("the image array contains NaN or infinite values")
        if arr.min() < 0 or arr.max() > 255:
            raise ValidationError(
                f"image values must be 8-bit levels in [0, 255]; got values in [{arr.min()}, {arr.max()}]"
            )
        arr = np.rint(arr).astype(np.uint8)
    return np.ascontiguousarray(arr)


def output_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format name for ``path``'s extension (``.png`` → ``PNG``)."""
    Image = pil()
    ext = Path(path).suffix.lower()
    Image.preinit()  # PNG, JPEG, GIF, BMP, PPM: loading every plugin costs ~50 ms of start-up
    fmt = Image.EXTENSION.get(ext) or Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageFileError(
            f"{path}: cannot tell the output format from the extension {ext or '(none)'!r}; "
            "use .png, .webp, .tif, .bmp, .gif or .jpg"
        )
    return str(fmt)


#: Formats whose decoded pixels differ from what was encoded.
LOSSY_FORMATS = frozenset({"JPEG", "MPO"})


class LossyOutputWarning(UserWarning):
    """The output format is lossy: the file holds other colors than the palette image."""


# GIF keeps one bit of transparency, not an alpha channel untouched.
_NO_ALPHA = frozenset({"JPEG", "BMP", "GIF", "PPM", "PCX", "EPS", "MPO"})


def check_output(path: str | os.PathLike[str], *, has_alpha: bool, indexed: bool | None, overwrite: bool) -> str:
    """Check before any work that ``path`` can be written; return its Pillow format.

    ``indexed``: ``True`` demands a palette PNG, ``False`` truecolor, ``None`` lets
    :func:`save_image` choose.
    """
    p = Path(path)
    fmt = output_format(p)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ImageFileError(f"{p}: output directory {parent} does not exist (create it first)")
    if p.is_dir():
        raise ImageFileError(f"{p}: is a directory; give a file name for the output")
    if p.exists() and not overwrite:
        raise ImageFileError(f"{p}: already exists; pass overwrite=True to replace it")
    if indexed and fmt != "PNG":
        raise ImageFileError(f"{p}: indexed output is written as a palette PNG; use a .png file name")
    if has_alpha and fmt in _NO_ALPHA:
        raise ImageFileError(f"{p}: {fmt} cannot store the alpha channel of the input; use .png, .webp or .tif")
    return fmt


#: zlib level of PNG outputs: Pillow's and zlib's default. Level 9 saves 1-3% on
#: quantized photos for about 4x the encoding time; ``optimize`` made them larger.
PNG_COMPRESS_LEVEL = 6


@attrs.frozen(eq=False)
class EncodedImage:
    """An encoded output: Pillow ``format``, the ``mode`` written (``P`` palette, ``L``/``LA``
    gray, ``RGB``/``RGBA`` truecolor) and the file's bytes."""

    format: str
    mode: str
    data: bytes


def _is_gray(rgb: UInt8Array) -> bool:
    flat = rgb.reshape(-1, rgb.shape[-1])
    return bool(np.array_equal(flat[:, 0], flat[:, 1]) and np.array_equal(flat[:, 1], flat[:, 2]))


def palette_order(palette: UInt8Array) -> NDArray[np.intp]:
    """The order a palette file stores ``palette`` in: translucent entries first (so the
    PNG ``tRNS`` chunk, which lists alphas up to the last translucent entry, stays short),
    then by luma ``0.299 R + 0.587 G + 0.114 B`` (ties by index).

    Neighbouring pixels then tend to have neighbouring indices, which zlib compresses
    better: china.jpg at k=16 shrinks from 66,561 to 61,529 bytes, flower.jpg from 35,189
    to 31,411 (under 0.2% either way at k=64 and 256). The decoded image is the same.
    """
    luma = palette[:, :3].astype(np.int64) @ np.array([299, 587, 114], dtype=np.int64)
    opaque = palette[:, 3] == 255 if palette.shape[1] == 4 else np.ones(palette.shape[0], dtype=bool)
    return np.lexsort((np.arange(palette.shape[0]), luma, opaque)).astype(np.intp)


def encode_image(
    pixels: UInt8Array,
    fmt: str,
    *,
    palette: UInt8Array | None = None,
    labels: NDArray[np.intp] | None = None,
) -> EncodedImage:
    """Encode ``pixels`` as ``fmt``; with ``palette`` and ``labels``, as a palette image (mode
    ``P``: each pixel stores ``labels``, an index into ``palette``, at most 256 entries; an
    RGBA palette's alpha goes into the PNG's ``tRNS`` chunk, as pngquant writes it).

    A truecolor image whose pixels are all gray (R = G = B) is written as ``L`` (``LA``
    with alpha): the same pixels, a third of the samples.
    """
    Image = pil()
    buf = io.BytesIO()
    options: dict[str, Any] = {}
    if fmt == "PNG":
        options = {"compress_level": PNG_COMPRESS_LEVEL}
    elif fmt == "JPEG":
        options = {"quality": 95, "subsampling": 0}
    elif fmt == "WEBP":
        options = {"lossless": True}
    if palette is not None and labels is not None:
        h, w = pixels.shape[:2]
        order = palette_order(palette)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        im = Image.frombytes("P", (w, h), np.ascontiguousarray(rank[labels], dtype=np.uint8).tobytes())
        rawmode = "RGBA" if palette.shape[1] == 4 else "RGB"
        im.putpalette(np.ascontiguousarray(palette[order], dtype=np.uint8).reshape(-1).tobytes(), rawmode=rawmode)
    else:
        rgb = palette[:, :3] if palette is not None else pixels[:, :, :3]
        if fmt != "GIF" and _is_gray(rgb):
            keep: int | list[int] = [0, 3] if pixels.shape[2] == 4 else 0
            im = Image.fromarray(np.ascontiguousarray(pixels[:, :, keep]))
        else:
            im = Image.fromarray(pixels)
    im.save(buf, format=fmt, **options)
    return EncodedImage(fmt, str(im.mode), buf.getvalue())


def save_image(
    path: str | os.PathLike[str],
    pixels: UInt8Array,
    *,
    palette: UInt8Array | None = None,
    labels: NDArray[np.intp] | None = None,
    indexed: bool | None = None,
    overwrite: bool = False,
) -> EncodedImage:
    """Write ``pixels`` to ``path`` atomically, in the format of its extension; return what was written.

    Given the ``palette`` and the per-pixel ``labels``, a GIF, and a PNG unless
    ``indexed=False`` (or the palette has more than 256 entries, when ``indexed`` is not
    ``True``), are written as a palette image holding exactly those colors (and alphas):
    the smallest honest file (a GIF written from RGB would otherwise be re-quantized by
    Pillow). Gray images are written as gray, see :func:`encode_image`.
    """
    fmt = check_output(path, has_alpha=pixels.shape[2] == 4, indexed=indexed, overwrite=overwrite)
    encoded = encode_output(pixels, fmt, palette=palette, labels=labels, indexed=indexed, name=path)
    with terminate_cleanly():
        write_atomic(path, encoded.data)
    return encoded


def encode_output(
    pixels: UInt8Array,
    fmt: str,
    *,
    palette: UInt8Array | None = None,
    labels: NDArray[np.intp] | None = None,
    indexed: bool | None = None,
    name: object = "the output",
) -> EncodedImage:
    """Encode as :func:`save_image` writes (palette or truecolor, by the same rule), without writing."""
    n_colors = None if palette is None or labels is None else palette.shape[0]
    if fmt == "GIF" or indexed:
        as_palette = n_colors is not None
    else:
        as_palette = fmt == "PNG" and indexed is None and n_colors is not None and n_colors <= 256
    if as_palette and n_colors is not None and n_colors > 256:
        raise ImageFileError(f"{name}: a {fmt} palette holds at most 256 colors; got {n_colors}")
    return encode_image(pixels, fmt, palette=palette, labels=labels if as_palette else None)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Make SIGTERM raise :class:`Terminated` inside the block, so ``finally`` clauses (the
    atomic writer's removal of its temporary file) run before the process exits.

    Only the main thread can set handlers, and a handler someone else installed is left
    in place; the previous handler comes back after the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
