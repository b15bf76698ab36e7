"""Issue 14: L2 and L1 right at any finite scale, and huge weights; checked against exact arithmetic.

The reference runs Lloyd's iterations in exact rational arithmetic (``fractions.Fraction``)
on the float inputs as given, so it neither overflows nor underflows.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans

RNG = np.random.default_rng(14)
#: Three well separated blobs (no near-ties), 30 rows x 2 features.
BLOBS = np.concatenate([RNG.normal(loc, 0.5, size=(10, 2)) for loc in ([0, 0], [8, 1], [3, 9])])
START = BLOBS[[0, 10, 20]] + 0.25


def _float(v: Fraction) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf


def exact_lloyd(
    X: np.ndarray, start: np.ndarray, n_iter: int, weights: Any = None, distance: str = "l2"
) -> tuple[np.ndarray, list[int], float]:
    """``(centers, labels, inertia)`` after ``n_iter`` updates, computed exactly (ties: lowest index)."""
    pts = [[Fraction(v) for v in row] for row in X.tolist()]
    w = [Fraction(1)] * len(pts) if weights is None else [Fraction(v) for v in np.asarray(weights).tolist()]
    centers = [[Fraction(v) for v in row] for row in start.tolist()]

    def cost(x: list[Fraction], c: list[Fraction]) -> Fraction:
        return sum(((a - b) ** 2 if distance == "l2" else abs(a - b) for a, b in zip(x, c, strict=True)), Fraction(0))

    def assign() -> tuple[list[int], list[Fraction]]:
        labels, costs = [], []
        for x in pts:
            cs = [cost(x, c) for c in centers]
            labels.append(cs.index(min(cs)))
            costs.append(min(cs))
        return labels, costs

    def median(values: list[Fraction], ws: list[Fraction]) -> Fraction:
        total, acc = sum(ws), Fraction(0)
        for v, wv in sorted(zip(values, ws, strict=True)):
            acc += wv
            if acc >= total / 2:
                return v
        raise AssertionError

    for _ in range(n_iter):
        labels, _ = assign()
        for j in range(len(centers)):
            members = [i for i, lab in enumerate(labels) if lab == j]
            assert members, "the test data keeps every cluster non-empty"
            if distance == "l2":
                total = sum(w[i] for i in members)
                centers[j] = [sum(w[i] * pts[i][f] for i in members) / total for f in range(X.shape[1])]
            else:
                centers[j] = [median([pts[i][f] for i in members], [w[i] for i in members]) for f in range(X.shape[1])]
    labels, costs = assign()
    inertia = sum((wi * ci for wi, ci in zip(w, costs, strict=True)), Fraction(0))
    return np.array([[float(v) for v in row] for row in centers]), labels, _float(inertia)


SCALES = {
    "1e200": 1e200,
    "1e300": 1e300,
    "1e-300": 1e-300,
    "subnormal": 2.0**-1066,  # 8 significant bits left
    "2e-160": 2e-160,  # squares underflow into subnormals
}


@pytest.mark.parametrize("distance", ["l2", "l1"])
@pytest.mark.parametrize("scale", SCALES.values(), ids=SCALES.keys())
def test_fit_predict_transform_score_are_right_at_extreme_scales(scale: float, distance: str) -> None:
    X, start = BLOBS * scale, START * scale
    model = KMeans(3, init=start, max_iter=3, tol=0, distance=distance).fit(X)
    centers, labels, inertia = exact_lloyd(X, start, 3, distance=distance)
    tiny = 2.0**-1074 * 4  # subnormal centers: the scaled mean is rounded twice
    np.testing.assert_allclose(model.cluster_centers_, centers, rtol=1e-13, atol=tiny)
    assert model.labels_.tolist() == labels
    assert model.predict(X).tolist() == labels
    assert model.inertia_ == pytest.approx(inertia, rel=1e-12, abs=tiny)
    assert -model.score(X) == pytest.approx(inertia, rel=1e-12, abs=tiny)
    dist = model.transform(X)
    assert np.argmin(dist, axis=1).tolist() == labels
    assert np.isfinite(dist).all() and (dist[np.arange(30), labels] > 0).all()


def test_predict_against_centers_of_mixed_magnitude() -> None:
    model = KMeans(2, init=np.array([[0.5], [1e199]]), max_iter=0).fit(np.array([[0.0], [2e150]]))
    # both squared distances overflow float64 (they used to tie at inf and give 0)
    assert model.predict([[1e200]]).tolist() == [1]
    assert model.transform([[1e200]]).tolist() == [[1e200 - 0.5, 1e200 - 1e199]]
    assert model.score([[1e200]]) == -math.inf  # honestly: the true cost, about 8e399, exceeds float64
    assert model.predict([[0.0], [6e198], [4e198]]).tolist() == [0, 1, 0]


def test_a_float64_tie_at_extreme_scale_goes_to_the_lowest_index() -> None:
    # 1e200 - 1e150 rounds to 1e200 (an ulp of 1e200 is about 2e184): both differences are
    # the same float64, so it is a tie for every float64 reference, and center 0 wins
    model = KMeans(2, init=np.array([[0.5], [1e150]]), max_iter=0).fit(np.array([[0.0], [2e150]]))
    assert 1e200 - 1e150 == 1e200 - 0.5
    assert model.predict([[1e200]]).tolist() == [0]
    assert model.predict([[1e151]]).tolist() == [1]


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_weights_of_1e306_each(distance: str) -> None:
    rng = np.random.default_rng(306)
    X = np.concatenate([rng.normal(loc, 0.5, size=(100, 2)) for loc in ([0, 0], [8, 1], [3, 9])])
    # the total weight, about 2.3e308, exceeds float64; unequal weights, so that no weighted
    # median sits exactly at half the weight (a tie that float64 sums may round either way)
    w = rng.uniform(0.5, 1.0, size=300) * 1e306
    model = KMeans(3, init=X[[0, 100, 200]], max_iter=3, tol=0, distance=distance).fit(X, sample_weight=w)
    centers, labels, inertia = exact_lloyd(X, X[[0, 100, 200]], 3, w, distance)
    np.testing.assert_allclose(model.cluster_centers_, centers, rtol=1e-13)
    assert model.labels_.tolist() == labels
    assert model.inertia_ == pytest.approx(inertia, rel=1e-12)  # inf only if the exact value exceeds float64
    sizes = [math.fsum(w[np.asarray(labels) == j].tolist()) for j in range(3)]
    assert model.cluster_sizes_.tolist() == pytest.approx(sizes, rel=1e-14)


def test_callbacks_and_history_are_in_the_units_of_the_input() -> None:
    seen: list[float] = []
    X = BLOBS * 1e-300
    model = KMeans(3, init=START * 1e-300, max_iter=3, tol=0, callbacks=[lambda r: seen.append(r.center_shift)]).fit(X)
    assert seen == [r.center_shift for r in model.history_]
    plain = KMeans(3, init=START, max_iter=3, tol=0).fit(BLOBS)
    np.testing.assert_allclose(np.array(seen) * 1e300, [r.center_shift for r in plain.history_], rtol=1e-12)


def test_tol_is_in_the_units_of_the_input_at_extreme_scales() -> None:
    a = KMeans(3, init=START, tol=1e-3).fit(BLOBS)
    b = KMeans(3, init=START * 2.0**800, tol=1e-3 * 2.0**800).fit(BLOBS * 2.0**800)
    assert (a.n_iter_, a.converged_) == (b.n_iter_, b.converged_)
    assert (b.cluster_centers_ == a.cluster_centers_ * 2.0**800).all()  # powers of two: bit for bit


def test_the_input_is_not_overwritten() -> None:
    X, w = BLOBS * 1e300, np.full(30, 1e306)
    before = (X.copy(), w.copy())
    KMeans(3, init=START * 1e300, max_iter=2).fit(X, sample_weight=w)
    assert (before[0] == X).all() and (w == before[1]).all()


def test_rescaling_shifts_least_so_small_values_keep_their_bits() -> None:
    X = np.array([[4e153], [2e153], [1e-226], [3e-226]])  # 4e153: its squares would overflow
    start = np.array([[3e153], [0.0]])
    model = KMeans(2, init=start, max_iter=1).fit(X)
    centers, labels, _ = exact_lloyd(X, start, 1)
    np.testing.assert_allclose(model.cluster_centers_, centers, rtol=1e-15, atol=0)
    assert model.cluster_centers_[1, 0] == 2e-226  # not flushed to 0 by a needlessly large shift
    assert model.labels_.tolist() == labels == [0, 0, 1, 1]


@pytest.mark.parametrize("exp", [700, -700], ids=["2^700", "2^-700"])
def test_cosine_is_scale_free_at_extreme_scales(exp: int) -> None:
    # norms of such rows overflow or underflow float64: the rows are rescaled by a power of
    # two, which leaves every direction, cosine and unit center bit for bit as they were
    X, start = BLOBS + 20.0, START + 20.0
    plain = KMeans(3, init=start, max_iter=3, tol=1e-9, distance="cosine").fit(X)
    model = KMeans(3, init=start, max_iter=3, tol=1e-9, distance="cosine").fit(np.ldexp(X, exp))
    assert (model.cluster_centers_ == plain.cluster_centers_).all()
    assert model.labels_.tolist() == plain.labels_.tolist()
    assert (model.inertia_, model.n_iter_) == (plain.inertia_, plain.n_iter_)  # tol is scale-free too
    Y = np.ldexp(X, exp)
    assert model.predict(Y).tolist() == plain.labels_.tolist()
    assert (model.transform(Y) == plain.transform(X)).all()
    assert model.score(Y) == plain.score(X)


def test_a_backend_that_reads_other_input_gets_it_as_given_and_its_dataset_rescaled() -> None:
    from kmeans.dataset import BlockDataset, DatasetFacts
    from kmeans.validation import check_points

    class ChunkedBackend:  # reads a list of (n_i, d) chunks: declares no array_input
        name = "chunked"

        def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> Any:
            seen.append(X)
            chunks = [check_points(c) for c in X]
            blocks, start = [], 0
            for c in chunks:
                blocks.append(Block(c.astype(np.float64), np.ones(len(c)), start))
                start += len(c)
            return BlockDataset(blocks, DatasetFacts(start, 2, float(start), np.dtype(np.float64), False))

        def fit(self, dataset: Any, spec: Any) -> Any:
            return driver.fit(dataset, spec)

        def predict(self, X: Any, centers: Any, assign: Any, *, features: Any = None) -> Any:
            return driver.labels(self.dataset(X), centers, assign)

    from kmeans import BisectingKMeans, driver
    from kmeans._types import Block

    seen: list[Any] = []
    X = BLOBS * 1e200
    chunks = [X[:7], X[7:]]
    model = KMeans(3, init=START * 1e200, max_iter=3, tol=0, backend=ChunkedBackend()).fit(chunks)
    assert seen[0] is chunks  # handed over as given, not as a rescaled array
    want = KMeans(3, init=START * 1e200, max_iter=3, tol=0).fit(X)  # the dataset rescaled itself
    np.testing.assert_allclose(model.cluster_centers_, want.cluster_centers_, rtol=1e-13)
    assert model.labels_.tolist() == want.labels_.tolist()
    # Regression: BisectingKMeans checked cosine's zero rows before rescaling such a dataset,
    # and rows of norm 2^-700 (squares underflow) were refused as all-zero
    Y = BLOBS + 20.0
    tiny = np.ldexp(Y, -700)
    plain = BisectingKMeans(3, seed=0, distance="cosine").fit(Y)
    bisected = BisectingKMeans(3, seed=0, distance="cosine", backend=ChunkedBackend()).fit([tiny[:7], tiny[7:]])
    assert (bisected.cluster_centers_ == plain.cluster_centers_).all()
    assert bisected.labels_.tolist() == plain.labels_.tolist()


@pytest.mark.parametrize("exp", [600, -600], ids=["2^600", "2^-600"])
def test_bisecting_is_exact_at_extreme_scales(exp: int) -> None:
    from kmeans import BisectingKMeans

    X = np.concatenate([RNG.normal(loc, 0.5, size=(20, 2)) for loc in ([0, 0], [8, 1], [3, 9], [9, 9])])
    plain = BisectingKMeans(4, seed=0).fit(X)
    model = BisectingKMeans(4, seed=0).fit(np.ldexp(X, exp))  # squares overflow or underflow unless rescaled
    assert model.labels_.tolist() == plain.labels_.tolist()
    assert (model.cluster_centers_ == np.ldexp(plain.cluster_centers_, exp)).all()  # powers of two: bit for bit
    assert (model.tree_.centers == np.ldexp(plain.tree_.centers, exp)).all()
    assert model.predict(np.ldexp(X, exp)).tolist() == plain.labels_.tolist()
    with np.errstate(over="ignore", under="ignore"):
        want = float(np.ldexp(plain.inertia_, 2 * exp))  # inf above float64, honestly (2^1200 x inertia)
    assert model.inertia_ == pytest.approx(want, rel=1e-12, abs=2.0**-1074)


def test_bisecting_with_weights_of_1e306_each() -> None:
    from kmeans import BisectingKMeans

    X = np.concatenate([RNG.normal(loc, 0.5, size=(20, 2)) for loc in ([0, 0], [8, 1], [3, 9])])
    plain = BisectingKMeans(3, seed=0, min_divisible_cluster_size=2).fit(X)
    model = BisectingKMeans(3, seed=0, min_divisible_cluster_size=2e306).fit(X, sample_weight=np.full(60, 1e306))
    assert model.labels_.tolist() == plain.labels_.tolist()
    np.testing.assert_allclose(model.cluster_centers_, plain.cluster_centers_, rtol=1e-13)
    np.testing.assert_allclose(model.tree_.weight, plain.tree_.weight * 1e306, rtol=1e-13)


def test_a_loaded_bisecting_model_predicts_exactly_at_extreme_scales(tmp_path: Any) -> None:
    from kmeans import BisectingKMeans, load_model

    X = np.ldexp(np.concatenate([RNG.normal(loc, 0.5, size=(20, 2)) for loc in ([0, 0], [8, 1], [3, 9])]), 600)
    model = BisectingKMeans(3, seed=0).fit(X)
    model.save(tmp_path / "m.json")
    assert load_model(tmp_path / "m.json").predict(X).tolist() == model.labels_.tolist()


def test_float16_data_is_judged_in_the_float64_it_is_fitted_in() -> None:
    # Regression (hypothesis, tests/test_datasets.py): float16 values of magnitude 60 were
    # "out of float16's safe range" and rescaled in memory, unlike the same rows from a file.
    X = (np.random.default_rng(3650).normal(size=(181, 5)) * 20).astype(np.float16)
    a = KMeans(3, init="random", n_init=1, seed=3).fit(X)
    b = KMeans(3, init="random", n_init=1, seed=3).fit(X.astype(np.float64))
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
