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
#: The edge-aware mode may take at most this much more CPU time than Floyd-Steinberg (same image).
EDGE_AWARE_MAX_RATIO = 1.3


@pytest.mark.parametrize("mode", ["floyd-steinberg", "edge-aware"])
@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_floyd_steinberg_dithers_24_megapixels_in_well_under_a_second_per_core(
    benchmark: Any, raccoon: np.ndarray, space: str, mode: str
) -> None:
    """Floyd-Steinberg under :data:`DITHER_GOAL_S` of CPU; edge-aware within
    :data:`EDGE_AWARE_MAX_RATIO` of Floyd-Steinberg's time, the two dithers interleaved."""
    from kmeans.image import to_space
    from kmeans.image.colorspace import DEFAULT_TOL
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
    edge_aware = mode == "edge-aware"
    level = 10 * DEFAULT_TOL[space]  # one 8-bit level in the space, as quantize passes it
    cpu: list[float] = []
    plain_cpu: list[float] = []

    def run_plain() -> None:  # the edge-aware rounds' setup: Floyd-Steinberg on the same image, untimed there
        t0 = time.process_time()
        floyd_steinberg(pixels, start, palette, result.palette, strength=1.0, **fold_args)
        plain_cpu.append(time.process_time() - t0)

    def dither() -> Any:
        t0 = time.process_time()
        out = floyd_steinberg(
            pixels, start, palette, result.palette, strength=1.0, edge_aware=edge_aware, level=level, **fold_args
        )
        cpu.append(time.process_time() - t0)
        return out

    for aware in (False, True):  # compile or load both kernels, untimed
        floyd_steinberg(pixels[:2, :2], start[:4] * 0, palette, result.palette, edge_aware=aware)
    labels, sq = benchmark.pedantic(
        dither, setup=run_plain if edge_aware else None, rounds=3 if full else 1, iterations=1
    )
    mse = sq / (3 * labels.size)
    info = {"size": f"{pixels.shape[1]}x{pixels.shape[0]}", "space": space, "mode": mode, "cpu_s": min(cpu)}
    benchmark.extra_info.update({**info, "psnr": psnr_from(mse)})
    assert labels.min() >= 0 and labels.max() < 16
    assert psnr_from(mse) > 20
    if full and edge_aware:
        ratio = min(cpu) / min(plain_cpu)
        benchmark.extra_info["ratio_to_floyd_steinberg"] = ratio
        assert ratio <= EDGE_AWARE_MAX_RATIO, f"{space}: edge-aware {ratio:.2f}x Floyd-Steinberg's CPU time"
    elif full:
        assert min(cpu) < DITHER_GOAL_S, f"{space}: {min(cpu):.2f} s of CPU for 24 MP (goal < {DITHER_GOAL_S} s)"


def psnr_from(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


COMPARE_K = (16, 64, 256)
COMPARE_IMAGES = ("raccoon", "china.jpg", "flower.jpg")


def _sample_image(name: str, raccoon: np.ndarray) -> np.ndarray:
    if name == "raccoon":
        return raccoon
    sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="china.jpg and flower.jpg come with scikit-learn")
    return np.ascontiguousarray(sklearn_datasets.load_sample_image(name))


def _png_bytes(image: Any) -> int:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return len(buf.getvalue())


#: Edge-aware dithering's PNG may be at most this much larger than libimagequant's dithered one.
MAX_BYTES_RATIO = 1.1


@pytest.mark.parametrize("mode", ["none", "floyd-steinberg", "edge-aware"], ids=["plain", "dithered", "edge-aware"])
@pytest.mark.parametrize("k", COMPARE_K)
@pytest.mark.parametrize("name", COMPARE_IMAGES)
def test_quantize_against_pillow_and_libimagequant(
    benchmark: Any, raccoon: np.ndarray, name: str, k: int, mode: str
) -> None:
    """PSNR, SSIM, mean CIEDE2000, PNG bytes and wall time of ours (``dither=mode``), Pillow's
    median cut and fast octree, and libimagequant (pngquant's engine), the three baselines
    dithered unless ``mode`` is ``"none"``.

    Goals asserted at full size: without dithering our PSNR is at least libimagequant's;
    edge-aware, our PSNR and SSIM are at least, and mean CIEDE2000 at most, libimagequant's
    dithered ones, and the PNG within :data:`MAX_BYTES_RATIO` of its size.
    """
    imagequant = pytest.importorskip("imagequant", reason="the libimagequant baseline (pip install 'kmeans[bench]')")
    metrics = pytest.importorskip("kmeans.image.metrics")
    pytest.importorskip("skimage", reason="SSIM and CIEDE2000 need scikit-image (pip install 'kmeans[metrics]')")
    full = not benchmark.disabled
    pixels = _sample_image(name, raccoon)
    if not full:
        pixels = np.ascontiguousarray(pixels[::16, ::16])
    pil_image = Image.fromarray(pixels)
    rounds = 3 if full else 1
    dither = mode != "none"

    def timed(fn: Any) -> tuple[Any, float]:
        times, out = [], None
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, statistics.median(times)

    rows: dict[str, dict[str, float]] = {}

    def pillow(method: Any) -> Any:
        # Image.quantize(dither=) only dithers when mapping to a given palette, so the
        # dithered baseline maps the image again to the palette Pillow chose.
        chosen = pil_image.quantize(k, method=method, dither=Image.Dither.NONE)
        return pil_image.quantize(palette=chosen, dither=Image.Dither.FLOYDSTEINBERG) if dither else chosen

    for impl, fn in {
        "median cut": lambda: pillow(Image.Quantize.MEDIANCUT),
        "fast octree": lambda: pillow(Image.Quantize.FASTOCTREE),
        "libimagequant": lambda: imagequant.quantize_pil_image(
            pil_image, dithering_level=1.0 if dither else 0.0, max_colors=k
        ),
    }.items():
        out, seconds = timed(fn)
        rgb = np.asarray(out.convert("RGB"))
        rows[impl] = {"psnr": psnr(rgb, pixels), **metrics.quality(pixels, rgb), "bytes": _png_bytes(out), "s": seconds}

    def ours() -> Any:
        return quantize(pixels, n_clusters=k, seed=0, dither=mode)

    result = benchmark.pedantic(ours, rounds=rounds, iterations=1)
    ours_s = benchmark.stats.stats.median if benchmark.stats is not None else float("nan")
    rows["ours"] = {
        "psnr": result.psnr,
        **metrics.quality(pixels, result.image),
        "bytes": len(result.to_bytes("PNG")),
        "s": ours_s,
    }
    benchmark.extra_info.update({"image": name, "k": k, "dither": mode, "size": f"{pixels.shape[1]}x{pixels.shape[0]}"})
    benchmark.extra_info.update({f"{impl} {key}": value for impl, row in rows.items() for key, value in row.items()})
    for row in rows.values():
        assert 0 < row["ssim"] <= 1 and row["ciede2000"] >= 0 and row["bytes"] > 0
    liq, cell = rows["libimagequant"], f"{name} k={k} {mode}"
    if full and not dither:
        assert result.psnr >= liq["psnr"], f"{cell}: PSNR below libimagequant's"
    if full and mode == "edge-aware":
        ours_row = rows["ours"]
        missed = [key for key in ("psnr", "ssim") if ours_row[key] < liq[key]]
        missed += ["ciede2000"] if ours_row["ciede2000"] > liq["ciede2000"] else []
        missed += ["bytes"] if ours_row["bytes"] > MAX_BYTES_RATIO * liq["bytes"] else []
        assert not missed, f"{cell}: {', '.join(missed)} behind libimagequant's dithered output"
