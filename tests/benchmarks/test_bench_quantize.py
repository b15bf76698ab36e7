"""Color quantization against Pillow on the paper's raccoon, at k = 8, 16, 64 and 256.

Quality (PSNR in RGB against the original) must be at least that of Pillow's median cut
and fast octree at the same number of colors; time (numpy backend, ``quantize``'s
default settings, from a loaded array to the quantized array) must stay within 3x of
Pillow's median cut, measured in the same process with the rounds interleaved.

A normal test run (benchmarks disabled) quantizes a 64x48 thumbnail once per k, so
the code path and the quality claim are exercised; ``--benchmark-enable`` runs the full
1024x768 image for several rounds and also checks the time ratio.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="the quantization benchmark needs Pillow")

from kmeans.data import raccoon_path  # noqa: E402
from kmeans.image import load_image, quantize  # noqa: E402

K_VALUES = (8, 16, 64, 256)
ROUNDS = 7
MAX_TIME_RATIO = 3.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def pillow_quantize(image: Any, k: int, method: Any) -> Any:
    return image.quantize(colors=k, method=method)


@pytest.fixture(scope="module")
def raccoon() -> np.ndarray:
    return load_image(raccoon_path())


@pytest.mark.parametrize("k", K_VALUES)
def test_quantize_beats_pillow_quality_within_3x_of_median_cut_time(
    benchmark: Any, raccoon: np.ndarray, k: int
) -> None:
    full = not benchmark.disabled
    pixels = raccoon if full else np.ascontiguousarray(raccoon[::16, ::16])
    pil_image = Image.fromarray(pixels)

    median_cut = pillow_quantize(pil_image, k, Image.Quantize.MEDIANCUT)
    octree = pillow_quantize(pil_image, k, Image.Quantize.FASTOCTREE)
    psnr_median_cut = psnr(np.asarray(median_cut.convert("RGB")), pixels)
    psnr_octree = psnr(np.asarray(octree.convert("RGB")), pixels)

    baseline_times: list[float] = []

    def run_baseline() -> None:  # pedantic's setup: untimed by the fixture, interleaved with our rounds
        t0 = time.perf_counter()
        pillow_quantize(pil_image, k, Image.Quantize.MEDIANCUT)
        baseline_times.append(time.perf_counter() - t0)

    our_times: list[float] = []

    def ours() -> Any:
        t0 = time.perf_counter()
        result = quantize(pixels, n_clusters=k, backend="numpy", seed=0)
        our_times.append(time.perf_counter() - t0)
        return result

    result = benchmark.pedantic(ours, setup=run_baseline, rounds=ROUNDS if full else 1, iterations=1)
    ratio = statistics.median(our_times) / statistics.median(baseline_times)
    benchmark.extra_info.update(
        {
            "k": k,
            "size": f"{pixels.shape[1]}x{pixels.shape[0]}",
            "psnr": result.psnr,
            "psnr_median_cut": psnr_median_cut,
            "psnr_octree": psnr_octree,
            "iterations": result.n_iter,
            "median_s": statistics.median(our_times),
            "median_cut_median_s": statistics.median(baseline_times),
            "time_ratio_vs_median_cut": ratio,
        }
    )
    assert result.psnr >= psnr_median_cut, f"k={k}: PSNR {result.psnr:.2f} < median cut {psnr_median_cut:.2f}"
    assert result.psnr >= psnr_octree, f"k={k}: PSNR {result.psnr:.2f} < fast octree {psnr_octree:.2f}"
    if full:
        assert ratio <= MAX_TIME_RATIO, f"k={k}: {ratio:.2f}x Pillow's median cut time (limit {MAX_TIME_RATIO}x)"


#: A 24-megapixel image (6000x4000) must dither in well under a second of one core.
DITHER_GOAL_S = 1.0


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_floyd_steinberg_dithers_24_megapixels_in_well_under_a_second_per_core(
    benchmark: Any, raccoon: np.ndarray, space: str
) -> None:
    from kmeans.image import to_space
    from kmeans.image.dither import floyd_steinberg
    from kmeans.image.quantize import fold_colors

    full = not benchmark.disabled
    # The raccoon tiled to 6000x4000 (full) or a 64x48 thumbnail (smoke); a k=16 palette fitted to the raccoon.
    pixels = np.tile(raccoon, (6, 6, 1))[:4000, :6000] if full else np.ascontiguousarray(raccoon[::16, ::16])
    result = quantize(raccoon, n_clusters=16, color_space=space, seed=0)
    fold = fold_colors(pixels)
    palette = to_space(result.palette, space)
    space_colors = to_space(fold.colors, space)
    d2 = ((space_colors[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
    start = np.argmin(d2, axis=1)[fold.inverse]
    fold_args = {} if space == "rgb" else {"inverse": fold.inverse, "space_colors": space_colors}
    cpu: list[float] = []

    def dither() -> Any:
        t0 = time.process_time()
        out = floyd_steinberg(pixels, start, palette, result.palette, strength=1.0, **fold_args)
        cpu.append(time.process_time() - t0)
        return out

    floyd_steinberg(pixels[:2, :2], start[:4] * 0, palette, result.palette)  # compile or load the kernel, untimed
    labels, sq = benchmark.pedantic(dither, rounds=3 if full else 1, iterations=1)
    mse = sq / (3 * labels.size)
    benchmark.extra_info.update(
        {"size": f"{pixels.shape[1]}x{pixels.shape[0]}", "space": space, "cpu_s": min(cpu), "psnr": psnr_from(mse)}
    )
    assert labels.min() >= 0 and labels.max() < 16
    assert psnr_from(mse) > 20
    if full:
        assert min(cpu) < DITHER_GOAL_S, f"{space}: {min(cpu):.2f} s of CPU for 24 MP (goal < {DITHER_GOAL_S} s)"


def psnr_from(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
