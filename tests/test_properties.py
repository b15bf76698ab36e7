"""Hypothesis properties of the whole fit, and agreement with scikit-learn's Lloyd.

Data come from a NumPy generator seeded by hypothesis (continuous data, so exact ties
have probability zero), or from small integers when duplicates are the point. Sizes stay
small so the file runs in seconds under the ``ci`` profile.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kmeans import KMeans
from kmeans.backends.numpy import NumPyBackend
from tests import oracle


@attrs.frozen(eq=False)
class Problem:
    X: np.ndarray
    init: np.ndarray
    weights: np.ndarray | None
    distance: str
    max_iter: int

    @property
    def k(self) -> int:
        return int(self.init.shape[0])

    def fit(self, X: np.ndarray | None = None, weights: Any = "same", **kw: Any) -> KMeans:
        kw.setdefault("backend", NumPyBackend(n_threads=1))
        return KMeans(self.k, init=self.init, distance=self.distance, max_iter=self.max_iter, tol=0.0, **kw).fit(
            self.X if X is None else X, sample_weight=self.weights if isinstance(weights, str) else weights
        )


@st.composite
def problems(
    draw: st.DrawFn, *, integers: bool = False, weighted: bool | None = None, distances: tuple[str, ...] = ("l2", "l1")
) -> Problem:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, 60))
    d = draw(st.integers(1, 4))
    if integers:
        X = rng.integers(0, 4, size=(n, d)).astype(np.float64)
    else:
        X = rng.normal(size=(n, d)) * draw(st.sampled_from([1e-3, 1.0, 1e3])) + draw(st.sampled_from([0.0, 50.0]))
    distinct = np.unique(X, axis=0)
    k = draw(st.integers(1, min(6, distinct.shape[0])))
    init = distinct[rng.choice(distinct.shape[0], size=k, replace=False)].astype(np.float64)
    if k >= 2 and draw(st.booleans()):
        # A center far from every row: its cluster is empty in the first iteration, so
        # the properties also cover the empty-cluster relocation.
        init[-1] = np.abs(X).max(axis=0) * 3 + 100
    if weighted is None:
        weighted = draw(st.booleans())
    weights = rng.integers(1, 5, size=n).astype(np.float64) if weighted else None
    return Problem(X, init, weights, draw(st.sampled_from(distances)), draw(st.integers(1, 6)))


def assert_inertia_never_increases(p: Problem, model: KMeans) -> None:
    # Rounding: a weighted mean of one row, (w x) / w, may differ from x by an ulp, so a
    # zero inertia may grow by about (ulp of the data)² per row.
    total = float(p.X.shape[0] if p.weights is None else p.weights.sum())
    slack = total * p.X.shape[1] * (1e-12 * float(np.abs(p.X).max())) ** 2
    path = [h.inertia for h in model.history_] + [model.inertia_]
    for before, after in itertools.pairwise(path):
        assert after <= before * (1 + 1e-12) + slack


@given(problems())
def test_inertia_never_increases_across_iterations(p: Problem) -> None:
    assert_inertia_never_increases(p, p.fit())


@given(problems(integers=True))
def test_inertia_never_increases_with_duplicates_and_ties(p: Problem) -> None:
    assert_inertia_never_increases(p, p.fit())


@given(problems(), st.randoms(use_true_random=False))
def test_permuting_rows_does_not_change_the_result(p: Problem, rnd: Any) -> None:
    perm = np.arange(p.X.shape[0])
    rnd.shuffle(perm)
    a = p.fit()
    b = p.fit(p.X[perm], None if p.weights is None else p.weights[perm])
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(b.labels_, a.labels_[perm])
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-9, abs=1e-300)


@given(problems(weighted=False), st.data())
def test_duplicating_rows_equals_doubling_their_weights(p: Problem, data: st.DataObject) -> None:
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=p.X.shape[0], max_size=p.X.shape[0])))
    doubled = p.fit(weights=np.where(mask, 2.0, 1.0))
    duplicated = p.fit(np.concatenate([p.X, p.X[mask]]), weights=None)
    np.testing.assert_allclose(duplicated.cluster_centers_, doubled.cluster_centers_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(duplicated.labels_[: p.X.shape[0]], doubled.labels_)
    assert duplicated.inertia_ == pytest.approx(doubled.inertia_, rel=1e-9, abs=1e-300)
    np.testing.assert_allclose(duplicated.cluster_sizes_, doubled.cluster_sizes_)


@given(problems(integers=True))
def test_compress_changes_nothing_but_speed(p: Problem) -> None:
    plain = p.fit(compress=False)
    packed = p.fit(compress=True)
    np.testing.assert_allclose(packed.cluster_centers_, plain.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(packed.labels_, plain.labels_)
    assert packed.inertia_ == pytest.approx(plain.inertia_, rel=1e-12, abs=1e-300)
    assert [h.inertia for h in packed.history_] == pytest.approx([h.inertia for h in plain.history_], rel=1e-12)


@given(problems(integers=True, distances=("l1",)))
def test_compress_keeps_integer_l1_centers_exact(p: Problem) -> None:
    plain, packed = p.fit(compress=False), p.fit(compress=True)
    np.testing.assert_array_equal(packed.cluster_centers_, plain.cluster_centers_)


@given(problems())
def test_fit_matches_the_brute_force_oracle(p: Problem) -> None:
    model = p.fit()
    centers, labels, inertia = oracle.lloyd(p.X, p.init, p.max_iter, p.weights, p.distance)
    np.testing.assert_allclose(model.cluster_centers_, centers, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(inertia, rel=1e-9, abs=1e-300)


finite = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.7e308, -1.7e308, 5e-324, -5e-324, 0.0, -0.0, 1e-300, 1e300]),
    st.integers(-5, 5).map(float),
)


# Costs of values near the largest double overflow to inf (so does the inertia); the
# median itself must still be exact.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@given(st.lists(st.tuples(finite, st.integers(0, 6)), min_size=1, max_size=60))
def test_l1_median_equals_the_brute_force_weighted_median(rows: list[tuple[float, int]]) -> None:
    values = np.array([v for v, _ in rows])
    weights = np.array([float(w) for _, w in rows])
    assume(weights.sum() > 0)
    X = values[:, None]
    model = KMeans(1, init=X[weights > 0][:1], distance="l1", max_iter=1, tol=0.0).fit(X, sample_weight=weights)
    assert model.cluster_centers_[0, 0] == oracle.lower_weighted_median(values, weights)


# -- scikit-learn as the reference ------------------------------------------------------------


def _sklearn(p: Problem, weights: np.ndarray | None) -> Any:
    from sklearn.cluster import KMeans as SKKMeans
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: sklearn's default pool only fights the other tests for the cores.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # e.g. "Number of distinct clusters found smaller than n_clusters"
        return SKKMeans(p.k, init=p.init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=p.max_iter).fit(
            p.X, sample_weight=weights
        )


def _agree_with_sklearn(p: Problem) -> None:
    ours = p.fit()
    ref = _sklearn(p, p.weights)
    scale = max(1.0, float(np.abs(p.X).max()))
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-9, abs=1e-18 * scale**2)


@given(problems(weighted=False, distances=("l2",)))
def test_matches_sklearn_lloyd(p: Problem) -> None:
    _agree_with_sklearn(p)


@given(problems(weighted=True, distances=("l2",)))
def test_matches_sklearn_lloyd_with_sample_weight(p: Problem) -> None:
    _agree_with_sklearn(p)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_sklearn_on_blobs_for_many_iterations(dtype: type) -> None:
    rng = np.random.default_rng(0)
    X = (rng.uniform(-5, 5, (8, 3))[rng.integers(0, 8, 3000)] + rng.normal(size=(3000, 3))).astype(dtype)
    w = rng.uniform(0.5, 2.0, 3000)
    p = Problem(X, X[:8].astype(np.float64), w, "l2", 40)
    ours, ref = p.fit(), _sklearn(p, w)
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=rtol, atol=rtol)
    assert (ours.labels_ != ref.labels_).mean() <= (0 if dtype == np.float64 else 1e-3)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=rtol)


@given(
    st.integers(1, 200),
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
    st.sampled_from([np.float32, np.float64, np.uint8]),
)
def test_bounded_lloyd_passes_equal_full_passes(n: int, d: int, k: int, seed: int, dtype: type) -> None:
    """Hamerly's bounds change nothing: every pass of a run equals assigning every row, at any magnitude."""
    from kmeans._kernels import assign_sqeuclidean, bounded_lloyd_sqeuclidean, weighted_sums
    from kmeans.distance.l2 import WeightedMean

    rng = np.random.default_rng(seed)
    # moderate scales mostly; sometimes near float64's limits (squares under- or overflow)
    scale = 10.0 ** (rng.integers(-3, 4) if rng.random() < 0.7 else rng.integers(-170, 160))
    raw = rng.integers(0, 4, size=(n, d)) if dtype == np.uint8 else rng.normal(size=(n, d)) * scale
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        points = raw.astype(dtype)
        assume(np.isfinite(points).all())
        weights = rng.integers(0, 3, size=n).astype(np.float64)
        centers = points[rng.integers(0, n, size=k)].astype(np.float64)
        bounds = None
        for it in range(8):
            if it == 5:  # a jump, as a relocation or a restart would make
                centers = centers[::-1] + rng.normal(size=(k, d)) * (scale if dtype != np.uint8 else 1.0)
            sums, wsum, _, bounds = bounded_lloyd_sqeuclidean(points, weights, centers, bounds)
            labels, _ = assign_sqeuclidean(points, centers)
            want_sums, want_wsum = weighted_sums(points, weights, labels, k)
            np.testing.assert_array_equal(sums, want_sums)
            np.testing.assert_array_equal(wsum, want_wsum)
            centers = WeightedMean().finalize((sums, wsum), centers, None)
