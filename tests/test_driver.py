"""The generic Lloyd driver: iteration count, convergence, restarts, callbacks, empty clusters, the whole fit."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import pytest

from kmeans._random import derive_seed
from kmeans._types import FitSpec, IterationRecord
from kmeans.backends.numpy import NumPyBackend, NumPyDataset
from kmeans.dataset import BlockDataset
from kmeans.distance.base import Distance
from kmeans.distance.l1 import L1
from kmeans.distance.l2 import L2
from kmeans.driver import evaluate, farthest_points, fit_restarts, lloyd
from kmeans.driver import fit as driver_fit
from kmeans.init.explicit import ExplicitCenters
from kmeans.protocols import optional
from tests import oracle

DISTANCES = [L2, L1]


def _run(X: np.ndarray, centers: Any, *, distance: Distance = L2, w: np.ndarray | None = None, **kw: Any) -> Any:
    kw.setdefault("max_iter", 10)
    kw.setdefault("tol", 0.0)
    return lloyd(
        NumPyDataset(np.asarray(X, dtype=np.float64), w),
        np.asarray(centers, dtype=np.float64),
        distance.assign,
        distance.update,
        **kw,
    )


def _blobs(seed: int, n: int = 300, d: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-10, 10, size=(4, d))[rng.integers(0, 4, n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize("max_iter", [1, 3, 17])
def test_tol_zero_runs_max_iter_updates_unless_a_fixed_point_stops_it(max_iter: int) -> None:
    X = np.array([[0.0], [2.0], [5.0], [6.0]])
    # From 0 and 2 the centers keep moving for a few updates, then stop: a fixed point.
    free = _run(X, [[0.0], [2.0]], max_iter=100, tol=0.0)
    assert free.converged and free.n_iter == len(free.history) > 1
    assert free.history[-1].center_shift == 0.0 and all(h.center_shift > 0 for h in free.history[:-1])
    capped = _run(X, [[0.0], [2.0]], max_iter=max_iter, tol=0.0)
    assert capped.n_iter == min(max_iter, free.n_iter) == len(capped.history)
    assert capped.converged == (max_iter >= free.n_iter)
    if max_iter >= free.n_iter:  # the fixed point is the model every further update would give
        np.testing.assert_array_equal(capped.centers, free.centers)


def test_converges_when_no_center_moves_more_than_tol() -> None:
    # One update moves the center from 0 to 1 (shift 1), the next does not move it.
    X = np.array([[0.0], [2.0]])
    at_tol = _run(X, [[0.0]], tol=1.0)
    assert (at_tol.n_iter, at_tol.converged) == (1, True)
    below = _run(X, [[0.0]], tol=0.999)
    assert (below.n_iter, below.converged) == (2, True)
    assert [h.center_shift for h in below.history] == [1.0, 0.0]


def test_shift_is_measured_in_the_metric_of_the_distance() -> None:
    # The L1 median moves (2, 2) -> (0, 0): Manhattan shift 4, Euclidean would be 2.83.
    X = np.array([[0.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    assert _run(X, [[2.0, 2.0]], distance=L1, tol=3.9).n_iter == 2
    assert _run(X, [[2.0, 2.0]], distance=L1, tol=4.0).n_iter == 1
    assert _run(X, [[2.0, 2.0]], distance=L1, tol=0.0, max_iter=1).history[0].center_shift == 4.0


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.name)
@pytest.mark.parametrize("n_iter", [1, 2, 6])
def test_lloyd_matches_the_brute_force_oracle(distance: Distance, n_iter: int) -> None:
    X = _blobs(n_iter)
    w = np.random.default_rng(0).integers(1, 5, X.shape[0]).astype(np.float64)
    init = X[[0, 1, 2, 3, 4]]
    got = _run(X, init, distance=distance, w=w, max_iter=n_iter)
    centers, labels, inertia = oracle.lloyd(X, init, n_iter, w, distance.name)
    np.testing.assert_allclose(got.centers, centers, rtol=1e-12, atol=1e-12)
    assert got.inertia == pytest.approx(inertia, rel=1e-12)
    np.testing.assert_allclose(got.cluster_weights, np.bincount(labels, weights=w, minlength=5))


def test_inertia_matches_the_final_centers() -> None:
    X = _blobs(1)
    result = _run(X, X[:3], max_iter=2)
    assert result.inertia == pytest.approx(oracle.inertia(X, result.centers), rel=1e-12)
    assert result.cluster_weights.sum() == X.shape[0]


def test_history_inertia_is_the_cost_of_the_starting_centers() -> None:
    X = _blobs(2)
    centers = X[:4]
    result = _run(X, centers, max_iter=3)
    expected = [oracle.inertia(X, centers)]
    for _ in range(2):
        centers = oracle.lloyd(X, centers, 1)[0]
        expected.append(oracle.inertia(X, centers))
    np.testing.assert_allclose([h.inertia for h in result.history], expected, rtol=1e-12)


def test_callbacks_receive_one_record_per_iteration() -> None:
    seen: list[IterationRecord] = []
    result = _run(_blobs(3), _blobs(3)[:3], max_iter=4, callbacks=[seen.append], restart=2)
    assert seen == list(result.history)
    assert [r.iteration for r in seen] == [1, 2, 3, 4]
    assert all(isinstance(r, IterationRecord) and r.restart == 2 for r in seen)
    elapsed = [r.elapsed for r in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0


def test_every_callback_is_called() -> None:
    a: list[int] = []
    b: list[float] = []
    _run(
        _blobs(4), _blobs(4)[:2], max_iter=3, callbacks=[lambda r: a.append(r.iteration), lambda r: b.append(r.inertia)]
    )
    assert a == [1, 2, 3] and len(b) == 3


# -- empty clusters ---------------------------------------------------------------------

X_LINE = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.name)
def test_empty_cluster_takes_the_farthest_point(distance: Distance) -> None:
    # Center 1000 gets no row. Points 0, 2, 10, 12 are all farthest (cost 1 under both
    # metrics); the smallest value wins, so the empty cluster moves to x = 0.
    result = _run(X_LINE, [[1.0], [11.0], [1000.0]], distance=distance, max_iter=1)
    assert result.history[0].n_empty == 1
    expected_c0 = 1.5 if distance is L2 else 1.0  # mean / lower median of {1, 2}
    assert result.centers.tolist() == [[expected_c0], [11.0], [0.0]]


def test_several_empty_clusters_take_the_farthest_points_in_order() -> None:
    result = _run(X_LINE, [[1.0], [11.0], [1000.0], [-1000.0]], max_iter=1)
    assert result.history[0].n_empty == 2
    # Empty clusters 2 and 3 (ascending) take points 0 and 2 (farthest, then smallest value).
    assert result.centers.tolist() == [[1.0], [11.0], [0.0], [2.0]]


def test_equal_costs_are_ordered_by_value_not_by_row_position() -> None:
    reversed_rows = X_LINE[::-1].copy()
    result = _run(reversed_rows, [[1.0], [11.0], [1000.0]], max_iter=1)
    assert result.centers.tolist() == [[1.5], [11.0], [0.0]]


def test_relocated_point_carries_its_weight() -> None:
    w = np.array([5.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    result = _run(X_LINE, [[1.0], [11.0], [1000.0]], w=w, max_iter=1)
    # Point 0 (weight 5) left cluster 0: its mean is over points 1 and 2 only.
    assert result.centers.tolist() == [[1.5], [11.0], [0.0]]


def test_every_copy_of_a_duplicated_point_moves_together() -> None:
    # Regression: relocation used to move one row, so two copies of a point behaved
    # differently from one row of weight 2. Now both copies move to the empty cluster.
    X = np.array([[0.0], [0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    result = _run(X, [[1.0], [11.0], [1000.0]], max_iter=1)
    doubled = _run(X_LINE, [[1.0], [11.0], [1000.0]], w=np.array([2.0, 1, 1, 1, 1, 1]), max_iter=1)
    assert result.centers.tolist() == doubled.centers.tolist() == [[1.5], [11.0], [0.0]]
    assert result.cluster_weights.tolist() == doubled.cluster_weights.tolist()


def test_farthest_points_skip_zero_weight_rows() -> None:
    w = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    ds = NumPyDataset(X_LINE, w)
    assert farthest_points(ds, np.array([[1.0], [11.0]]), L2.assign, 2).tolist() == [[2.0], [10.0]]


@pytest.mark.parametrize("block_rows", [1, 2, 4])
def test_farthest_points_do_not_depend_on_block_layout(block_rows: int) -> None:
    ds = NumPyDataset(X_LINE, block_rows=block_rows)
    got = farthest_points(ds, np.array([[1.0], [11.0]]), L2.assign, 4)
    assert got.tolist() == [[0.0], [2.0], [10.0], [12.0]]


def test_farthest_points_are_distinct() -> None:
    X = np.array([[5.0], [5.0], [5.0], [1.0], [0.0]])
    got = farthest_points(NumPyDataset(X, block_rows=2), np.array([[0.0]]), L2.assign, 3)
    assert got.tolist() == [[5.0], [1.0], [0.0]]


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.name)
def test_centers_are_never_nan_even_when_every_row_sits_on_a_center(distance: Distance) -> None:
    # Moving the only row of cluster 0 to the empty cluster 2 empties cluster 0 in turn.
    X = np.array([[0.0, 0.0], [10.0, 10.0]])
    result = _run(X, [[0.0, 0.0], [10.0, 10.0], [1e9, 1e9]], distance=distance, max_iter=5)
    assert np.isfinite(result.centers).all()
    assert result.centers.tolist() == [[0.0, 0.0], [10.0, 10.0], [0.0, 0.0]]
    assert result.inertia == 0.0


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.name)
def test_duplicate_initial_centers_are_separated(distance: Distance) -> None:
    X = _blobs(5)
    result = _run(X, [X[0], X[0], X[0]], distance=distance, max_iter=5)
    assert np.unique(result.centers, axis=0).shape[0] == 3
    assert (result.cluster_weights > 0).all()


def test_empty_cluster_policy_matches_the_oracle_over_iterations() -> None:
    X = _blobs(6)
    init = np.array([X[0], X[0] + 1e-3, [500.0, 500.0], [-500.0, 0.0]])
    got = _run(X, init, max_iter=4)
    centers, _, inertia = oracle.lloyd(X, init, 4)
    np.testing.assert_allclose(got.centers, centers, rtol=1e-12)
    assert got.inertia == pytest.approx(inertia, rel=1e-12)


# -- restarts ----------------------------------------------------------------------------


class Scripted:
    """An initializer that hands out prepared centers, one set per call, recording seeds."""

    name = "scripted"

    def __init__(self, *centers: list[list[float]]) -> None:
        self.centers = [np.asarray(c, dtype=np.float64) for c in centers]
        self.seeds: list[int] = []

    def init(self, dataset: Any, k: int, assign: Any, seed: int) -> np.ndarray:
        self.seeds.append(seed)
        return self.centers[len(self.seeds) - 1]


def _spec(initializer: Any, n_init: int, **kw: Any) -> FitSpec:
    return FitSpec(
        n_clusters=2,
        initializer=initializer,
        distance=L2,
        max_iter=kw.pop("max_iter", 1),
        tol=0.0,
        n_init=n_init,
        seed=kw.pop("seed", 11),
        **kw,
    )


def test_n_init_keeps_the_restart_with_the_lowest_inertia() -> None:
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    init = Scripted([[0.0], [1.0]], [[0.0], [10.0]], [[10.0], [11.0]])
    result = fit_restarts(NumPyDataset(X), _spec(init, 3))
    assert result.centers.tolist() == [[0.5], [10.5]]
    assert result.inertia == 1.0
    assert result.restarts[1] == 1.0 and min(result.restarts) == 1.0 and len(result.restarts) == 3
    assert result.seed == derive_seed(11, 1)
    assert [h.restart for h in result.history] == [1]


def test_restarts_use_derived_seeds() -> None:
    init = Scripted([[0.0], [1.0]], [[0.0], [1.0]])
    fit_restarts(NumPyDataset(np.array([[0.0], [1.0]])), _spec(init, 2, seed=5))
    assert init.seeds == [derive_seed(5, 0), derive_seed(5, 1)]
    assert len(set(init.seeds)) == 2


def test_equal_inertia_keeps_the_earliest_restart() -> None:
    init = Scripted([[0.0], [10.0]], [[10.0], [0.0]])
    result = fit_restarts(NumPyDataset(np.array([[0.0], [10.0]])), _spec(init, 2))
    assert result.seed == derive_seed(11, 0)
    assert result.centers.tolist() == [[0.0], [10.0]]


def test_callbacks_hear_every_restart() -> None:
    seen: list[IterationRecord] = []
    init = Scripted([[0.0], [1.0]], [[0.0], [10.0]])
    fit_restarts(NumPyDataset(np.array([[0.0], [1.0], [10.0]])), _spec(init, 2, max_iter=2, callbacks=(seen.append,)))
    assert [(r.restart, r.iteration) for r in seen] == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_explicit_centers_through_fit_restarts() -> None:
    X = _blobs(7)
    result = fit_restarts(NumPyDataset(X), _spec(ExplicitCenters(X[:2]), 1, max_iter=3))
    np.testing.assert_allclose(result.centers, oracle.lloyd(X, X[:2], 3)[0], rtol=1e-12)


def test_relocation_example_from_scikit_learn_suite() -> None:
    # sklearn's test_kmeans_relocated_clusters: every row is equidistant from the first
    # center and none is near the second. sklearn relocates to row 3, we to row 0 (lowest
    # index); both end in the same partition and inertia, labels permuted.
    X = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]])
    result = _run(X, [[0.5, 0.5], [3.0, 3.0]], max_iter=3)
    assert result.history[0].n_empty == 1
    assert result.inertia == 0.25
    assert result.centers.tolist() == [[0.75, 1.0], [0.25, 0.0]]


class _Unfused:
    """The weighted mean without its fused pass: forces the driver's generic path."""

    name = "mean-unfused"

    def __init__(self) -> None:
        self._inner = L2.update

    def plan(self, dataset: Any, k: int) -> Any:
        return self._inner.plan(dataset, k)

    def partial(self, block: Any, labels: Any, k: int, state: Any) -> Any:
        return self._inner.partial(block, labels, k, state)

    def merge(self, a: Any, b: Any) -> Any:
        return self._inner.merge(a, b)

    def finalize(self, summary: Any, old: Any, state: Any) -> Any:
        return self._inner.finalize(summary, old, state)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("k", [3, 30])
def test_fused_pass_gives_the_generic_paths_fit(d: int, k: int) -> None:
    # The last two centers start far away and come back empty: relocation passes (which
    # take the generic path) mix with fused ones.
    X = _blobs(d * 10 + k, d=d)
    w = np.random.default_rng(k).uniform(0.5, 2.0, X.shape[0])
    centers = X[:k] + 0.001
    centers[-2:] = 1000.0 + np.arange(2.0)[:, None]
    fused = _run(X, centers, w=w, max_iter=8)
    generic = lloyd(
        NumPyDataset(X, w),
        centers,
        L2.assign,
        _Unfused(),
        max_iter=8,
        tol=0.0,  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(fused.centers, generic.centers)
    np.testing.assert_array_equal(fused.cluster_weights, generic.cluster_weights)
    assert fused.inertia == pytest.approx(generic.inertia, rel=1e-12)
    assert [r.n_empty for r in fused.history] == [r.n_empty for r in generic.history]
    assert fused.history[0].n_empty == 2
    for a, b in zip(fused.history, generic.history, strict=True):
        assert a.inertia == pytest.approx(b.inertia, rel=1e-12)


def test_a_fused_hook_always_gets_memory_by_keyword() -> None:
    # The optional member's one signature: fused_partial(assign, block, centers, state, memory=None),
    # memory passed by keyword on every call (a dict inside a Lloyd run, None outside one).
    memories: list[Any] = []

    class Recording:
        name = "mean-recording"

        def __init__(self) -> None:
            self._inner = L2.update

        def plan(self, dataset: Any, k: int) -> Any:
            return None

        def partial(self, block: Any, labels: Any, k: int, state: Any) -> Any:
            return self._inner.partial(block, labels, k, state)

        def fused_partial(self, assign: Any, block: Any, centers: Any, state: Any, *, memory: Any) -> Any:
            memories.append(memory)
            return self._inner.fused_partial(assign, block, centers, state, memory)

        def merge(self, a: Any, b: Any) -> Any:
            return self._inner.merge(a, b)

        def finalize(self, summary: Any, old: Any, state: Any) -> Any:
            return self._inner.finalize(summary, old, state)

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3))
    ds = NumPyDataset(X)
    got = lloyd(ds, X[:4], L2.assign, Recording(), max_iter=5, tol=0.0)  # type: ignore[arg-type]
    want = lloyd(ds, X[:4], L2.assign, L2.update, max_iter=5, tol=0.0)
    assert memories and all(isinstance(m, dict) for m in memories)  # one run's memory, by keyword
    np.testing.assert_array_equal(got.centers, want.centers)
    memories.clear()
    evaluate(ds, want.centers, L2.assign, Recording())  # type: ignore[arg-type]
    assert memories == [None]  # outside a run: no memory


# -- the whole fit: compress rule, restarts, labels ------------------------------------------


def _pixels(n: int = 400, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 6, size=(n, 3)).astype(np.uint8)


@pytest.mark.parametrize(("compress", "folded"), [("auto", True), (True, True), (False, False)])
def test_fit_applies_the_compress_rule_and_labels_every_input_row(compress: Any, folded: bool) -> None:
    X = _pixels()
    ds = NumPyBackend(n_threads=1).dataset(X)
    seen: list[int] = []

    def run(data: Any, centers: Any, assign: Any, update: Any, **kw: Any) -> Any:
        seen.append(data.n_rows)
        return lloyd(data, centers, assign, update, **kw)

    spec = attrs.evolve(_spec(ExplicitCenters(X[:2].astype(np.float64)), 1, max_iter=3), compress=compress)
    result = driver_fit(ds, spec, run=run)
    n_distinct = np.unique(X, axis=0).shape[0]
    assert seen == [n_distinct if folded else X.shape[0]]  # the run saw the compressed rows
    np.testing.assert_array_equal(result.labels, L2.assign.assign(X.astype(np.float64), result.centers)[0])
    assert result.labels.dtype == np.int32 and result.labels.shape == (X.shape[0],)


def test_fit_uses_the_engine_run_for_every_restart() -> None:
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    calls: list[int] = []

    def run(data: Any, centers: Any, assign: Any, update: Any, **kw: Any) -> Any:
        calls.append(kw["restart"])
        return lloyd(data, centers, assign, update, **kw)

    init = Scripted([[0.0], [1.0]], [[0.0], [10.0]], [[10.0], [11.0]])
    result = driver_fit(NumPyDataset(X), _spec(init, 3), run=run)
    assert calls == [0, 1, 2]
    assert result.restarts[1] == min(result.restarts)
    np.testing.assert_array_equal(result.labels, [0, 0, 1, 1])


class _Releasing(BlockDataset):
    """A block dataset that records its release (``compress`` keeps the class)."""

    released: ClassVar[list[bool]] = []

    def release(self) -> None:
        self.released.append(True)


def test_fit_releases_the_dataset_it_compressed_even_on_error() -> None:
    X = _pixels(50).astype(np.float64)
    ds = _Releasing.from_arrays(X, integer_valued=True)
    _Releasing.released = []
    driver_fit(ds, _spec(ExplicitCenters(X[:2]), 1))
    assert _Releasing.released == [True]

    def failing(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("engine died")

    with pytest.raises(RuntimeError, match="engine died"):
        driver_fit(ds, _spec(ExplicitCenters(X[:2]), 1), run=failing)
    assert _Releasing.released == [True, True]


def test_block_dataset_compress_equals_the_numpy_engine() -> None:
    X = _pixels(300)
    w = np.random.default_rng(1).uniform(0, 2, X.shape[0])
    mine = _Releasing.from_arrays(X.astype(np.float64), w, integer_valued=True, block_rows=64).compress()
    theirs = NumPyBackend(n_threads=1).dataset(X, w).compress()
    assert isinstance(mine, _Releasing)  # an engine's map_reduce keeps running the compressed rows
    assert mine.distinct and mine.n_rows == theirs.n_rows and mine.total_weight == pytest.approx(w.sum())
    np.testing.assert_array_equal(np.concatenate([b.points for b in mine.blocks]), theirs.points)
    np.testing.assert_allclose(np.concatenate([b.weights for b in mine.blocks]), theirs.weights, rtol=1e-15)
    np.testing.assert_array_equal(mine.inverse, theirs.inverse)


def test_optional_members_have_declared_defaults_and_a_typo_fails() -> None:
    assert optional(object(), "n_init_auto") == 10
    assert optional(object(), "fused_partial") is None
    assert optional(L2.update, "fused_partial") is not None
    with pytest.raises(KeyError):
        optional(object(), "fused_partials")


class _Counting:
    """An initializer declaring its own ``n_init_auto``; counts its calls."""

    name = "counting"
    n_init_auto = 3

    def __init__(self) -> None:
        self.calls = 0

    def init(self, dataset: Any, k: int, assign: Any, seed: int) -> np.ndarray:
        self.calls += 1
        return np.asarray(dataset.local_blocks()[0].points[:k], dtype=np.float64)


def test_n_init_auto_and_deterministic_are_the_initializer_s_declarations() -> None:
    from kmeans import KMeans

    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    init = _Counting()
    KMeans(2, init=init, max_iter=2).fit(X)
    assert init.calls == 3  # its n_init_auto, not a name test
    fixed = _Counting()
    fixed.deterministic = True  # type: ignore[attr-defined]
    with pytest.warns(RuntimeWarning, match="ignores the seed"):
        KMeans(2, init=fixed, n_init=4, max_iter=2).fit(X)
    assert fixed.calls == 1
