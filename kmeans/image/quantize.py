"""Color quantization: replace an image's colors by a palette of ``k`` K-means centers.

The fast path (the paper's trick): the pixels are first folded into their distinct colors
with a count each (a packed 24-bit key per pixel and one sort), K-means runs on the
distinct colors with ``sample_weight=counts``, and every pixel is then labelled through
the fold's inverse index instead of recomputing distances per pixel. The objective is
therefore exactly the per-pixel one: ``sum_pixels ||color(p) - palette[label(p)]||²``
in the chosen color space.

RGBA images are clustered with alpha as a fourth dimension, in premultiplied form
(:func:`kmeans.image.colorspace.to_features`): every fully transparent pixel is the same
point, whatever color it hides, and a color weighs in proportion to its opacity.

For photos with many distinct colors (more than ``max(4096, 16 k)``) the fit starts on a
coarser histogram: colors sharing their top ``prebin_bits`` bits per RGB channel are
merged into their weighted mean (at most ``2^(3 bits)`` rows) and K-means converges
there; then up to ``refine_iter`` Lloyd iterations on the distinct colors polish the
centers (default 10: +0.01 to +0.46 dB on the raccoon and scikit-learn's sample photos);
then every distinct color is labelled with its exact nearest center. Images with fewer
distinct colors skip this, so an image with at most ``k`` colors is reproduced exactly.

Only the public :mod:`kmeans` API is used: ``KMeans`` (any backend, initializer, seed).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import IterationRecord, UnknownStrategyError, ValidationError, registry
from kmeans.image.colorspace import DEFAULT_TOL, check_color_space, from_features, to_features
from kmeans.image.dither import DEFAULT_STRENGTH, check_dither, floyd_steinberg
from kmeans.image.io import (
    LOSSY_FORMATS,
    EncodedImage,
    LossyOutputWarning,
    UInt8Array,
    as_image_array,
    decode_image,
    encode_output,
    load_image,
    save_image,
)
from kmeans.image.quality import QualityTooLowError, check_quality, error_to_quality, palette_error, quality_to_error
from kmeans.image.small import check_numbers, fit_small, fits_small, nearest

if TYPE_CHECKING:
    from kmeans import KMeans

IntArray = NDArray[np.intp]
Float64Array = NDArray[np.float64]

#: Below this many distinct colors (or ``16 k``) the fit always runs on the exact colors.
PREBIN_MIN_COLORS = 4096


@attrs.frozen(eq=False)
class ColorFold:
    """An image's pixels folded into distinct colors.

    ``colors`` ``(m, 3)`` RGB or ``(m, 4)`` RGBA uint8 in ascending packed order (every
    fully transparent pixel is folded into the one color ``(0, 0, 0, 0)``); ``pixels``
    ``(m,)`` how many pixels have each color; ``votes`` ``(m,)`` the weight each color
    gets in the fit (its pixel count); ``inverse`` ``(n_pixels,)`` maps every pixel, in
    row-major order, to its color.
    """

    colors: UInt8Array
    pixels: NDArray[np.int64]
    votes: NDArray[np.int64]
    inverse: IntArray


def _packed(colors: UInt8Array) -> NDArray[np.integer[Any]]:
    """One integer per ``(m, 3|4)`` color, ordered as the colors are lexicographically
    (int32 for RGB: a faster sort for the fold's millions of pixels)."""
    dtype = np.int32 if colors.shape[1] == 3 else np.int64
    key: NDArray[np.integer[Any]] = colors[:, 0].astype(dtype)
    for j in range(1, colors.shape[1]):
        key = (key << 8) | colors[:, j].astype(dtype)
    return key


def _unpacked(keys: NDArray[Any], channels: int) -> UInt8Array:
    k = keys.astype(np.int64)
    return np.stack([(k >> (8 * (channels - 1 - j))) & 255 for j in range(channels)], axis=1).astype(np.uint8)


def _canonical(px: UInt8Array) -> UInt8Array:
    """``(n, 3|4)`` pixels with the hidden color of fully transparent ones set to 0."""
    if px.shape[1] == 3:
        return px
    return np.where(px[:, 3:4] == 0, np.uint8(0), px)


def fold_colors(image: UInt8Array) -> ColorFold:
    """Fold an ``(h, w, 3|4)`` uint8 image into distinct RGB or RGBA colors with counts."""
    px = _canonical(image.reshape(-1, image.shape[-1]))
    keys, inverse = np.unique(_packed(px), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp, copy=False)
    pixels = np.bincount(inverse, minlength=keys.size).astype(np.int64)
    return ColorFold(_unpacked(keys, px.shape[1]), pixels, pixels, inverse)


def _with_alpha(colors: UInt8Array) -> UInt8Array:
    if colors.shape[1] == 4:
        return colors
    return np.concatenate([colors, np.full((colors.shape[0], 1), 255, np.uint8)], axis=1)


def merge_folds(folds: Sequence[ColorFold]) -> tuple[ColorFold, list[IntArray]]:
    """One fold of several images' colors (counts added), and per image the map of its colors into it.

    The merged ``inverse`` is empty: each image keeps its own, composed with its map.
    """
    channels = max(f.colors.shape[1] for f in folds)  # RGB images join RGBA ones as opaque
    colors = [f.colors if channels == 3 else _with_alpha(f.colors) for f in folds]
    keys, inverse = np.unique(np.concatenate([_packed(c) for c in colors]), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp, copy=False)
    pixels = np.bincount(inverse, weights=np.concatenate([f.pixels for f in folds]), minlength=keys.size)
    votes = np.bincount(inverse, weights=np.concatenate([f.votes for f in folds]), minlength=keys.size)
    bounds = np.cumsum([0] + [f.colors.shape[0] for f in folds])
    maps = [inverse[a:b] for a, b in itertools.pairwise(bounds)]
    merged = ColorFold(_unpacked(keys, channels), pixels.astype(np.int64), votes.astype(np.int64), np.empty(0, np.intp))
    return merged, maps


def _resolved(holder: Any) -> KMeans:
    """``holder._model``, made first if it is the function that fits it (the NumPy path's model)."""
    model = holder._model
    if callable(model) and not hasattr(model, "cluster_centers_"):
        model = model()
        object.__setattr__(holder, "_model", model)
    return model  # type: ignore[no-any-return]


@attrs.frozen(eq=False)
class PaletteFit:
    """A palette fitted to a fold: ``labels`` gives the palette entry of every folded color.

    ``model`` is the fitted ``KMeans``; a palette of the NumPy path (:mod:`kmeans.image.small`)
    fits it, to the same centers, on first read (``_model`` holds the function until then).
    """

    _model: KMeans | Callable[[], KMeans]
    palette: UInt8Array
    labels: IntArray
    n_iter: int
    inertia: float
    seconds: float

    @property
    def model(self) -> KMeans:
        return _resolved(self)


@attrs.frozen(eq=False)
class QuantizeResult:
    """The quantized image and how it was made.

    ``image`` ``(h, w, 3|4)`` uint8, ``palette[labels]``; ``palette`` ``(k, 3)`` uint8 RGB,
    or ``(k, 4)`` RGBA for RGBA input; ``labels`` ``(h, w)`` palette index of every pixel;
    ``counts`` ``(k,)`` pixels per palette entry; ``model`` the fitted ``KMeans`` (centers in
    ``color_space`` coordinates, premultiplied with alpha for RGBA); ``mse`` mean squared
    error per channel against the original in 8-bit levels² (over RGB, or over
    premultiplied RGB and alpha ``(R a, G a, B a, A)``, ``a = A / 255``, for RGBA), and
    ``psnr = 10 log10(255² / mse)`` dB (``inf`` when lossless); ``timings`` seconds for
    ``load``, ``fit`` (fold + fit), ``map`` and ``write`` (0 until :meth:`save`);
    ``written`` what the last :meth:`save` wrote (empty before): ``path``, ``format``,
    ``mode``, ``bytes``, and ``mse``, ``psnr``, ``colors`` of the file as decoded again
    (a lossy format such as JPEG adds colors back and moves the error); ``quality`` the
    palette's quality on pngquant's 0-100 scale (:mod:`kmeans.image.quality`, without
    dithering) when ``quality=`` chose ``n_clusters``, else ``None``.
    """

    image: UInt8Array
    palette: UInt8Array
    labels: IntArray
    counts: NDArray[np.int64]
    _model: KMeans | Callable[[], KMeans]
    mse: float
    psnr: float
    timings: dict[str, float]
    n_iter: int
    inertia: float
    colors_before: int
    colors_after: int
    n_clusters: int
    color_space: str
    original: UInt8Array = attrs.field(repr=False)
    written: dict[str, Any] = attrs.field(factory=dict)
    dither: str = "none"
    dither_strength: float = 0.0
    quality: int | None = None

    @property
    def model(self) -> KMeans:
        """The fitted ``KMeans`` (a small image's, fitted without Numba, is fitted again on first read: the same)."""
        return _resolved(self)

    def save(self, path: str | os.PathLike[str], *, indexed: bool | None = None, overwrite: bool = False) -> None:
        """Write the image (format from the extension), atomically.

        A ``.png`` is a palette PNG when the palette has at most 256 entries, with alpha in
        its tRNS chunk (``indexed=True`` demands it, ``indexed=False`` writes truecolor); a
        ``.gif`` is always a palette image of exactly these colors; gray images are
        written gray. A lossy format (JPEG) warns with :class:`LossyOutputWarning`, and
        ``written`` then holds the error of the decoded file.
        """
        t0 = time.perf_counter()
        if indexed:
            check_indexed(self.palette.shape[0])
        encoded = save_image(
            path, self.image, palette=self.palette, labels=self.labels, indexed=indexed, overwrite=overwrite
        )
        self.timings["write"] = time.perf_counter() - t0
        self._record(encoded, str(path))

    def to_bytes(self, format: str = "PNG", *, indexed: bool | None = None) -> bytes:
        """The file :meth:`save` would write in Pillow ``format`` (``written`` records it, path ``None``)."""
        t0 = time.perf_counter()
        if indexed:
            check_indexed(self.palette.shape[0])
        fmt = format.upper()
        encoded = encode_output(self.image, fmt, palette=self.palette, labels=self.labels, indexed=indexed)
        self.timings["write"] = time.perf_counter() - t0
        self._record(encoded, None)
        return encoded.data

    def _record(self, encoded: EncodedImage, path: str | None) -> None:
        info: dict[str, Any] = {"path": path, "format": encoded.format, "mode": encoded.mode}
        info["bytes"] = len(encoded.data)
        name = path if path is not None else "the output"
        if encoded.format in LOSSY_FORMATS:
            back = decode_image(encoded.data, name)
            mse = pixel_mse(self.original, back)
            colors = int(np.unique(_packed(back.reshape(-1, back.shape[-1])[:, :3])).size)
            warnings.warn(
                LossyOutputWarning(
                    f"{name}: {encoded.format} is lossy and adds colors back ({colors:,} colors written, "
                    f"palette of {self.palette.shape[0]}); the error reported is of the written file. "
                    "Use .png for exactly the palette"
                ),
                stacklevel=3,
            )
        else:
            mse, colors = self.mse, self.colors_after
        info.update(mse=mse, psnr=psnr_of(mse), colors=colors)
        self.written.clear()
        self.written.update(info)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict of the numbers the command line reports."""
        h, w = self.image.shape[:2]
        return {
            "width": w,
            "height": h,
            "alpha": self.image.shape[2] == 4,
            "n_clusters": self.n_clusters,
            "palette_size": int(self.palette.shape[0]),
            "color_space": self.color_space,
            "dither": self.dither,
            "dither_strength": self.dither_strength,
            **({} if self.quality is None else {"quality": self.quality}),
            "iterations": self.n_iter,
            "inertia": self.inertia,
            "colors_before": self.colors_before,
            "colors_after": self.colors_after,
            "mse": self.mse,
            "psnr": _finite(self.psnr),
            "timings": {**self.timings, "total": sum(self.timings.values())},
            "written": None if not self.written else {**self.written, "psnr": _finite(self.written["psnr"])},
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def psnr_of(mse: float) -> float:
    """``10 log10(255² / mse)`` dB, ``inf`` for ``mse == 0``."""
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _levels(colors: UInt8Array) -> Float64Array:
    """``(n, 3)`` RGB as float levels; ``(n, 4)`` RGBA as premultiplied levels ``(R α, G α, B α, A)``."""
    x = colors.astype(np.float64)
    if colors.shape[1] == 4:
        x[:, :3] *= x[:, 3:4] / 255.0
    return x


def pixel_mse(original: UInt8Array, image: UInt8Array) -> float:
    """Mean squared error per channel of ``image`` against ``original``, in 8-bit levels²: over
    RGB, or, when either has alpha, over premultiplied RGB and alpha (see :func:`_levels`)."""
    a = original.reshape(-1, original.shape[-1])
    b = image.reshape(-1, image.shape[-1])
    if a.shape[1] != b.shape[1]:
        a, b = _with_alpha(a), _with_alpha(b)
    diff = _levels(a) - _levels(b)
    return float(np.einsum("ij,ij->", diff, diff)) / diff.size if diff.size else 0.0


def check_indexed(k: int) -> None:
    if k > 256:
        raise ValidationError(f"an indexed (palette) PNG holds at most 256 colors; got {k} clusters (use -k <= 256)")


def check_n_clusters(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValidationError(f"the number of colors k must be an integer >= 1, got {k!r}")
    return int(k)


def check_strategy_names(backend: Any, init: Any) -> None:
    """Unknown backend or initializer names fail here, before any image is read."""
    for kind, value, reg in (("backend", backend, registry.backends), ("initializer", init, registry.initializers)):
        if isinstance(value, str) and value not in reg:
            raise UnknownStrategyError(f"unknown {kind} {value!r}; known {kind}s: {', '.join(reg)}")


def _prebin(
    colors: UInt8Array, space_colors: Float64Array, weights: Float64Array, bits: int
) -> tuple[Float64Array, Float64Array]:
    """Weighted means (in the working space) of colors sharing their top ``bits`` bits per channel."""
    c = colors.astype(np.int64) >> (8 - bits)
    key = c[:, 0]
    for j in range(1, c.shape[1]):
        key = (key << bits) | c[:, j]
    _, inv = np.unique(key, return_inverse=True)
    inv = inv.reshape(-1)
    w = np.bincount(inv, weights=weights).astype(np.float64, copy=False)
    dims = space_colors.shape[1]
    means = np.stack([np.bincount(inv, weights=weights * space_colors[:, j]) for j in range(dims)], axis=1)
    return means / w[:, None], w


def fit_palette(
    fold: ColorFold,
    n_clusters: int,
    *,
    color_space: str = "rgb",
    prebin_bits: int | None = 5,
    refine_iter: int = 10,
    histograms: dict[int, tuple[Float64Array, Float64Array]] | None = None,
    **kmeans_params: Any,
) -> PaletteFit:
    """Fit a palette of ``min(n_clusters, distinct voting colors)`` entries to ``fold``.

    ``kmeans_params`` go to ``KMeans`` (``init``, ``max_iter``, ``backend``, ``seed``
    (default 0), ``tol`` (default: :data:`DEFAULT_TOL` of the space), ``callbacks``, ...).
    ``histograms``, if given, keeps the coarse histogram by ``prebin_bits`` for the next
    fit of the same fold and space (the quality search fits several ``k``).
    """
    if prebin_bits is not None and (isinstance(prebin_bits, bool) or prebin_bits not in range(1, 8)):
        raise ValidationError(f"prebin_bits must be an integer from 1 to 7 or None, got {prebin_bits!r}")
    if isinstance(refine_iter, bool) or not isinstance(refine_iter, numbers.Integral) or refine_iter < 0:
        raise ValidationError(f"refine_iter must be an integer >= 0, got {refine_iter!r}")
    t0 = time.perf_counter()
    vote = fold.votes > 0
    n_vote = int(np.count_nonzero(vote))
    if n_vote == 0:
        raise ValidationError("every pixel is fully transparent, so there are no colors to cluster")
    k = min(n_clusters, n_vote)
    all_x = to_features(fold.colors, color_space)
    x, w = all_x[vote], fold.votes[vote].astype(np.float64)
    params: dict[str, Any] = {"seed": 0, **kmeans_params}
    if params.get("tol") is None:
        params["tol"] = DEFAULT_TOL[color_space]
    init = params.pop("init", "k-means++")
    max_iter = params.pop("max_iter", 300)
    if _numpy_path(params, init, max_iter, k, x.shape[0]):
        small = fit_small(x, w, k, seed=params["seed"], tol=params["tol"], max_iter=max_iter)
        if small is not None:
            for record in small.history:  # after the fit: a declined one leaves them to the compiled fit
                for cb in params.get("callbacks", ()):
                    cb(record)
            quiet = {name: v for name, v in params.items() if name != "callbacks"}
            make = functools.partial(_fit_model, k, x, w, init=init, max_iter=max_iter, **quiet)
            found = nearest(all_x, small.centers)
            return _palette_fit(make, small.centers, found, small.n_iter, x, w, vote, color_space, t0)
    from kmeans import KMeans

    n_iter = 0
    model: KMeans | None = None
    on_colors = True  # whether the final model was fitted on the distinct colors (not the histogram)
    if prebin_bits is not None and n_vote > max(PREBIN_MIN_COLORS, 16 * k):
        if histograms is not None and prebin_bits in histograms:
            bx, bw = histograms[prebin_bits]
        else:
            bx, bw = _prebin(fold.colors[vote], x, w, prebin_bits)
            if histograms is not None:
                histograms[prebin_bits] = bx, bw
        if bx.shape[0] >= 4 * k:
            model = KMeans(k, init=init, max_iter=max_iter, **params).fit(bx, sample_weight=bw)
            n_iter, on_colors = model.n_iter_, False
            if refine_iter > 0:
                model = KMeans(k, init=model.cluster_centers_, max_iter=refine_iter, **params).fit(x, sample_weight=w)
                n_iter, on_colors = n_iter + model.n_iter_, True
    if model is None:
        model = KMeans(k, init=init, max_iter=max_iter, **params).fit(x, sample_weight=w)
        n_iter = model.n_iter_
    fitted = model.labels_
    if on_colors and isinstance(fitted, np.ndarray) and bool(vote.all()):
        labels = np.asarray(fitted, dtype=np.intp)
    else:
        labels = np.asarray(model.predict(all_x), dtype=np.intp)
    return _palette_fit(model, model.cluster_centers_, labels, n_iter, x, w, vote, color_space, t0)


def _palette_fit(
    model: KMeans | Callable[[], KMeans],
    centers: Float64Array,
    labels: IntArray,
    n_iter: int,
    x: Float64Array,
    w: Float64Array,
    vote: NDArray[np.bool_],
    color_space: str,
    t0: float,
) -> PaletteFit:
    diff = x - centers[labels[vote]]
    inertia = float(np.dot(w, np.einsum("ij,ij->i", diff, diff)))
    palette = from_features(centers, color_space)
    return PaletteFit(model, palette, labels, n_iter, inertia, time.perf_counter() - t0)


def _numpy_path(params: dict[str, Any], init: Any, max_iter: Any, k: int, n_rows: int) -> bool:
    """Whether the fit is the default one on few colors, which :mod:`kmeans.image.small` computes without Numba."""
    default = params.get("backend", "numpy") == "numpy" and isinstance(init, str) and init == "k-means++"
    known = set(params) <= {"backend", "seed", "tol", "callbacks"}
    callbacks = params.get("callbacks", ())
    plain = isinstance(callbacks, (list, tuple)) and all(callable(cb) for cb in callbacks)
    return (
        default and known and plain and fits_small(n_rows, k) and check_numbers(params["seed"], params["tol"], max_iter)
    )


def _fit_model(k: int, x: Float64Array, w: Float64Array, **params: Any) -> KMeans:
    """The ``KMeans`` the compiled path fits (a NumPy-path palette's ``model``)."""
    from kmeans import KMeans

    return KMeans(k, **params).fit(x, sample_weight=w)


def fit_for_quality(
    fold: ColorFold, max_colors: int, quality: tuple[int, int], **fit_params: Any
) -> tuple[PaletteFit, int]:
    """The fit with the fewest colors, up to ``max_colors``, whose error meets ``quality``'s
    maximum, and its quality (:mod:`kmeans.image.quality`: libimagequant's measure, without
    dithering); raises :class:`~kmeans.image.quality.QualityTooLowError` when
    ``max_colors`` colors miss the minimum.

    The error falls with ``k`` but not strictly (K-means finds local optima), so ``k`` is
    found by bisection over ``[1, max_colors]``: at most ``1 + ceil(log2(max_colors))``
    fits, sharing the fold and its coarse histogram. Each fit is the one
    :func:`fit_palette` makes for that ``k``, so the result equals ``quantize(image, k)``.
    ``fit_params`` go to :func:`fit_palette`.
    """
    low, high = quality
    kmax = max(1, min(max_colors, int(np.count_nonzero(fold.votes > 0))))
    histograms: dict[int, tuple[Float64Array, Float64Array]] = {}
    fits: dict[int, tuple[PaletteFit, float]] = {}

    def fit(k: int) -> tuple[PaletteFit, float]:
        if k not in fits:
            f = fit_palette(fold, k, histograms=histograms, **fit_params)
            fits[k] = f, palette_error(fold.colors, fold.pixels, f.palette[f.labels])
        return fits[k]

    error = fit(kmax)[1]
    if error > quality_to_error(low):
        reached = error_to_quality(error)
        raise QualityTooLowError(
            f"quality {reached} with {kmax} colors is below the minimum {low} asked; "
            "allow more colors or a lower minimum",
            quality=reached,
            minimum=low,
            n_colors=kmax,
        )
    lo, hi = 1, kmax  # fit(hi) meets the target, or hi is kmax
    if error <= quality_to_error(high):
        while lo < hi:
            mid = (lo + hi) // 2
            if fit(mid)[1] <= quality_to_error(high):
                hi = mid
            else:
                lo = mid + 1
    chosen, error = fits[hi]
    return chosen, error_to_quality(error)


def _squared_error(fold: ColorFold, palette: UInt8Array, color_labels: IntArray) -> float:
    """Sum over pixels of the squared error in levels (:func:`_levels`) of mapping each folded
    color to its palette entry: per distinct color, weighted by its pixels (exact per-pixel)."""
    diff = _levels(palette[color_labels]) - _levels(fold.colors)
    return float(np.dot(fold.pixels, np.einsum("ij,ij->i", diff, diff)))


def apply_palette(
    image: UInt8Array,
    fold: ColorFold,
    fit: PaletteFit,
    color_labels: IntArray,
    *,
    n_clusters: int,
    color_space: str,
    dither: str = "none",
    dither_strength: float = DEFAULT_STRENGTH,
    load_seconds: float = 0.0,
    fit_seconds: float = 0.0,
    quality: int | None = None,
) -> QuantizeResult:
    """Map every pixel of ``image`` through its fold (``color_labels`` = palette entry per folded color),
    or, with ``dither``, by error diffusion (:mod:`kmeans.image.dither`) started from that map.
    ``quality``: the palette's, when a quality target chose it (its size is then ``n_clusters``)."""
    t0 = time.perf_counter()
    k, channels = fit.palette.shape
    if channels == 4 and image.shape[2] == 3:  # an RGB image sharing an RGBA palette: opaque pixels
        image = _with_alpha(image.reshape(-1, 3)).reshape(*image.shape[:2], 4)
        fold = attrs.evolve(fold, colors=_with_alpha(fold.colors))
    pixel_labels = color_labels[fold.inverse]
    n_pixels = int(fold.pixels.sum())
    if dither == "none":
        sq = _squared_error(fold, fit.palette, color_labels)
        counts = np.bincount(color_labels, weights=fold.pixels, minlength=k).astype(np.int64)
    else:
        # Diffuse against the palette as written (rounded to 8 bits), in the fitted space.
        in_rgb = color_space == "rgb" and channels == 3  # then the kernel reads the pixels' own levels, in order
        pixel_labels, sq = floyd_steinberg(
            image,
            pixel_labels,
            to_features(fit.palette, color_space),
            fit.palette,
            strength=dither_strength,
            inverse=None if in_rgb else fold.inverse,
            space_colors=None if in_rgb else to_features(fold.colors, color_space),
            edge_aware=dither == "edge-aware",
            level=10 * DEFAULT_TOL[color_space],  # one 8-bit level in the space's units (the tol is a tenth)
        )
        counts = np.bincount(pixel_labels, minlength=k).astype(np.int64)
    out = np.take(fit.palette, pixel_labels, axis=0).reshape(*image.shape[:2], channels)  # faster than fancy indexing
    mse = sq / (channels * n_pixels) if n_pixels else 0.0
    psnr = psnr_of(mse)
    used = np.unique(_packed(fit.palette[counts > 0])).size
    timings = {"load": load_seconds, "fit": fit_seconds, "map": time.perf_counter() - t0, "write": 0.0}
    return QuantizeResult(
        image=out,
        palette=fit.palette,
        labels=pixel_labels.reshape(image.shape[:2]),
        counts=counts,
        model=fit._model,
        mse=mse,
        psnr=psnr,
        timings=timings,
        n_iter=fit.n_iter,
        inertia=fit.inertia,
        colors_before=int(fold.colors.shape[0]),
        colors_after=int(used),
        n_clusters=n_clusters if quality is None else k,
        color_space=color_space,
        original=image,
        dither=dither,
        dither_strength=dither_strength if dither != "none" else 0.0,
        quality=quality,
    )


def read_input(image: Any, *, max_pixels: int | None = None) -> tuple[UInt8Array, float]:
    """``(pixels, seconds)`` for a path, a PIL image or an array."""
    t0 = time.perf_counter()
    if isinstance(image, (str, os.PathLike)):
        arr = load_image(Path(image), max_pixels=max_pixels)
    else:
        arr = as_image_array(image)
    return arr, time.perf_counter() - t0


def quantize(
    image: Any,
    n_clusters: int = 8,
    *,
    backend: Any = "numpy",
    init: Any = "k-means++",
    color_space: str = "rgb",
    seed: int | None = 0,
    max_iter: int = 300,
    tol: float | None = None,
    prebin_bits: int | None = 5,
    refine_iter: int = 10,
    callbacks: Sequence[Callable[[IterationRecord], None]] = (),
    max_pixels: int | None = None,
    dither: str = "none",
    dither_strength: float = DEFAULT_STRENGTH,
    on_stage: Callable[[str], None] | None = None,
    quality: tuple[int, int] | None = None,
    **kmeans_params: Any,
) -> QuantizeResult:
    """Reduce ``image`` to at most ``n_clusters`` colors with K-means.

    ``image`` is a path, a PIL image or a ``(h, w)``, ``(h, w, 3)`` or ``(h, w, 4)`` uint8
    array. RGBA is clustered with alpha as a dimension (premultiplied; fully
    transparent pixels are all one color, ``(0, 0, 0, 0)``). ``backend``,
    ``init``, ``seed``, ``max_iter`` and any other ``KMeans`` parameter are passed through
    (an array ``init`` is in ``color_space`` coordinates). ``tol`` defaults to about a
    tenth of an 8-bit level in the chosen space. When the image has fewer distinct
    colors than ``n_clusters`` the palette has one entry per color (lossless).
    ``dither="floyd-steinberg"`` maps pixels by error diffusion in ``color_space``
    against the fitted palette, passing on ``dither_strength`` (0 to 1, default
    :data:`~kmeans.image.dither.DEFAULT_STRENGTH`) of each error
    (:mod:`kmeans.image.dither`); ``dither="edge-aware"`` passes on less of it on edges,
    in texture and where the nearest-color map already varies, so it dithers only smooth
    areas that would band; ``mse``, ``psnr`` and ``counts`` are then those of the
    dithered image. ``on_stage``, if given, is called with ``"fold"``, ``"fit"`` and
    ``"map"`` (or ``"dither"``) as each stage starts (the command line's progress bar).
    ``quality=(min, max)`` on pngquant's 0-100 scale makes ``n_clusters`` the most colors
    allowed: the fewest whose error meets ``max`` are used (:func:`fit_for_quality`), and
    :class:`~kmeans.image.quality.QualityTooLowError` is raised if ``n_clusters`` colors
    miss ``min``.

    >>> import numpy as np
    >>> img = np.array([[[255, 0, 0], [0, 0, 255]], [[255, 0, 0], [250, 0, 0]]], dtype=np.uint8)
    >>> sorted(quantize(img, n_clusters=2).palette.tolist())
    [[0, 0, 255], [253, 0, 0]]
    """
    k = check_n_clusters(n_clusters)
    space = check_color_space(color_space)
    check_strategy_names(backend, init)
    dither, dither_strength = check_dither(dither, dither_strength)
    target = check_quality(quality)
    pixels, load_s = read_input(image, max_pixels=max_pixels)
    stage = on_stage if on_stage is not None else _no_stage
    t0 = time.perf_counter()
    stage("fold")
    fold = fold_colors(pixels)
    stage("fit")
    fit, reached = _fit(
        fold,
        k,
        target,
        color_space=space,
        prebin_bits=prebin_bits,
        refine_iter=refine_iter,
        backend=backend,
        init=init,
        seed=seed,
        max_iter=max_iter,
        tol=tol,
        callbacks=callbacks,
        **kmeans_params,
    )
    fit_s = time.perf_counter() - t0
    stage("map" if dither == "none" else "dither")
    return apply_palette(
        pixels,
        fold,
        fit,
        fit.labels,
        n_clusters=k,
        color_space=space,
        dither=dither,
        dither_strength=dither_strength,
        load_seconds=load_s,
        fit_seconds=fit_s,
        quality=reached,
    )


def _fit(fold: ColorFold, k: int, quality: tuple[int, int] | None, **fit_params: Any) -> tuple[PaletteFit, int | None]:
    """:func:`fit_palette` for ``k`` colors, or :func:`fit_for_quality` with at most ``k``."""
    if quality is None:
        return fit_palette(fold, k, **fit_params), None
    return fit_for_quality(fold, k, quality, **fit_params)


def quantize_shared(
    images: Sequence[Any],
    n_clusters: int = 8,
    *,
    color_space: str = "rgb",
    max_pixels: int | None = None,
    dither: str = "none",
    dither_strength: float = DEFAULT_STRENGTH,
    on_stage: Callable[[str], None] | None = None,
    quality: tuple[int, int] | None = None,
    **params: Any,
) -> list[QuantizeResult]:
    """Quantize several images with one palette fitted to all their pixels together.

    Each result's ``timings["fit"]`` is the shared fit's time; ``load`` is its own.
    ``on_stage`` is called as in :func:`quantize` (``"map"``/``"dither"`` once per image);
    ``quality`` as in :func:`quantize`, judged on all the images' pixels together.
    """
    k = check_n_clusters(n_clusters)
    space = check_color_space(color_space)
    check_strategy_names(params.get("backend", "numpy"), params.get("init", "k-means++"))
    dither, dither_strength = check_dither(dither, dither_strength)
    target = check_quality(quality)
    loaded = [read_input(im, max_pixels=max_pixels) for im in images]
    stage = on_stage if on_stage is not None else _no_stage
    t0 = time.perf_counter()
    stage("fold")
    folds = [fold_colors(px) for px, _ in loaded]
    merged, maps = merge_folds(folds)
    stage("fit")
    fit, reached = _fit(merged, k, target, color_space=space, **params)
    fit_s = time.perf_counter() - t0
    results = []
    for (px, ls), fold, m in zip(loaded, folds, maps, strict=True):
        stage("map" if dither == "none" else "dither")
        results.append(
            apply_palette(
                px,
                fold,
                fit,
                fit.labels[m],
                n_clusters=k,
                color_space=space,
                dither=dither,
                dither_strength=dither_strength,
                load_seconds=ls,
                fit_seconds=fit_s,
                quality=reached,
            )
        )
    return results


def _no_stage(name: str) -> None:
    """The default ``on_stage``: nothing to report to."""
