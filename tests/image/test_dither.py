"""Floyd-Steinberg and edge-aware dithering: the compiled kernel against a plain-Python reference,
and what each is for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from image_helpers import KNOWN_COLORS, tiled_image, write_png

from kmeans import ValidationError
from kmeans.image import dither, load_image, quantize
from kmeans.image.colorspace import DEFAULT_TOL, to_features
from kmeans.image.dither import EDGE_LEVELS, QUIET_LEVELS, floyd_steinberg
from kmeans.image.quantize import pixel_mse


def reference_edge_share(image: np.ndarray, start: np.ndarray, strength: float) -> np.ndarray:
    """Each pixel's share of its error in the edge-aware mode: strength x flatness x agreement squared."""
    h, w, _ = image.shape
    f = image.astype(np.float64)
    p = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")  # a missing neighbour is the pixel itself
    across = np.abs(p[1:-1, :-2] + p[1:-1, 2:] - 2 * f)
    down = np.abs(p[:-2, 1:-1] + p[2:, 1:-1] - 2 * f)
    flat = 1.0 - np.maximum(across, down).max(axis=2) / EDGE_LEVELS
    labels = start.reshape(h, w)
    share = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            block = labels[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3]
            agree = (np.sum(block == labels[y, x]) - 1) / (block.size - 1) if block.size > 1 else 1.0
            share[y, x] = strength * flat[y, x] * agree * agree if flat[y, x] > 0 else 0.0
    return share


def reference_floyd_steinberg(
    features: np.ndarray,
    image: np.ndarray,
    palette: np.ndarray,
    palette_rgb: np.ndarray,
    strength: float,
    share: np.ndarray | None = None,
    quiet: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Serpentine Floyd-Steinberg with a brute-force nearest entry (ties to the lowest index),
    passing on ``strength`` of each error or, given, each pixel's ``share`` and dropping a
    carried error whose squared norm is under ``quiet``; the error is summed over RGB
    levels, or premultiplied RGB and alpha for RGBA."""
    h, w, dims = features.shape
    lo, hi = palette.min(axis=0), palette.max(axis=0)
    cur, nxt = np.zeros((w + 2, dims)), np.zeros((w + 2, dims))
    labels = np.zeros((h, w), dtype=np.intp)
    sq = 0.0
    for y in range(h):
        forward = y % 2 == 0
        for x in range(w) if forward else range(w - 1, -1, -1):
            if image.shape[2] == 4 and image[y, x, 3] == 0:
                labels[y, x] = int(np.argmin(((features[y, x] - palette) ** 2).sum(axis=1)))
                continue
            carried = cur[x + 1] if float(np.sum(cur[x + 1] ** 2)) >= quiet else 0.0
            v = np.minimum(np.maximum(features[y, x] + carried, lo), hi)
            d = [sum((v[j] - palette[e, j]) ** 2 for j in range(dims)) for e in range(palette.shape[0])]
            best = min(range(len(d)), key=lambda e: (d[e], e))
            labels[y, x] = best
            sq += float(((_levels(image[y, x]) - _levels(palette_rgb[best])) ** 2).sum())
            err = (strength if share is None else share[y, x]) * (v - palette[best])
            ahead, behind = (x + 2, x) if forward else (x, x + 2)
            cur[ahead] += err * (7.0 / 16.0)
            nxt[behind] += err * (3.0 / 16.0)
            nxt[x + 1] += err * (5.0 / 16.0)
            nxt[ahead] += err * (1.0 / 16.0)
        cur, nxt = nxt, np.zeros((w + 2, dims))
    return labels, sq


def _levels(color: np.ndarray) -> np.ndarray:
    c = color.astype(np.float64)
    return c if c.shape[0] == 3 else np.concatenate([c[:3] * c[3] / 255.0, c[3:]])


def _nearest(space_pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    flat = space_pixels.reshape(-1, palette.shape[1])
    return np.argmin(((flat[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2), axis=1)


@pytest.mark.parametrize("edge_aware", [False, True], ids=["floyd-steinberg", "edge-aware"])
@pytest.mark.parametrize("interpreted", [True, False], ids=["interpreted", "compiled"])
@pytest.mark.parametrize(("space", "strength", "channels"), [("rgb", 1.0, 3), ("oklab", 0.75, 3), ("lab", 1.0, 4)])
def test_the_kernel_gives_the_labels_and_error_of_the_reference(
    space: str, strength: float, channels: int, interpreted: bool, edge_aware: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dither, "INTERPRETED_PIXELS", 1 << 20 if interpreted else 0)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (9, 11, channels), dtype=np.uint8)
    palette_rgb = rng.integers(0, 256, (6, channels), dtype=np.uint8)
    palette_rgb[5] = palette_rgb[2]  # a duplicated entry: ties must go to the lower index
    if channels == 4:
        image[:, :, 3] = rng.choice(np.array([0, 128, 255], dtype=np.uint8), size=(9, 11))
        image[image[:, :, 3] == 0] = 0
    if edge_aware:  # an opaque smooth patch (small second differences) amid the noise, so some pixels dither
        image[1:7, 2:10] = (np.arange(8)[None, :, None] * 3 + np.arange(6)[:, None, None] * 2 + 90).astype(np.uint8)
    palette = to_features(palette_rgb, space)
    features = to_features(image.reshape(-1, channels), space).reshape(9, 11, -1)
    start = _nearest(features, palette)
    colors, inverse = np.unique(image.reshape(-1, channels), axis=0, return_inverse=True)
    fold = {"inverse": inverse.reshape(-1), "space_colors": to_features(colors, space)}
    labels, sq = floyd_steinberg(
        image,
        start,
        palette,
        palette_rgb,
        strength=strength,
        edge_aware=edge_aware,
        level=10 * DEFAULT_TOL[space],
        **({} if space == "rgb" else fold),
    )
    share = reference_edge_share(image, start, strength) if edge_aware else None
    quiet = (QUIET_LEVELS * 10 * DEFAULT_TOL[space]) ** 2 if edge_aware else 0.0
    want_labels, want_sq = reference_floyd_steinberg(features, image, palette, palette_rgb, strength, share, quiet)
    assert np.array_equal(labels.reshape(9, 11), want_labels)
    assert sq == pytest.approx(want_sq, rel=1e-12)
    if edge_aware:  # the case has pixels that dither and pixels that do not
        assert 0 < np.count_nonzero(share) < share.size
    if channels == 4:  # fully transparent pixels keep their undithered entry
        clear = image.reshape(-1, 4)[:, 3] == 0
        assert clear.any() and np.array_equal(labels[clear], start[clear])
    assert 5 not in labels


@pytest.mark.parametrize("edge_aware", [False, True], ids=["floyd-steinberg", "edge-aware"])
def test_strength_zero_is_the_exact_nearest_entry_from_any_start(edge_aware: bool) -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    palette_rgb = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    palette = palette_rgb.astype(np.float64)
    start = rng.integers(0, 40, rgb.shape[0] * rgb.shape[1])  # a poor start must not change the answer
    labels, _ = floyd_steinberg(rgb, start, palette, palette_rgb, strength=0.0, edge_aware=edge_aware)
    assert np.array_equal(labels, _nearest(rgb.astype(np.float64), palette))


def _compiled_case(image: np.ndarray, palette_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert image.shape[0] * image.shape[1] > dither.INTERPRETED_PIXELS  # the compiled kernel runs
    palette = palette_rgb.astype(np.float64)
    return image, _nearest(image.astype(np.float64), palette), palette


def test_edge_aware_is_floyd_steinberg_on_a_flat_area() -> None:
    # One color between two entries: no second differences and one undithered entry everywhere.
    image, start, palette = _compiled_case(
        np.full((70, 90, 3), 100, np.uint8), np.array([[90] * 3, [120] * 3], np.uint8)
    )
    pal8 = palette.astype(np.uint8)
    plain, plain_sq = floyd_steinberg(image, start, palette, pal8, strength=1.0)
    exact, exact_sq = floyd_steinberg(image, start, palette, pal8, strength=1.0, edge_aware=True, level=0.0)
    assert np.array_equal(exact, plain) and exact_sq == plain_sq  # no carried error dropped: the same labels
    aware, _ = floyd_steinberg(image, start, palette, pal8, strength=1.0, edge_aware=True)
    # Dropping the carried errors under sqrt(2) levels keeps the mix: 1/3 of the pixels at 120 (mean 100).
    assert np.mean(aware) == pytest.approx(np.mean(plain), abs=0.01)
    assert np.mean(aware) == pytest.approx(1 / 3, abs=0.01)


@pytest.mark.parametrize("interpreted", [True, False], ids=["interpreted", "compiled"])
def test_edge_aware_drops_small_carried_errors_so_a_near_match_stays(
    interpreted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gray 100 against entries one red level below and 40 above: Floyd-Steinberg piles up the
    # one-level errors until a pixel flips; edge-aware drops every carried error (at most one
    # level here) under sqrt(2) levels.
    monkeypatch.setattr(dither, "INTERPRETED_PIXELS", 1 << 20 if interpreted else 0)
    image = np.full((30, 40, 3), 100, np.uint8)
    palette_rgb = np.array([[99, 100, 100], [140, 100, 100]], np.uint8)
    palette = palette_rgb.astype(np.float64)
    start = np.zeros(30 * 40, np.intp)
    plain, _ = floyd_steinberg(image, start, palette, palette_rgb, strength=1.0)
    aware, sq = floyd_steinberg(image, start, palette, palette_rgb, strength=1.0, edge_aware=True)
    share = reference_edge_share(image, start, 1.0)
    want, want_sq = reference_floyd_steinberg(image.astype(np.float64), image, palette, palette_rgb, 1.0, share, 2.0)
    assert np.array_equal(aware, want.reshape(-1)) and sq == pytest.approx(want_sq, rel=1e-12)
    assert np.count_nonzero(aware) == 0 and np.count_nonzero(plain) > 0


def test_edge_aware_leaves_texture_and_edges_at_the_nearest_entry() -> None:
    # A checkerboard of two off-palette colors, each above its nearest entry (the errors add
    # up): every pixel is on an edge, so none is dithered.
    check = (np.indices((70, 90)).sum(axis=0) % 2).astype(bool)
    image = np.where(check[:, :, None], np.uint8(104), np.uint8(140)).astype(np.uint8).repeat(3, axis=2)
    image, start, palette = _compiled_case(image, np.array([[90] * 3, [125] * 3, [170] * 3], np.uint8))
    aware, _ = floyd_steinberg(image, start, palette, palette.astype(np.uint8), strength=1.0, edge_aware=True)
    plain, _ = floyd_steinberg(image, start, palette, palette.astype(np.uint8), strength=1.0)
    assert np.array_equal(aware, start)
    assert not np.array_equal(plain, start)


def test_edge_aware_gives_the_same_labels_every_time_compiled_or_interpreted(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    smooth = np.cumsum(rng.integers(-2, 3, (80, 96, 3)), axis=1) + 128
    image, start, palette = _compiled_case(np.clip(smooth, 0, 255).astype(np.uint8), rng.integers(0, 256, (12, 3)))
    runs = [floyd_steinberg(image, start, palette, palette.astype(np.uint8), edge_aware=True) for _ in range(2)]
    monkeypatch.setattr(dither, "INTERPRETED_PIXELS", 1 << 20)
    runs.append(floyd_steinberg(image, start, palette, palette.astype(np.uint8), edge_aware=True))
    for labels, sq in runs[1:]:
        assert np.array_equal(labels, runs[0][0]) and sq == runs[0][1]
    assert labels.min() >= 0 and labels.max() < 12 and not np.array_equal(labels, start)


@pytest.mark.parametrize("mode", ["floyd-steinberg", "edge-aware"])
def test_full_strength_dithering_keeps_the_mean_of_a_gray_ramp_where_nearest_mapping_steps(mode: str) -> None:
    ramp = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    plain = quantize(ramp, n_clusters=2)
    dithered = quantize(ramp, n_clusters=2, dither=mode, dither_strength=1.0)
    assert np.array_equal(plain.palette, dithered.palette)
    # Mean level of every 48x8 block against the ramp's: dithering mixes the two colors in
    # proportion, nearest mapping jumps from one to the other.
    blocks = ramp[:, :, None].reshape(48, 8, 8).mean(axis=(0, 2))
    dithered_blocks = dithered.image[:, :, 0].reshape(48, 8, 8).mean(axis=(0, 2))
    plain_blocks = plain.image[:, :, 0].reshape(48, 8, 8).mean(axis=(0, 2))
    inside = (blocks > plain.palette[:, 0].min()) & (blocks < plain.palette[:, 0].max())  # levels the two mix to
    assert inside.sum() >= 4
    assert np.abs(dithered_blocks - blocks)[inside].max() < 3
    assert np.abs(plain_blocks - blocks)[inside].max() > 30


@pytest.mark.parametrize("mode", ["floyd-steinberg", "edge-aware"])
def test_a_dithered_result_reports_the_numbers_of_its_own_pixels(mode: str) -> None:
    image = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    result = quantize(image, n_clusters=5, dither=mode, dither_strength=0.5, color_space="lab")
    assert np.array_equal(result.image, result.palette[result.labels])
    assert result.mse == pytest.approx(pixel_mse(image, result.image), rel=1e-12)
    assert np.array_equal(result.counts, np.bincount(result.labels.reshape(-1), minlength=5))
    assert (result.summary()["dither"], result.summary()["dither_strength"]) == (mode, 0.5)


@pytest.mark.parametrize("mode", ["floyd-steinberg", "edge-aware"])
def test_an_image_with_at_most_k_colors_is_unchanged_by_dithering(mode: str) -> None:
    image = tiled_image(KNOWN_COLORS, 12, 16)
    assert np.array_equal(quantize(image, n_clusters=4, dither=mode).image, image)


@pytest.mark.parametrize(
    ("dither", "strength", "message"),
    [
        ("ordered", 1.0, "choose one of none, floyd-steinberg, edge-aware"),
        ("Edge-Aware", 0.5, "unknown dither"),
        ("none", 1.5, "from 0 to 1"),
        ("edge-aware", -0.1, "from 0 to 1"),
        ("edge-aware", "0.5", "must be a number"),
    ],
)
def test_an_unknown_dither_or_a_strength_outside_zero_to_one_is_refused(
    dither: str, strength: float, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        quantize(tiled_image(KNOWN_COLORS), n_clusters=2, dither=dither, dither_strength=strength)


def test_the_command_line_dithers_edge_aware_and_says_so(tmp_path: Path) -> None:
    ramp = np.repeat(np.tile(np.linspace(0, 255, 32).round().astype(np.uint8), (8, 1))[:, :, None], 3, axis=2)
    write_png(tmp_path / "ramp.png", ramp)
    proc = subprocess.run(
        [sys.executable, "-m", "kmeans", "quantize", "ramp.png", "-k", "2", "--dither", "edge-aware", "--json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["dither"], doc["dither_strength"]) == ("edge-aware", dither.DEFAULT_STRENGTH)
    written = load_image(tmp_path / "ramp-k2.png")
    want = quantize(ramp, n_clusters=2, dither="edge-aware")
    assert np.array_equal(written, want.image)
    assert doc["written"]["mse"] == pytest.approx(float(np.mean((written.astype(float) - ramp) ** 2)), rel=1e-12)
