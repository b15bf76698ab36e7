"""Data with fewer distinct points ``m`` than ``n_clusters``: the exact optimum, with a warning (docs/rules.md).

The conformance suite checks the same model on every backend; Spark inputs (DataFrames,
weights) are in tests/spark/test_spark_ml.py.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmeans import BisectingKMeans, ConvergenceWarning, KMeans, sweep
from kmeans.errors import ValidationError

ROWS = np.array([[2.0, 1.0], [0.0, 1.0], [5.0, 5.0]])
DATA = np.repeat(ROWS, [3, 2, 4], axis=0)
FEW = r"Number of distinct clusters \(3\) found smaller than n_clusters \(5\)"


def _fit(data: Any = DATA, k: int = 5, **params: Any) -> KMeans:
    sample_weight = params.pop("sample_weight", None)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters"):
        return KMeans(k, seed=0, **params).fit(data, sample_weight=sample_weight)


def test_the_distinct_rows_in_ascending_order_then_cyclic_copies() -> None:
    w = np.arange(1.0, 10.0)
    with pytest.warns(ConvergenceWarning, match=FEW + r".*2 duplicate, empty centers") as caught:
        model = KMeans(5, seed=0).fit(DATA, sample_weight=w)
    assert caught[0].filename == __file__  # the caller's line
    assert model.cluster_centers_.tolist() == [[0.0, 1.0], [2.0, 1.0], [5.0, 5.0], [0.0, 1.0], [2.0, 1.0]]
    assert model.inertia_ == 0.0 and model.n_iter_ == 0 and model.converged_ and model.history_ == []
    assert model.labels_.tolist() == [1, 1, 1, 0, 0, 2, 2, 2, 2]  # a copy is never closer: ties go to the lower index
    assert model.cluster_sizes_.tolist() == [4.0 + 5.0, 1.0 + 2.0 + 3.0, 6.0 + 7.0 + 8.0 + 9.0, 0.0, 0.0]
    np.testing.assert_array_equal(model.predict(ROWS), [1, 0, 2])


def test_l1_gives_the_same_model() -> None:
    l2, l1 = _fit(), _fit(distance="l1")
    np.testing.assert_array_equal(l1.cluster_centers_, l2.cluster_centers_)
    np.testing.assert_array_equal(l1.labels_, l2.labels_)
    assert l1.inertia_ == 0.0


def test_rows_of_weight_zero_are_not_points() -> None:
    data = np.array([[0.0], [1.0], [2.0]])
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(2\) found smaller than n_clusters \(3\)"):
        model = KMeans(3, seed=0).fit(data, sample_weight=[1.0, 0.0, 1.0])
    assert model.cluster_centers_.ravel().tolist() == [0.0, 2.0, 0.0]
    assert model.labels_.tolist() == [0, 0, 1] and model.inertia_ == 0.0


def test_cosine_counts_directions_not_rows() -> None:
    # 8 distinct rows >= k=3, but only 2 directions: the fit finds them in one more pass
    data = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.5, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 2.0], [0.0, 7.0]])
    model = _fit(data, 3, distance="cosine")
    assert model.cluster_centers_.tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    assert model.labels_.tolist() == [1, 1, 1, 1, 0, 0, 0, 0] and model.inertia_ == 0.0
    assert model.cluster_sizes_.tolist() == [4.0, 4.0, 0.0]


def test_cosine_with_enough_directions_fits_as_usual() -> None:
    data = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = KMeans(3, distance="cosine", seed=0).fit(data)
    assert np.unique(model.labels_).size == 3


def test_explicit_init_still_runs_lloyd_with_the_warning() -> None:
    start = np.array([[0.0, 1.0], [2.0, 1.0], [9.0, 9.0], [8.0, 8.0], [7.0, 7.0]])
    with pytest.warns(ConvergenceWarning, match=FEW + r".*Lloyd runs from the given init"):
        model = KMeans(5, init=start, max_iter=3, tol=0.0).fit(DATA)
    assert model.n_iter_ >= 1 and model.history_  # Lloyd ran (and stopped at a fixed point or max_iter)
    assert np.isfinite(model.cluster_centers_).all() and model.inertia_ == 0.0


def test_minibatch_and_compressed_fits_give_the_same_model() -> None:
    reference = _fit()
    for params in ({"algorithm": "minibatch"}, {"compress": True}):
        got = _fit(**params)
        np.testing.assert_array_equal(got.cluster_centers_, reference.cluster_centers_)
        np.testing.assert_array_equal(got.labels_, reference.labels_)
        assert got.inertia_ == 0.0 and got.converged_


def test_sklearn_filters_see_the_warning() -> None:
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    with pytest.warns(SklearnConvergenceWarning, match=FEW):
        KMeans(5, seed=0).fit(DATA)


def test_more_clusters_than_rows_is_still_refused() -> None:
    with pytest.raises(ValidationError, match=r"n_clusters=10 is larger than the number of rows \(9\)"):
        KMeans(10).fit(DATA)


def test_partial_fit_still_needs_k_distinct_rows_in_its_first_chunk() -> None:
    with pytest.raises(ValidationError, match=r"first partial_fit chunk has 3 distinct rows"):
        KMeans(5, algorithm="minibatch").partial_fit(DATA)


def test_sweep_fits_each_k_as_kmeans_does() -> None:
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(3\) found smaller than n_clusters \(4\)"):
        result = sweep(DATA, [2, 4], seed=0, silhouette_size=9)
    np.testing.assert_array_equal(result.centers[1], _fit(k=4).cluster_centers_)
    assert result.inertia[1] == 0.0 and result.n_iter[1] == 0


def test_bisecting_stops_at_the_distinct_points() -> None:
    with pytest.warns(RuntimeWarning, match=r"stopped at 3 clusters of the 5 asked"):
        model = BisectingKMeans(5, seed=0).fit(DATA)
    assert sorted(model.cluster_centers_.tolist()) == ROWS[[1, 0, 2]].tolist() and model.inertia_ == 0.0


@settings(max_examples=25, deadline=None)
@given(
    picks=st.lists(st.integers(0, 3), min_size=1, max_size=30),
    extra=st.integers(1, 3),
    distance=st.sampled_from(["l2", "l1", "cosine"]),
)
def test_the_rule_is_the_exact_optimum(picks: list[int], extra: int, distance: str) -> None:
    points = np.array([[1.0, 2.0], [-3.0, 0.5], [4.0, -1.0], [0.25, 0.0]])
    data = points[picks]
    m = len(set(picks))
    k = m + extra
    if k > data.shape[0]:
        with pytest.raises(ValidationError, match="larger than the number of rows"):
            KMeans(k).fit(data)
        return
    model = _fit(data, k, distance=distance)
    distinct = np.unique(points[sorted(set(picks))], axis=0)
    if distance == "cosine":
        distinct = np.unique(distinct / np.linalg.norm(distinct, axis=1, keepdims=True), axis=0)
    np.testing.assert_array_equal(model.cluster_centers_, distinct[np.arange(k) % m])
    assert model.inertia_ == pytest.approx(0.0, abs=1e-15)
    assert (model.labels_ < m).all() and (model.cluster_sizes_[m:] == 0).all()
    assert model.cluster_sizes_.sum() == data.shape[0]
