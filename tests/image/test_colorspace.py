"""Color-space conversions: reference values, round trips, gamut clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra.numpy import arrays

from kmeans import ValidationError
from kmeans.image.colorspace import COLOR_SPACES, from_space, to_rgb8, to_space

GRID = np.stack(np.meshgrid(*[np.arange(0, 256, 17)] * 3, indexing="ij"), axis=-1).reshape(-1, 3).astype(np.uint8)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_every_grid_color_survives_a_round_trip_exactly(space: str) -> None:
    assert np.array_equal(to_rgb8(to_space(GRID, space), space), GRID)


@pytest.mark.parametrize("space", COLOR_SPACES)
@given(rgb=arrays(np.uint8, (16, 3)))
def test_random_colors_round_trip_to_within_float_rounding(space: str, rgb: np.ndarray) -> None:
    back = from_space(to_space(rgb, space), space)
    assert np.max(np.abs(back - rgb)) < 1e-6


def test_lab_of_white_black_and_red_match_the_cie_reference_values() -> None:
    lab = to_space(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]]), "lab")
    assert np.allclose(lab[0], [100.0, 0.0, 0.0], atol=1e-9)
    assert np.allclose(lab[1], [0.0, 0.0, 0.0], atol=1e-9)
    assert np.allclose(lab[2], [53.2408, 80.0925, 67.2032], atol=2e-3)  # sRGB red, D65


def test_oklab_of_white_and_red_match_ottossons_reference_values() -> None:
    ok = to_space(np.array([[255, 255, 255], [255, 0, 0]]), "oklab")
    assert np.allclose(ok[0], [1.0, 0.0, 0.0], atol=1e-4)
    assert np.allclose(ok[1], [0.627955, 0.224863, 0.125846], atol=1e-5)


@pytest.mark.parametrize(("space", "outside"), [("lab", [50.0, 200.0, 0.0]), ("oklab", [0.5, 0.9, -0.9])])
def test_out_of_gamut_centers_are_clipped_into_8_bit_rgb(space: str, outside: list[float]) -> None:
    raw = from_space(np.array([outside]), space)
    assert (raw < 0).any() or (raw > 255).any()  # really out of gamut
    assert np.array_equal(to_rgb8(np.array([outside]), space), np.clip(np.rint(raw), 0, 255).astype(np.uint8))


def test_unknown_color_space_names_the_choices() -> None:
    with pytest.raises(ValidationError, match=r"unknown color space 'hsv'.*rgb, oklab, lab"):
        to_space(GRID, "hsv")
