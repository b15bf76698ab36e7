"""Reading every common format, mode and orientation; refusing bad files with a clear error."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from image_helpers import KNOWN_COLORS, tiled_image
from PIL import Image

from kmeans.image import ImageFileError, load_image, save_image

IMAGE = tiled_image(KNOWN_COLORS, 6, 8)


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".bmp", ".gif"])
def test_lossless_formats_load_as_the_exact_rgb_pixels(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"img{ext}"
    Image.fromarray(IMAGE).save(path, **({"lossless": True} if ext == ".webp" else {}))
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (6, 8, 3)
    assert np.array_equal(loaded, IMAGE)


def test_jpeg_loads_as_rgb_of_the_right_shape(tmp_path: Path) -> None:
    Image.fromarray(IMAGE).save(tmp_path / "img.jpg", quality=95)
    loaded = load_image(tmp_path / "img.jpg")
    assert loaded.shape == (6, 8, 3)
    assert np.abs(loaded.astype(int) - IMAGE).mean() < 40  # lossy, but the same picture


def test_a_gif_animation_is_refused_rather_than_cut_to_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.fromarray(IMAGE), Image.fromarray(IMAGE[::-1].copy())]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageFileError, match=r"anim\.gif: has 2 frames"):
        load_image(tmp_path / "anim.gif")


def _png(width: int, height: int, scanlines: bytes, interlace: int = 0) -> bytes:
    """An 8-bit RGB PNG whose IDAT holds ``scanlines`` (filter bytes included), one complete zlib stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")
    )


def test_a_png_whose_pixel_data_holds_one_row_of_64_is_refused_not_filled_with_black(tmp_path: Path) -> None:
    row = b"\x00" + bytes([200, 100, 50]) * 64
    (tmp_path / "one-row.png").write_bytes(_png(64, 64, row))
    with pytest.raises(ImageFileError, match=r"one-row\.png: damaged or truncated image .*after 1 of 64 rows"):
        load_image(tmp_path / "one-row.png")
    (tmp_path / "full.png").write_bytes(_png(64, 64, row * 64))
    assert (load_image(tmp_path / "full.png") == [200, 100, 50]).all()


def test_an_interlaced_png_is_checked_against_its_seven_passes(tmp_path: Path) -> None:
    w, h = 5, 3  # the Adam7 passes of a 5x3 image as (columns, rows); the third pass is empty
    passes = [(1, 1), (1, 1), (0, 0), (1, 1), (3, 1), (2, 2), (5, 1)]
    assert sum(c * r for c, r in passes) == w * h
    data = b"".join((b"\x00" + bytes([9, 99, 199]) * cols) * rows for cols, rows in passes)
    (tmp_path / "ok.png").write_bytes(_png(w, h, data, interlace=1))
    assert (load_image(tmp_path / "ok.png") == [9, 99, 199]).all()
    (tmp_path / "short.png").write_bytes(_png(w, h, data[:-4], interlace=1))
    with pytest.raises(ImageFileError, match=r"short\.png: damaged or truncated image"):
        load_image(tmp_path / "short.png")


def test_grayscale_is_converted_to_rgb(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    loaded = load_image(tmp_path / "gray.png")
    assert loaded.shape == (6, 8, 3)
    assert np.array_equal(loaded[:, :, 0], gray) and np.array_equal(loaded[:, :, 2], gray)


def test_sixteen_bit_grayscale_keeps_its_most_significant_byte(tmp_path: Path) -> None:
    gray = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "gray16.png")
    assert np.array_equal(load_image(tmp_path / "gray16.png")[:, :, 1], (gray >> 8).astype(np.uint8))


def test_a_palette_image_is_converted_to_rgb(tmp_path: Path) -> None:
    Image.fromarray(IMAGE).quantize(4).save(tmp_path / "pal.png")
    assert np.array_equal(load_image(tmp_path / "pal.png"), IMAGE)


def test_a_palette_image_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = Image.fromarray(IMAGE).quantize(4)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    loaded = load_image(tmp_path / "pal.png")
    assert loaded.shape == (6, 8, 4)
    assert set(np.unique(loaded[:, :, 3]).tolist()) == {0, 255}


def test_grayscale_with_alpha_becomes_rgba(tmp_path: Path) -> None:
    la = np.stack([np.full((6, 8), 90, np.uint8), np.arange(48, dtype=np.uint8).reshape(6, 8)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    assert loaded.shape == (6, 8, 4)
    assert np.array_equal(loaded[:, :, 3], la[:, :, 1])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.fromarray(IMAGE)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "rot.png", exif=exif)
    loaded = load_image(tmp_path / "rot.png")
    assert loaded.shape == (8, 6, 3)
    assert np.array_equal(loaded, np.rot90(IMAGE, k=-1))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match=r"missing\.png: no such file"):
        load_image(tmp_path / "missing.png")


def test_a_file_that_is_not_an_image_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageFileError, match=r"notes\.png: not an image"):
        load_image(tmp_path / "notes.png")


def test_a_truncated_image_is_reported_as_damaged(tmp_path: Path) -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match=r"cut\.png: damaged or truncated image"):
        load_image(tmp_path / "cut.png")


def test_a_decompression_bomb_is_refused_and_the_message_says_how_to_raise_the_limit(tmp_path: Path) -> None:
    Image.fromarray(IMAGE).save(tmp_path / "img.png")
    with pytest.raises(ImageFileError, match=r"decompression bomb.*--max-pixels N.*MAX_IMAGE_PIXELS"):
        load_image(tmp_path / "img.png", max_pixels=10)
    assert load_image(tmp_path / "img.png", max_pixels=1000).shape == (6, 8, 3)


def test_the_pixel_limit_is_restored_after_a_call(tmp_path: Path) -> None:
    Image.fromarray(IMAGE).save(tmp_path / "img.png")
    before = Image.MAX_IMAGE_PIXELS
    load_image(tmp_path / "img.png", max_pixels=1000)
    assert before == Image.MAX_IMAGE_PIXELS


def test_save_refuses_an_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match=r"cannot tell the output format from the extension '\.xyz'"):
        save_image(tmp_path / "out.xyz", IMAGE)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_alpha_in_a_jpeg(tmp_path: Path) -> None:
    rgba = np.concatenate([IMAGE, np.full((6, 8, 1), 128, np.uint8)], axis=2)
    with pytest.raises(ImageFileError, match="JPEG cannot store the alpha channel"):
        save_image(tmp_path / "out.jpg", rgba)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match=r"output directory .* does not exist"):
        save_image(tmp_path / "nope" / "out.png", IMAGE)


def test_a_saved_file_leaves_no_temporary_file_and_is_readable_by_others(tmp_path: Path) -> None:
    save_image(tmp_path / "out.png", IMAGE)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert (tmp_path / "out.png").stat().st_mode & 0o044  # not the 0600 of a raw temp file


def test_a_dark_sixteen_bit_image_stays_dark(tmp_path: Path) -> None:
    dark = np.full((6, 8), 200, dtype=np.uint16)  # 200 / 65535: nearly black
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert load_image(tmp_path / "dark16.png").max() == 0


def test_a_palette_is_stored_translucent_entries_first_then_by_luma() -> None:
    from kmeans.image.io import palette_order

    palette = np.array([[255, 255, 255, 255], [0, 0, 0, 255], [9, 9, 9, 0], [200, 0, 0, 128], [0, 0, 0, 255]], np.uint8)
    # Translucent: [9, 9, 9, 0] (luma 9) before [200, 0, 0, 128] (luma 59.8); then opaque by luma, ties by index.
    assert palette_order(palette).tolist() == [2, 3, 1, 4, 0]
