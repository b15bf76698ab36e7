"""Floyd-Steinberg dithering: the compiled kernel against a plain-Python reference, and what it is for."""

from __future__ import annotations

import numpy as np
import pytest
from image_helpers import KNOWN_COLORS, tiled_image

from kmeans import ValidationError
from kmeans.image import dither, quantize
from kmeans.image.colorspace import to_features
from kmeans.image.dither import floyd_steinberg
from kmeans.image.quantize import pixel_mse


def reference_floyd_steinberg(
    features: np.ndarray, image: np.ndarray, palette: np.ndarray, palette_rgb: np.ndarray, strength: float
) -> tuple[np.ndarray, float]:
    """Serpentine Floyd-Steinberg with a brute-force nearest entry (ties to the lowest index);
    the error is summed over RGB levels, or premultiplied RGB and alpha for RGBA."""
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
            v = np.minimum(np.maximum(features[y, x] + cur[x + 1], lo), hi)
            d = [sum((v[j] - palette[e, j]) ** 2 for j in range(dims)) for e in range(palette.shape[0])]
            best = min(range(len(d)), key=lambda e: (d[e], e))
            labels[y, x] = best
            sq += float(((_levels(image[y, x]) - _levels(palette_rgb[best])) ** 2).sum())
            err = strength * (v - palette[best])
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


@pytest.mark.parametrize("interpreted", [True, False], ids=["interpreted", "compiled"])
@pytest.mark.parametrize(("space", "strength", "channels"), [("rgb", 1.0, 3), ("oklab", 0.75, 3), ("lab", 1.0, 4)])
def test_the_kernel_gives_the_labels_and_error_of_the_reference(
    space: str, strength: float, channels: int, interpreted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dither, "INTERPRETED_PIXELS", 1 << 20 if interpreted else 0)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (9, 11, channels), dtype=np.uint8)
    palette_rgb = rng.integers(0, 256, (6, channels), dtype=np.uint8)
    palette_rgb[5] = palette_rgb[2]  # a duplicated entry: ties must go to the lower index
    if channels == 4:
        image[:, :, 3] = rng.choice(np.array([0, 128, 255], dtype=np.uint8), size=(9, 11))
        image[image[:, :, 3] == 0] = 0
    palette = to_features(palette_rgb, space)
    features = to_features(image.reshape(-1, channels), space).reshape(9, 11, -1)
    start = _nearest(features, palette)
    colors, inverse = np.unique(image.reshape(-1, channels), axis=0, return_inverse=True)
    fold = {"inverse": inverse.reshape(-1), "space_colors": to_features(colors, space)}
    labels, sq = floyd_steinberg(
        image, start, palette, palette_rgb, strength=strength, **({} if space == "rgb" else fold)
    )
    want_labels, want_sq = reference_floyd_steinberg(features, image, palette, palette_rgb, strength)
    assert np.array_equal(labels.reshape(9, 11), want_labels)
    assert sq == pytest.approx(want_sq, rel=1e-12)
    assert 5 not in labels


def test_strength_zero_is_the_exact_nearest_entry_from_any_start() -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    palette_rgb = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    palette = palette_rgb.astype(np.float64)
    start = rng.integers(0, 40, rgb.shape[0] * rgb.shape[1])  # a poor start must not change the answer
    labels, _ = floyd_steinberg(rgb, start, palette, palette_rgb, strength=0.0)
    assert np.array_equal(labels, _nearest(rgb.astype(np.float64), palette))


def test_full_strength_dithering_keeps_the_mean_of_a_gray_ramp_where_nearest_mapping_steps() -> None:
    ramp = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    plain = quantize(ramp, n_clusters=2)
    dithered = quantize(ramp, n_clusters=2, dither="floyd-steinberg", dither_strength=1.0)
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


def test_a_dithered_result_reports_the_numbers_of_its_own_pixels() -> None:
    image = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    result = quantize(image, n_clusters=5, dither="floyd-steinberg", dither_strength=0.5, color_space="lab")
    assert np.array_equal(result.image, result.palette[result.labels])
    assert result.mse == pytest.approx(pixel_mse(image, result.image), rel=1e-12)
    assert np.array_equal(result.counts, np.bincount(result.labels.reshape(-1), minlength=5))
    assert (result.summary()["dither"], result.summary()["dither_strength"]) == ("floyd-steinberg", 0.5)


def test_an_image_with_at_most_k_colors_is_unchanged_by_dithering() -> None:
    image = tiled_image(KNOWN_COLORS, 12, 16)
    assert np.array_equal(quantize(image, n_clusters=4, dither="floyd-steinberg").image, image)


@pytest.mark.parametrize(
    ("dither", "strength", "message"), [("ordered", 1.0, "unknown dither"), ("none", 1.5, "from 0 to 1")]
)
def test_an_unknown_dither_or_a_strength_outside_zero_to_one_is_refused(
    dither: str, strength: float, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        quantize(tiled_image(KNOWN_COLORS), n_clusters=2, dither=dither, dither_strength=strength)
