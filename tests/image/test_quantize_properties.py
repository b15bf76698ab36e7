"""Properties of quantization that hold for every image (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kmeans.image import COLOR_SPACES, quantize


@st.composite
def images_with_few_colors(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """``(image, k)``: an image using at most ``k`` distinct colors."""
    k = draw(st.integers(1, 8))
    palette = draw(arrays(np.uint8, (draw(st.integers(1, k)), 3)))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    idx = draw(arrays(np.intp, (h, w), elements=st.integers(0, palette.shape[0] - 1)))
    return palette[idx], k


@given(case=images_with_few_colors(), space=st.sampled_from(COLOR_SPACES))
def test_an_image_with_at_most_k_colors_is_reproduced_exactly(case: tuple[np.ndarray, int], space: str) -> None:
    image, k = case
    result = quantize(image, n_clusters=k, color_space=space)
    assert np.array_equal(result.image, image)
    assert result.psnr == math.inf


@given(
    image=arrays(np.uint8, st.tuples(st.integers(2, 12), st.integers(2, 12), st.just(3))),
    k=st.integers(1, 5),
)
def test_psnr_does_not_decrease_when_k_grows_from_the_previous_palette(image: np.ndarray, k: int) -> None:
    """Monotone PSNR in k, for nested initializations.

    Independent fits at k and k + 1 are NOT monotone: Lloyd stops in a local optimum,
    and the (k + 1)-fit can land in a worse one than the k-fit (k-means++ draws
    different centers for each k). What is guaranteed is the warm start: initialize
    k + 1 with the k centers plus one more. Adding a center cannot raise any pixel's
    cost, and no Lloyd step raises the total, so the inertia (RGB squared error) of
    k + 1 is at most that of k. The PSNR is measured after rounding the palette to
    8-bit levels, which moves each channel by at most 0.5, so by the triangle
    inequality the root-mean-square error may rise by at most 1 level.
    """
    assume(np.unique(image.reshape(-1, 3), axis=0).shape[0] > k)  # k + 1 distinct colors to fit
    small = quantize(image, n_clusters=k)
    pixels = image.reshape(-1, 3).astype(float)
    costs = np.sum((pixels - small.model.cluster_centers_[small.labels.ravel()]) ** 2, axis=1)
    init = np.vstack([small.model.cluster_centers_, pixels[np.argmax(costs)]])  # costs > 0 there: a new center
    large = quantize(image, n_clusters=k + 1, init=init)
    assert large.inertia <= small.inertia * (1 + 1e-9) + 1e-9
    assert math.sqrt(large.mse) <= math.sqrt(small.mse) + 1.0
    assert large.psnr >= small.psnr - 20 * math.log10(1 + 1.0 / max(math.sqrt(small.mse), 1e-12)) - 1e-9
