"""spark-rdd and numpy agree: same seed, same centers, labels and inertia, any partitioning.

Float64 centers agree to 1e-9 relative (merge order only changes rounding); labels are
equal; float32 data is compared at float32 precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmeans import KMeans
from kmeans.backends.spark_rdd import SparkRDDBackend

PARTITIONS = (1, 2, 3, 7)
INITS = ("random", "k-means||")


@st.composite
def problems(draw: Any) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Tiny data with duplicate rows, optional weights, float32/float64, d in 1..8, k in 1..12."""
    d = draw(st.integers(1, 8))
    n_distinct = draw(st.integers(1, 14))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    base = np.asarray(
        draw(st.lists(st.lists(st.integers(-40, 40), min_size=d, max_size=d), min_size=n_distinct, max_size=n_distinct))
    )
    scale = draw(st.sampled_from([1.0, 0.37]))
    reps = draw(st.lists(st.integers(1, 3), min_size=n_distinct, max_size=n_distinct))
    X = (np.repeat(base, reps, axis=0) * scale).astype(dtype)
    weights = None
    if draw(st.booleans()):
        weights = np.asarray(
            draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.25]), min_size=len(X), max_size=len(X)))
        )
        if not (weights > 0).any():
            weights[0] = 1.0
    n_unique = np.unique(X[weights > 0] if weights is not None else X, axis=0).shape[0]
    k = draw(st.integers(1, min(12, n_unique)))
    return X, weights, k


def _assert_agree(X: np.ndarray, w: np.ndarray | None, k: int, init: str, distance: str, parts: int) -> None:
    params = {"n_clusters": k, "init": init, "distance": distance, "seed": 5, "n_init": 1, "max_iter": 4, "tol": 0.0}
    ref = KMeans(**params).fit(X, sample_weight=w)
    got = KMeans(**params, backend=SparkRDDBackend(num_partitions=parts)).fit(X, sample_weight=w)
    rtol = 1e-9 if X.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=rtol, atol=1e-12)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    assert got.inertia_ == pytest.approx(ref.inertia_, rel=rtol, abs=1e-12)
    np.testing.assert_allclose(got.cluster_sizes_, ref.cluster_sizes_, rtol=1e-12)


@pytest.mark.parametrize("distance", ["l2", "l1"])
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(problem=problems(), init=st.sampled_from(INITS), parts=st.sampled_from(PARTITIONS))
def test_spark_rdd_agrees_with_numpy(spark: Any, distance: str, problem: Any, init: str, parts: int) -> None:
    X, w, k = problem
    _assert_agree(X, w, k, init, distance, parts)


WEIGHTED_DUPLICATES = (
    np.repeat(np.random.default_rng(4).normal(size=(9, 3)), [1, 2, 3, 1, 2, 3, 1, 2, 3], axis=0),
    np.random.default_rng(5).uniform(0.0, 2.0, size=18),
)


@pytest.mark.parametrize("distance", ["l2", "l1"])
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("parts", PARTITIONS)
def test_every_partitioning_agrees_with_numpy(spark: Any, parts: int, init: str, distance: str) -> None:
    X, w = WEIGHTED_DUPLICATES
    _assert_agree(X, w, 4, init, distance, parts)
