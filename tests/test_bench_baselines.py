"""The paper's code, ported (kmeans.bench.baselines): it must behave as the paper's code did."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from kmeans import KMeans
from kmeans.bench._common import CENTER_OFFSET, distinct_colors, inertia_of, load_raccoon, shared_centers
from kmeans.bench.baselines import paper_kmeans_numpy


@pytest.fixture(scope="module")
def small_raccoon() -> NDArray[np.uint8]:
    return load_raccoon(downsample=16)


@pytest.mark.parametrize("k", [2, 5])
def test_numpy_port_follows_lloyd_from_the_same_centers(small_raccoon: NDArray[np.uint8], k: int) -> None:
    centers = shared_centers(small_raccoon, k)
    _, means = paper_kmeans_numpy(small_raccoon, k, 4, init_centers=centers)
    model = KMeans(n_clusters=k, init=centers, max_iter=4, tol=0.0).fit(small_raccoon)
    np.testing.assert_allclose(means, model.cluster_centers_, rtol=1e-12)


def test_numpy_port_returns_the_image_painted_with_its_means(small_raccoon: NDArray[np.uint8]) -> None:
    centers = shared_centers(small_raccoon, 3)
    new_img, means = paper_kmeans_numpy(small_raccoon, 3, 2, init_centers=centers)
    assert new_img.shape == small_raccoon.shape
    colors = {tuple(c) for c in new_img.reshape(-1, 3).tolist()}
    assert colors == {tuple(int(v) for v in m) for m in means}


def test_numpy_port_sets_the_mean_of_an_empty_cluster_to_infinity() -> None:
    img = np.array([[[0, 0, 0], [1, 1, 1], [2, 2, 2]]], dtype=np.uint8)
    centers = np.array([[1.0, 1.0, 1.0], [200.0, 200.0, 200.0]])  # nothing is near the second center
    _, means = paper_kmeans_numpy(img, 2, 1, init_centers=centers)
    np.testing.assert_array_equal(means[0], [1.0, 1.0, 1.0])
    assert np.isinf(means[1]).all()


def test_numpy_port_breaks_ties_toward_the_last_center() -> None:
    img = np.array([[[1, 0, 0], [1, 0, 0]]], dtype=np.uint8)
    centers = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])  # the pixel is exactly between them
    _, means = paper_kmeans_numpy(img, 2, 1, init_centers=centers)
    assert np.isinf(means[0]).all()
    np.testing.assert_array_equal(means[1], [1.0, 0.0, 0.0])


def test_numpy_port_default_init_starts_from_pixels_of_the_image(small_raccoon: NDArray[np.uint8]) -> None:
    np.random.seed(3)  # noqa: NPY002 (the paper's code draws from NumPy's global generator)
    _, means = paper_kmeans_numpy(small_raccoon, 4, 0)
    pixels = {tuple(p) for p in small_raccoon.reshape(-1, 3).tolist()}
    assert all(tuple(int(v) for v in m) in pixels for m in means)


def test_shared_centers_are_distinct_colors_moved_off_the_integer_grid(small_raccoon: NDArray[np.uint8]) -> None:
    centers = shared_centers(small_raccoon, 6, seed=1)
    base = centers - CENTER_OFFSET
    np.testing.assert_allclose(base, np.round(base), atol=1e-9)
    colors = {tuple(c) for c in distinct_colors(small_raccoon.reshape(-1, 3))[0].tolist()}
    assert len({tuple(round(v) for v in b.tolist()) for b in base}) == 6
    assert all(tuple(round(v) for v in b.tolist()) in colors for b in base)


def test_inertia_of_ignores_the_infinite_means_of_empty_clusters() -> None:
    points = np.array([[0.0, 0.0], [2.0, 0.0]])
    centers = np.array([[1.0, 0.0], [np.inf, np.inf]])
    assert inertia_of(points, centers) == 2.0
    assert inertia_of(points, centers, np.array([3.0, 1.0])) == 4.0
