"""k-means|| and per-partition initializers on the NumPy engine (the Spark agreement is in tests/spark)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, ValidationError
from kmeans.backends.numpy import NumPyDataset
from kmeans.distance.l1 import L1
from kmeans.distance.l2 import L2
from kmeans.init._candidates import fold_candidates, reduce_to_k
from kmeans.init.kmeans_parallel import KMeansParallel
from kmeans.init.per_partition import PerPartition

RNG = np.random.default_rng(1)
X = np.concatenate([RNG.normal(c, 0.5, size=(150, 2)) for c in [(0, 0), (8, 0), (0, 8), (8, 8)]])


class CountingDataset(NumPyDataset):
    """A NumPy dataset that counts passes over the data."""

    passes = 0

    def map_reduce(self, fn: Any, merge: Any) -> Any:
        self.passes += 1
        return super().map_reduce(fn, merge)


def _is_data_row(row: np.ndarray) -> bool:
    return bool((row == X).all(axis=1).any())


@pytest.mark.parametrize("init", [KMeansParallel(), PerPartition()], ids=["k-means||", "per-partition"])
def test_returns_k_distinct_rows_of_the_data(init: Any) -> None:
    centers = init.init(NumPyDataset(X), 4, L2.assign, seed=3)
    assert centers.shape == (4, 2) and centers.dtype == np.float64
    assert np.unique(centers, axis=0).shape[0] == 4
    assert all(_is_data_row(c) for c in centers)


@pytest.mark.parametrize("init", [KMeansParallel(), PerPartition()], ids=["k-means||", "per-partition"])
def test_the_same_seed_gives_the_same_centers(init: Any) -> None:
    a = init.init(NumPyDataset(X), 4, L2.assign, seed=3)
    b = init.init(NumPyDataset(X), 4, L2.assign, seed=3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("block_rows", [7, 64, 1000])
def test_k_means_parallel_does_not_depend_on_the_block_layout(block_rows: int) -> None:
    ref = KMeansParallel().init(NumPyDataset(X, block_rows=10_000), 4, L2.assign, seed=9)
    got = KMeansParallel().init(NumPyDataset(X, block_rows=block_rows), 4, L2.assign, seed=9)
    np.testing.assert_array_equal(got, ref)


def test_k_means_parallel_needs_two_passes_per_round_plus_two() -> None:
    ds = CountingDataset(X)
    KMeansParallel(rounds=3).init(ds, 4, L2.assign, seed=0)
    assert ds.passes == 2 * 3 + 2


def test_per_partition_needs_one_pass() -> None:
    ds = CountingDataset(X, block_rows=100)
    PerPartition().init(ds, 4, L2.assign, seed=0)
    assert ds.passes == 1


def test_k_means_parallel_finds_one_center_per_well_separated_cluster() -> None:
    centers = KMeansParallel().init(NumPyDataset(X), 4, L2.assign, seed=5)
    quadrant = {(c[0] > 4, c[1] > 4) for c in centers}
    assert len(quadrant) == 4


def test_zero_weight_rows_are_never_centers() -> None:
    w = np.ones(X.shape[0])
    w[:150] = 0.0
    for init in (KMeansParallel(), PerPartition()):
        centers = init.init(NumPyDataset(X, w), 3, L2.assign, seed=2)
        assert not any((X[:150] == c).all(axis=1).any() for c in centers)


def test_k_equal_to_the_number_of_distinct_rows_gives_all_of_them() -> None:
    data = np.repeat(np.array([[0.0], [1.0], [5.0]]), 4, axis=0)
    for init in (KMeansParallel(), PerPartition()):
        centers = init.init(NumPyDataset(data), 3, L1.assign, seed=1)
        assert sorted(centers.ravel().tolist()) == [0.0, 1.0, 5.0]


def test_fold_candidates_merges_duplicates_in_lexicographic_order() -> None:
    pts, w = fold_candidates(np.array([[2.0, 0.0], [1.0, 5.0], [2.0, 0.0], [1.0, 1.0]]), np.array([1.0, 2.0, 3.0, 0.0]))
    assert pts.tolist() == [[1.0, 5.0], [2.0, 0.0]]
    assert w.tolist() == [2.0, 4.0]


def test_reduce_to_k_tops_up_from_the_data_when_candidates_are_few() -> None:
    centers = reduce_to_k(NumPyDataset(X), X[:1], np.ones(1), 3, L2.assign, seed=0)
    assert centers.shape == (3, 2) and np.unique(centers, axis=0).shape[0] == 3
    np.testing.assert_array_equal(centers[0], X[0])


def test_k_means_parallel_rejects_zero_rounds() -> None:
    with pytest.raises(ValidationError, match="rounds must be >= 1"):
        KMeansParallel(rounds=0)


def test_take_sample_on_a_non_spark_dataset_names_the_fix() -> None:
    with pytest.raises(ValidationError, match=r"needs a Spark dataset.*init='random'"):
        KMeans(3, init="take-sample", seed=0).fit(X)


@pytest.mark.parametrize("name", ["k-means||", "per-partition", "take-sample"])
def test_initializers_are_registered_by_name(name: str) -> None:
    from kmeans import registry

    assert registry.initializers[name].name == name
