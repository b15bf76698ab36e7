"""``quality=(min, max)``: pngquant's 0-100 scale, measured as libimagequant measures it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from kmeans import ValidationError
from kmeans.data import raccoon_path
from kmeans.image import load_image, quantize, quantize_shared
from kmeans.image.quality import (
    QualityTooLowError,
    check_quality,
    error_to_quality,
    palette_error,
    parse_quality,
    quality_to_error,
)


def _error(original: np.ndarray, image: np.ndarray) -> float:
    a, b = original.reshape(-1, original.shape[-1]), image.reshape(-1, image.shape[-1])
    return palette_error(a, np.ones(a.shape[0]), b)


def gradient(h: int = 24, w: int = 32) -> np.ndarray:
    """A soft gradient (levels 100 to 163): a few dozen colors reach quality 70."""
    y, x = np.mgrid[0:h, 0:w]
    return (100 + np.stack([x * 63 // (w - 1), y * 63 // (h - 1), (x + y) * 63 // (w + h - 2)], axis=2)).astype(
        np.uint8
    )


def test_the_scale_runs_from_any_error_to_none_and_each_quality_reads_back() -> None:
    errors = [quality_to_error(q) for q in range(101)]
    assert errors[0] == math.inf and errors[100] == 0.0
    assert all(a > b for a, b in itertools.pairwise(errors))
    assert [error_to_quality(e) for e in errors] == list(range(101))
    assert error_to_quality(1e9) == 0


@pytest.mark.parametrize(
    ("text", "pair"), [("65-80", (65, 80)), ("80", (72, 80)), ("-80", (0, 80)), ("60-", (60, 100)), ("0-100", (0, 100))]
)
def test_parse_quality_takes_pngquant_s_forms(text: str, pair: tuple[int, int]) -> None:
    assert parse_quality(text) == pair


@pytest.mark.parametrize("text", ["", "-", "80-60", "5x", "0-101", "a-b"])
def test_parse_quality_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValidationError, match="quality"):
        parse_quality(text)


@pytest.mark.parametrize("bad", [(80, 60), (0, 101), (-1, 5), (1.5, 5), (True, 5), (50,), "50-60"])
def test_check_quality_refuses_pairs_out_of_order_or_range(bad: object) -> None:
    with pytest.raises(ValidationError, match="quality must be a pair"):
        check_quality(bad)


def test_quantize_chooses_the_fewest_colors_that_meet_the_maximum() -> None:
    img = gradient()
    result = quantize(img, 64, quality=(0, 70))
    k = result.palette.shape[0]
    assert 1 < k < 64 and result.n_clusters == k
    assert _error(img, result.image) <= quality_to_error(70)
    assert result.quality == error_to_quality(_error(img, result.image)) >= 70
    assert result.summary()["quality"] == result.quality
    same = quantize(img, k)  # the chosen fit is quantize's own fit for that k
    assert np.array_equal(same.image, result.image) and same.quality is None
    assert _error(img, quantize(img, k - 1).image) > quality_to_error(70)


def test_a_maximum_out_of_reach_gives_the_most_colors_allowed() -> None:
    result = quantize(gradient(), 4, quality=(0, 99))
    assert result.palette.shape[0] == 4 and result.quality is not None and result.quality < 99


def test_a_missed_minimum_raises_with_what_was_reached() -> None:
    with pytest.raises(QualityTooLowError, match="below the minimum 95") as info:
        quantize(gradient(), 4, quality=(95, 100))
    assert (info.value.minimum, info.value.n_colors) == (95, 4) and info.value.quality < 95


def test_an_image_with_few_colors_meets_quality_100_with_exactly_its_colors() -> None:
    img = np.array([[[255, 0, 0], [0, 0, 255]], [[0, 255, 0], [255, 0, 0]]], dtype=np.uint8)
    result = quantize(img, 256, quality=(100, 100))
    assert result.palette.shape[0] == 3 and np.array_equal(result.image, img) and result.quality == 100


def test_a_shared_palette_is_chosen_over_all_the_images() -> None:
    a, b = gradient(), gradient()[::-1]
    results = quantize_shared([a, b], 64, quality=(0, 70))
    assert len({r.palette.shape[0] for r in results}) == 1 and results[0].quality is not None
    both = np.concatenate([a, b])
    image = np.concatenate([r.image for r in results])
    assert _error(both, image) <= quality_to_error(70)


def test_the_measure_agrees_with_libimagequant_s_own_verdict_within_a_point() -> None:
    imagequant = pytest.importorskip("imagequant")
    original = load_image(raccoon_path())
    rgba = Image.fromarray(original).convert("RGBA")
    liq = np.asarray(imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=64).convert("RGB"))
    ours = error_to_quality(_error(original, liq))
    # libimagequant refuses (raises) when its own quality is below min_quality.
    imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=64, min_quality=ours - 1)
    with pytest.raises(Exception, match="Quality too low"):
        imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=64, min_quality=ours + 2)


@settings(max_examples=15, deadline=None)
@given(
    image=arrays(np.uint8, st.tuples(st.integers(2, 8), st.integers(2, 8), st.just(3))),
    kmax=st.integers(1, 12),
    high=st.integers(0, 100),
)
def test_the_choice_meets_the_target_and_one_color_less_does_not(image: np.ndarray, kmax: int, high: int) -> None:
    result = quantize(image, kmax, quality=(0, high))
    k = result.palette.shape[0]
    error = _error(image, result.image)
    assert result.quality == error_to_quality(error)
    if error <= quality_to_error(high) and k > 1:
        assert _error(image, quantize(image, k - 1).image) > quality_to_error(high)
    if error > quality_to_error(high):  # out of reach: every color allowed (or every distinct one) is used
        assert k == min(kmax, len({tuple(c) for c in image.reshape(-1, 3)}))
