"""SSIM and mean CIEDE2000 (scikit-image, the ``metrics`` extra) of quantized images."""

from __future__ import annotations

import numpy as np
import pytest

skimage = pytest.importorskip("skimage", reason="the metrics need scikit-image (pip install 'kmeans[metrics]')")

from skimage.color import deltaE_ciede2000, rgb2lab  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from kmeans.image import quantize  # noqa: E402
from kmeans.image.metrics import mean_ciede2000, quality, ssim  # noqa: E402

IMAGE = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_an_image_against_itself_has_ssim_one_and_no_color_difference() -> None:
    assert quality(IMAGE, IMAGE) == {"ssim": 1.0, "ciede2000": 0.0}


def test_the_numbers_are_scikit_image_s_on_the_rgb_levels() -> None:
    result = quantize(IMAGE, n_clusters=6)
    want_ssim = structural_similarity(IMAGE.astype(float), result.image.astype(float), channel_axis=2, data_range=255)
    want_de = deltaE_ciede2000(rgb2lab(IMAGE / 255.0), rgb2lab(result.image / 255.0)).mean()
    assert ssim(IMAGE, result.image) == pytest.approx(want_ssim, rel=1e-12)
    assert mean_ciede2000(IMAGE, result.image) == pytest.approx(want_de, rel=1e-12)


def test_fully_transparent_pixels_are_left_out_of_the_color_difference() -> None:
    rgba = np.concatenate([IMAGE, np.full((24, 32, 1), 255, np.uint8)], axis=2)
    changed = rgba.copy()
    rgba[:12, :, 3] = 0
    changed[:12, :, :3] = 0  # a different hidden color under alpha 0 ...
    changed[:12, :, 3] = 0
    assert mean_ciede2000(rgba, changed) == 0.0  # ... is no color difference
