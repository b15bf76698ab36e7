"""Color quantization: replace an image's colors by a palette of ``k`` K-means centers.

The fast path (the paper's trick): the pixels are first folded into their distinct colors
with a count each (a packed 24-bit key per pixel and one sort), K-means runs on the
distinct colors with ``sample_weight=counts``, and every pixel is then labelled through
the fold's inverse index instead of recomputing distances per pixel. The objective is
therefore exactly the per-pixel one: ``sum_pixels ||color(p) - palette[label(p)]||²``
in the chosen color space.

For photos with many distinct colors (more than ``max(4096, 16 k)``) the fit starts on a
coarser histogram: colors sharing their top ``prebin_bits`` bits per RGB channel are
merged into their weighted mean (at most ``2^(3 bits)`` rows) and K-means converges
there; ``refine_iter`` optional Lloyd iterations on the distinct colors polish the
centers (default 0: on the raccoon they gain under 0.15 dB for about twice the time);
then every distinct color is labelled with its exact nearest center. Images with fewer
distinct colors skip this, so an image with at most ``k`` colors is reproduced exactly.

Only the public :mod:`kmeans` API is used: ``KMeans`` (any backend, initializer, seed).
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import IterationRecord, KMeans, UnknownStrategyError, ValidationError, registry
from kmeans.image.colorspace import DEFAULT_TOL, check_color_space, to_rgb8, to_space
from kmeans.image.dither import check_dither, floyd_steinberg
from kmeans.image.io import (
    LOSSY_FORMATS,
    LossyOutputWarning,
    UInt8Array,
    as_image_array,
    decode_image,
    load_image,
    save_image,
)

IntArray = NDArray[np.intp]
Float64Array = NDArray[np.float64]

#: Below this many distinct colors (or ``16 k``) the fit always runs on the exact colors.
PREBIN_MIN_COLORS = 4096


@attrs.frozen(eq=False)
class ColorFold:
    """An image's pixels folded into distinct colors.

    ``colors`` ``(m, 3)`` uint8 in ascending packed order; ``pixels`` ``(m,)`` how many
    pixels have each color; ``votes`` ``(m,)`` how many of them are not fully transparent
    (the weight each color gets in the fit); ``inverse`` ``(n_pixels,)`` maps every pixel,
    in row-major order, to its color.
    """

    colors: UInt8Array
    pixels: NDArray[np.int64]
    votes: NDArray[np.int64]
    inverse: IntArray


def _packed(rgb: UInt8Array) -> NDArray[np.int32]:
    return (rgb[:, 0].astype(np.int32) << 16) | (rgb[:, 1].astype(np.int32) << 8) | rgb[:, 2].astype(np.int32)


def _unpacked(keys: NDArray[Any]) -> UInt8Array:
    k = keys.astype(np.int64)
    return np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=1).astype(np.uint8)


def fold_colors(image: UInt8Array) -> ColorFold:
    """Fold an ``(h, w, 3|4)`` uint8 image into distinct RGB colors with counts."""
    px = image.reshape(-1, image.shape[-1])
    keys, inverse = np.unique(_packed(px), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp, copy=False)
    pixels = np.bincount(inverse, minlength=keys.size).astype(np.int64)
    if px.shape[1] == 4:
        votes = np.bincount(inverse, weights=px[:, 3] > 0, minlength=keys.size).astype(np.int64)
    else:
        votes = pixels
    return ColorFold(_unpacked(keys), pixels, votes, inverse)


def merge_folds(folds: Sequence[ColorFold]) -> tuple[ColorFold, list[IntArray]]:
    """One fold of several images' colors (counts added), and per image the map of its colors into it.

    The merged ``inverse`` is empty: each image keeps its own, composed with its map.
    """
    keys, inverse = np.unique(np.concatenate([_packed(f.colors) for f in folds]), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp, copy=False)
    pixels = np.bincount(inverse, weights=np.concatenate([f.pixels for f in folds]), minlength=keys.size)
    votes = np.bincount(inverse, weights=np.concatenate([f.votes for f in folds]), minlength=keys.size)
    bounds = np.cumsum([0] + [f.colors.shape[0] for f in folds])
    maps = [inverse[a:b] for a, b in itertools.pairwise(bounds)]
    merged = ColorFold(_unpacked(keys), pixels.astype(np.int64), votes.astype(np.int64), np.empty(0, np.intp))
    return merged, maps


@attrs.frozen(eq=False)
class PaletteFit:
    """A palette fitted to a fold: ``labels`` gives the palette entry of every folded color."""

    model: KMeans
    palette: UInt8Array
    labels: IntArray
    n_iter: int
    inertia: float
    seconds: float


@attrs.frozen(eq=False)
class QuantizeResult:
    """The quantized image and how it was made.

    ``image`` ``(h, w, 3|4)`` uint8 (alpha, if any, is the input's, bit for bit);
    ``palette`` ``(k, 3)`` uint8 RGB; ``labels`` ``(h, w)`` palette index of every pixel;
    ``counts`` ``(k,)`` pixels per palette entry; ``model`` the fitted ``KMeans`` (centers in
    ``color_space`` coordinates); ``mse`` mean squared error per RGB channel against the
    original over the pixels that are not fully transparent, in 8-bit levels², and
    ``psnr = 10 log10(255² / mse)`` dB (``inf`` when lossless); ``timings`` seconds for
    ``load``, ``fit`` (fold + fit), ``map`` and ``write`` (0 until :meth:`save`);
    ``written`` what the last :meth:`save` wrote (empty before): ``path``, ``format``,
    ``mode``, ``bytes``, and ``mse``, ``psnr``, ``colors`` of the file as decoded again
    (a lossy format such as JPEG adds colors back and moves the error).
    """

    image: UInt8Array
    palette: UInt8Array
    labels: IntArray
    counts: NDArray[np.int64]
    model: KMeans
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

    def save(self, path: str | os.PathLike[str], *, indexed: bool | None = None, overwrite: bool = False) -> None:
        """Write the image (format from the extension), atomically.

        A ``.png`` is a palette PNG when the palette has at most 256 entries and there is
        no alpha (``indexed=True`` demands it, ``indexed=False`` writes truecolor); a
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
        info: dict[str, Any] = {"path": str(path), "format": encoded.format, "mode": encoded.mode}
        info["bytes"] = len(encoded.data)
        if encoded.format in LOSSY_FORMATS:
            back = decode_image(encoded.data, path)
            mse = pixel_mse(self.original, back)
            colors = int(np.unique(_packed(back.reshape(-1, back.shape[-1])[:, :3])).size)
            warnings.warn(
                LossyOutputWarning(
                    f"{path}: {encoded.format} is lossy and adds colors back ({colors:,} colors written, "
                    f"palette of {self.palette.shape[0]}); the error reported is of the written file. "
                    "Use .png for exactly the palette"
                ),
                stacklevel=2,
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


def pixel_mse(original: UInt8Array, image: UInt8Array) -> float:
    """Mean squared error per RGB channel of ``image`` against ``original``, in 8-bit levels²,
    over the pixels whose alpha (if any) in ``original`` is not 0."""
    a = original.reshape(-1, original.shape[-1])
    b = image.reshape(-1, image.shape[-1])
    keep = a[:, 3] > 0 if a.shape[1] == 4 else slice(None)
    diff = a[keep, :3].astype(np.float64) - b[keep, :3].astype(np.float64)
    n = diff.shape[0]
    return float(np.einsum("ij,ij->", diff, diff)) / (3.0 * n) if n else 0.0


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
    shift = 8 - bits
    c = colors.astype(np.int32) >> shift
    _, inv = np.unique((c[:, 0] << (2 * bits)) | (c[:, 1] << bits) | c[:, 2], return_inverse=True)
    inv = inv.reshape(-1)
    w = np.bincount(inv, weights=weights).astype(np.float64, copy=False)
    means = np.stack([np.bincount(inv, weights=weights * space_colors[:, j]) for j in range(3)], axis=1)
    return means / w[:, None], w


def fit_palette(
    fold: ColorFold,
    n_clusters: int,
    *,
    color_space: str = "rgb",
    prebin_bits: int | None = 5,
    refine_iter: int = 0,
    **kmeans_params: Any,
) -> PaletteFit:
    """Fit a palette of ``min(n_clusters, distinct voting colors)`` entries to ``fold``.

    ``kmeans_params`` go to ``KMeans`` (``init``, ``max_iter``, ``backend``, ``seed``
    (default 0), ``tol`` (default: :data:`DEFAULT_TOL` of the space), ``callbacks``, ...).
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
    all_x = to_space(fold.colors, color_space)
    x, w = all_x[vote], fold.votes[vote].astype(np.float64)
    params: dict[str, Any] = {"seed": 0, **kmeans_params}
    if params.get("tol") is None:
        params["tol"] = DEFAULT_TOL[color_space]
    init = params.pop("init", "k-means++")
    max_iter = params.pop("max_iter", 300)
    n_iter = 0
    model: KMeans | None = None
    on_colors = True  # whether the final model was fitted on the distinct colors (not the histogram)
    if prebin_bits is not None and n_vote > max(PREBIN_MIN_COLORS, 16 * k):
        bx, bw = _prebin(fold.colors[vote], x, w, prebin_bits)
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
    centers = model.cluster_centers_
    diff = x - centers[labels[vote]]
    inertia = float(np.dot(w, np.einsum("ij,ij->i", diff, diff)))
    palette = to_rgb8(centers, color_space)
    return PaletteFit(model, palette, labels, n_iter, inertia, time.perf_counter() - t0)


def apply_palette(
    image: UInt8Array,
    fold: ColorFold,
    fit: PaletteFit,
    color_labels: IntArray,
    *,
    n_clusters: int,
    color_space: str,
    dither: str = "none",
    dither_strength: float = 1.0,
    load_seconds: float = 0.0,
    fit_seconds: float = 0.0,
) -> QuantizeResult:
    """Map every pixel of ``image`` through its fold (``color_labels`` = palette entry per folded color),
    or, with ``dither``, by error diffusion (:mod:`kmeans.image.dither`) started from that map."""
    t0 = time.perf_counter()
    k = fit.palette.shape[0]
    pixel_labels = color_labels[fold.inverse]
    n_vote = int(fold.votes.sum())
    if dither == "none":
        # Errors per distinct color, weighted by the pixels that vote: exact per-pixel MSE.
        diff = fit.palette[color_labels].astype(np.float64) - fold.colors.astype(np.float64)
        sq = float(np.dot(fold.votes, np.einsum("ij,ij->i", diff, diff)))
        counts = np.bincount(color_labels, weights=fold.pixels, minlength=k).astype(np.int64)
    else:
        # Diffuse against the palette as written (rounded to 8 bits), in the fitted space.
        in_rgb = color_space == "rgb"  # then the kernel reads the pixels' own levels, in order
        pixel_labels, sq = floyd_steinberg(
            image,
            pixel_labels,
            to_space(fit.palette, color_space),
            fit.palette,
            strength=dither_strength,
            inverse=None if in_rgb else fold.inverse,
            space_colors=None if in_rgb else to_space(fold.colors, color_space),
        )
        counts = np.bincount(pixel_labels, minlength=k).astype(np.int64)
    out = np.take(fit.palette, pixel_labels, axis=0)  # several times faster than fancy indexing
    if image.shape[2] == 4:
        out = np.concatenate([out, image.reshape(-1, 4)[:, 3:]], axis=1)
    out = out.reshape(image.shape)
    mse = sq / (3.0 * n_vote) if n_vote else 0.0
    psnr = psnr_of(mse)
    used = np.unique(_packed(fit.palette[counts > 0])).size
    timings = {"load": load_seconds, "fit": fit_seconds, "map": time.perf_counter() - t0, "write": 0.0}
    return QuantizeResult(
        image=out,
        palette=fit.palette,
        labels=pixel_labels.reshape(image.shape[:2]),
        counts=counts,
        model=fit.model,
        mse=mse,
        psnr=psnr,
        timings=timings,
        n_iter=fit.n_iter,
        inertia=fit.inertia,
        colors_before=int(fold.colors.shape[0]),
        colors_after=int(used),
        n_clusters=n_clusters,
        color_space=color_space,
        original=image,
        dither=dither,
        dither_strength=dither_strength if dither != "none" else 0.0,
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
    refine_iter: int = 0,
    callbacks: Sequence[Callable[[IterationRecord], None]] = (),
    max_pixels: int | None = None,
    dither: str = "none",
    dither_strength: float = 1.0,
    **kmeans_params: Any,
) -> QuantizeResult:
    """Reduce ``image`` to at most ``n_clusters`` colors with K-means.

    ``image`` is a path, a PIL image or a ``(h, w)``, ``(h, w, 3)`` or ``(h, w, 4)`` uint8
    array. Pixels with alpha 0 do not vote; alpha is copied unchanged. ``backend``,
    ``init``, ``seed``, ``max_iter`` and any other ``KMeans`` parameter are passed through
    (an array ``init`` is in ``color_space`` coordinates). ``tol`` defaults to about a
    tenth of an 8-bit level in the chosen space. When the image has fewer distinct
    colors than ``n_clusters`` the palette has one entry per color (lossless).
    ``dither="floyd-steinberg"`` maps pixels by error diffusion in ``color_space``
    against the fitted palette, passing on ``dither_strength`` (0 to 1) of each error
    (:mod:`kmeans.image.dither`); ``mse``, ``psnr`` and ``counts`` are then those of the
    dithered image.

    >>> import numpy as np
    >>> img = np.array([[[255, 0, 0], [0, 0, 255]], [[255, 0, 0], [250, 0, 0]]], dtype=np.uint8)
    >>> sorted(quantize(img, n_clusters=2).palette.tolist())
    [[0, 0, 255], [253, 0, 0]]
    """
    k = check_n_clusters(n_clusters)
    space = check_color_space(color_space)
    check_strategy_names(backend, init)
    dither, dither_strength = check_dither(dither, dither_strength)
    pixels, load_s = read_input(image, max_pixels=max_pixels)
    t0 = time.perf_counter()
    fold = fold_colors(pixels)
    fit = fit_palette(
        fold,
        k,
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
    )


def quantize_shared(
    images: Sequence[Any],
    n_clusters: int = 8,
    *,
    color_space: str = "rgb",
    max_pixels: int | None = None,
    dither: str = "none",
    dither_strength: float = 1.0,
    **params: Any,
) -> list[QuantizeResult]:
    """Quantize several images with one palette fitted to all their pixels together.

    Each result's ``timings["fit"]`` is the shared fit's time; ``load`` is its own.
    """
    k = check_n_clusters(n_clusters)
    space = check_color_space(color_space)
    check_strategy_names(params.get("backend", "numpy"), params.get("init", "k-means++"))
    dither, dither_strength = check_dither(dither, dither_strength)
    loaded = [read_input(im, max_pixels=max_pixels) for im in images]
    t0 = time.perf_counter()
    folds = [fold_colors(px) for px, _ in loaded]
    merged, maps = merge_folds(folds)
    fit = fit_palette(merged, k, color_space=space, **params)
    fit_s = time.perf_counter() - t0
    return [
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
        )
        for (px, ls), fold, m in zip(loaded, folds, maps, strict=True)
    ]
