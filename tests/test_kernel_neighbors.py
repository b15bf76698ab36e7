"""The centers' neighbour tables of the ball search: built, rebuilt and refreshed, always on the safe side."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmeans._kernels.lloyd as lloyd
import kmeans._kernels.neighbors as nb
from kmeans._kernels import assign_sqeuclidean, bounded_lloyd_sqeuclidean
from tests import oracle


@pytest.fixture(autouse=True)
def _no_cached_table() -> Iterator[None]:
    # Tables are shared by shape between passes; a test must not inherit another's.
    nb._cache.clear()
    yield
    nb._cache.clear()


def _gaps(centers: np.ndarray) -> np.ndarray:
    diff = centers[:, None, :] - centers[None, :, :]
    return np.sqrt((diff * diff).sum(axis=2))


def _check_table(table: nb.CenterNeighbors, centers: np.ndarray) -> None:
    # Listed gaps ascending and never above the true gap; every unlisted center at least outer away.
    k = centers.shape[0]
    gaps = _gaps(centers)
    np.testing.assert_array_equal(table.centers, centers)
    assert np.all(np.diff(table.dist, axis=1) >= 0)
    for a in range(k):
        listed = table.index[a]
        assert a not in listed and len(set(listed.tolist())) == listed.shape[0]
        assert np.all(table.dist[a] <= gaps[a, listed])
        others = np.setdiff1d(np.arange(k), np.append(listed, a))
        assert np.all(gaps[a, others] >= table.outer[a])
        assert table.half_gap[a] <= 0.5 * np.delete(gaps[a], a).min()


# The monkeypatched settings are the same for every example (set again each time).
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(3, 60),
    d=st.integers(1, 20),
    m=st.integers(1, 12),
    direct=st.booleans(),
    seed=st.integers(0, 2**16),
    moves=st.lists(st.sampled_from([0.0, 1e-12, 1e-3, 0.3, 3.0]), min_size=1, max_size=5),
)
def test_every_table_bounds_the_true_gaps(
    k: int, d: int, m: int, direct: bool, seed: int, moves: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Duplicated centers (zero gaps, ties), moves from none to large, rebuilt (direct) or refreshed tables.
    nb._cache.clear()
    monkeypatch.setattr(nb, "MAX_NEIGHBORS", m)
    monkeypatch.setattr(nb, "DIRECT_REBUILD_BUDGET", nb.DIRECT_REBUILD_BUDGET if direct else 0)
    rng = np.random.default_rng(seed)
    C = rng.integers(-3, 4, size=(k, d)).astype(np.float64)
    C[k // 2 :: 4] = C[: len(C[k // 2 :: 4])]
    _check_table(nb.neighbors_of(C), C)
    for scale in moves:
        C = C + rng.normal(scale=scale, size=C.shape) * (rng.random(size=(k, 1)) < 0.4)
        _check_table(nb.neighbors_of(C), C)


def test_a_rebuilt_table_lists_the_nearest_centers() -> None:
    rng = np.random.default_rng(0)
    C = rng.uniform(0, 255, size=(300, 3))
    table = nb.CenterNeighbors(C, 20)
    moved = C + rng.normal(scale=5.0, size=C.shape)
    again = table.rebuilt(moved)
    gaps = _gaps(moved)
    np.fill_diagonal(gaps, np.inf)
    want = np.sort(gaps, axis=1)[:, :20]
    np.testing.assert_allclose(again.dist, want, rtol=1e-8)
    np.testing.assert_array_equal(again.outer, again.dist[:, -1])
    _check_table(again, moved)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(("d", "k", "m"), [(3, 200, 16), (2, 60, 4), (20, 90, 8)])
def test_passes_with_partial_tables_equal_the_brute_force(
    d: int, k: int, m: int, direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lists shorter than k - 1: rows whose ball leaves the list take the full path; a
    # refreshed table's outer bound shrinks as the centers drift, a rebuilt one's does not.
    monkeypatch.setattr(nb, "MAX_NEIGHBORS", m)
    monkeypatch.setattr(nb, "DIRECT_REBUILD_BUDGET", nb.DIRECT_REBUILD_BUDGET if direct else 0)
    monkeypatch.setattr(lloyd, "predicted_ball_misses", lambda *args: 0.0)  # always try the ball search
    rng = np.random.default_rng(d * k)
    X = rng.integers(0, 10, size=(2000, d)).astype(np.float32)
    C = X[rng.choice(2000, k, replace=False)].astype(np.float64)
    C[k // 2 :: 7] = C[: len(C[k // 2 :: 7])]
    bounds: dict = {"rows": None, "gemm": None}
    for step in range(6):
        C = C + rng.normal(scale=0.4 / (step + 1), size=C.shape) * (rng.random(size=(k, 1)) < 0.5)
        want_labels, _ = assign_sqeuclidean(X, C)
        _, want_costs = oracle.assign(X, C)
        for kernel in ("rows", "gemm"):
            _, _, inertia, bounds[kernel] = bounded_lloyd_sqeuclidean(X, np.ones(2000), C, bounds[kernel], kernel)
            np.testing.assert_array_equal(bounds[kernel].labels, want_labels)
            assert inertia == pytest.approx(float(want_costs.sum()), rel=1e-12, abs=1e-12)


def test_pixels_distance_is_the_feature_order_sum() -> None:
    # The unrolled three-feature distance gives the bits of the general loop.
    from kmeans._kernels.gemm import _exact

    rng = np.random.default_rng(1)
    x = rng.uniform(-1e3, 1e3, size=(500, 3)) * rng.choice([1e-150, 1.0, 1e150], size=(500, 1))
    c = rng.uniform(-1e3, 1e3, size=(4, 3))
    for i in range(500):
        for j in range(4):
            want = 0.0
            for f in range(3):
                t = float(x[i, f]) - float(c[j, f])
                want += t * t
            assert _exact(x, i, c, j) == want


def test_threads_share_one_rebuild_and_get_the_serial_table() -> None:
    # The threads of a pass take shares of one direct rebuild: every thread gets the same
    # table, equal to a rebuild by one thread, whatever the split.
    import threading

    rng = np.random.default_rng(3)
    C = rng.uniform(0, 255, size=(700, 3))
    moved = C + rng.normal(scale=4.0, size=C.shape)
    serial = nb.CenterNeighbors(C).rebuilt(moved)
    for _ in range(3):
        nb._cache[:] = [nb.CenterNeighbors(C)]
        barrier = threading.Barrier(4)
        got: list[nb.CenterNeighbors] = []

        def take(barrier: threading.Barrier, got: list[nb.CenterNeighbors]) -> None:
            barrier.wait()
            got.append(nb.neighbors_of(moved))

        threads = [threading.Thread(target=take, args=(barrier, got)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 4 and all(t is got[0] for t in got)
        np.testing.assert_array_equal(got[0].index, serial.index)
        np.testing.assert_array_equal(got[0].dist, serial.dist)
        np.testing.assert_array_equal(got[0].outer, serial.outer)
        assert nb.neighbors_of(moved) is got[0] and not nb._building


def test_a_failed_share_reaches_every_waiting_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    C = rng.uniform(0, 255, size=(64, 3))
    build = nb._Rebuild(nb.CenterNeighbors(C), C + 1.0)

    def fail(*args: object) -> None:
        raise MemoryError("share")

    monkeypatch.setattr(nb, "_rebuild", fail)
    with pytest.raises(MemoryError):
        build.work()
    with pytest.raises(RuntimeError, match="another thread"):
        build.work()


def test_after_a_failed_rebuild_the_next_pass_builds_again(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    C = rng.uniform(0, 255, size=(64, 3))
    moved = C + 1.0
    nb._cache[:] = [nb.CenterNeighbors(C)]
    real = nb._rebuild

    def fail(*args: object) -> None:
        raise MemoryError("share")

    monkeypatch.setattr(nb, "_rebuild", fail)
    with pytest.raises(MemoryError):
        nb.neighbors_of(moved)
    assert not nb._building
    monkeypatch.setattr(nb, "_rebuild", real)
    _check_table(nb.neighbors_of(moved), moved)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 600),
    k=st.integers(2, 80),
    d=st.integers(1, 12),
    m=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_predicted_misses_count_the_centers_within_twice_the_distance(
    n: int, k: int, d: int, m: int, seed: int
) -> None:
    # The share of sampled rows with at least m other centers strictly within 2u of their
    # center (continuous data: no gap sits within rounding of 2u).
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    C = rng.normal(size=(k, d))
    labels = rng.integers(0, k, size=n).astype(np.int32)
    rows = np.unique(np.linspace(0, n - 1, min(n, lloyd.BALL_SAMPLE)).astype(np.int64))
    gaps = _gaps(C)
    u = np.sqrt(((X[rows] - C[labels[rows]]) ** 2).sum(axis=1))
    within = (gaps[labels[rows]] < 2.0 * u[:, None]).sum(axis=1) - 1
    want = float((within >= m).sum()) / rows.shape[0]
    assert lloyd.predicted_ball_misses(X, C, labels, m) == want


@pytest.mark.parametrize("kernel", ["rows", "gemm"])
def test_many_centers_per_cluster_skip_the_ball_search_and_stay_exact(
    kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 300 centers in one Gaussian cloud, 16 listed neighbours: the prediction says most
    # balls miss, so the pass builds no table (and its labels are still the reference's);
    # 300 well-separated clusters with a center each keep the ball search.
    monkeypatch.setattr(nb, "MAX_NEIGHBORS", 16)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 6)).astype(np.float32)
    C = X[rng.choice(3000, 300, replace=False)].astype(np.float64)
    _, _, _, bounds = bounded_lloyd_sqeuclidean(X, np.ones(3000), C, None, kernel)
    nb._cache.clear()  # the rows kernel's first pass searches balls too
    C = C + 1e-3
    _, _, inertia, bounds = bounded_lloyd_sqeuclidean(X, np.ones(3000), C, bounds, kernel)
    assert bounds.ball_misses > lloyd.BALL_MAX_MISSES and not nb._cache
    want_labels, want_costs = oracle.assign(X, C)
    np.testing.assert_array_equal(bounds.labels, want_labels)
    assert inertia == pytest.approx(float(want_costs.sum()), rel=1e-12)

    spots = rng.uniform(-1000, 1000, size=(300, 6))
    X = (np.repeat(spots, 10, axis=0) + rng.normal(size=(3000, 6))).astype(np.float32)
    C = spots.copy()
    _, _, _, bounds = bounded_lloyd_sqeuclidean(X, np.ones(3000), C, None, kernel)
    nb._cache.clear()
    C = C + 1e-3
    _, _, inertia, bounds = bounded_lloyd_sqeuclidean(X, np.ones(3000), C, bounds, kernel)
    assert bounds.ball_misses < lloyd.BALL_MAX_MISSES and nb._cache
    want_labels, want_costs = oracle.assign(X, C)
    np.testing.assert_array_equal(bounds.labels, want_labels)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(2, 60),
    d=st.integers(1, 10),
    slack=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**16),
)
def test_half_gaps_pay_when_they_alone_keep_a_sampled_row(n: int, k: int, d: int, slack: float, seed: int) -> None:
    # A sampled row of center a at distance u is kept by the half gap alone when
    # lower - drop[a] <= u < min_{j != a} ||c_a - c_j|| / 2 (continuous data, no ties at the edges).
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    C = rng.normal(size=(k, d)) * 3.0
    labels = rng.integers(0, k, size=n).astype(np.int32)
    lower = (rng.random(n) * slack).astype(np.float32)
    drop = rng.random(k) * 0.5
    rows = np.unique(np.linspace(0, n - 1, min(n, lloyd.BALL_SAMPLE)).astype(np.int64))
    gaps = _gaps(C)
    np.fill_diagonal(gaps, np.inf)
    a = labels[rows]
    u = np.sqrt(((X[rows] - C[a]) ** 2).sum(axis=1))
    alone = (u < gaps[a].min(axis=1) / 2) & (u >= lower[rows].astype(np.float64) - drop[a])
    assert lloyd.half_gaps_pay(X, C, labels, lower, drop) == bool(alone.any())


@pytest.mark.parametrize(("k", "d", "pays"), [(300, 32, False), (600, 8, True)])
def test_bounded_passes_skip_the_gaps_only_when_they_keep_nothing(
    k: int, d: int, pays: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # k^2 d above the compiled double loop's budget: the gaps come from BLAS unless the
    # sample says they keep no row. 300 centers in one 32-dimensional cloud: every row's
    # center has a neighbour closer than twice the row, so they are skipped. 600 separate
    # clusters, one center starting 30 away (its move voids every lower bound): computed.
    # Either way the labels and the inertia are the reference's.
    computed: list[int] = []
    full = lloyd.half_gaps
    monkeypatch.setattr(lloyd, "half_gaps", lambda c: computed.append(1) or full(c))
    monkeypatch.setattr(lloyd, "predicted_ball_misses", lambda *args: 1.0)  # no ball search
    rng = np.random.default_rng(9)
    if pays:
        spots = rng.uniform(-40.0, 40.0, size=(k, d))
        X = (np.repeat(spots, 5, axis=0) + rng.normal(size=(5 * k, d))).astype(np.float32)
        C = spots.copy()
        C[0, 0] += 30.0
    else:
        X = rng.normal(size=(10 * k, d)).astype(np.float32)
        C = X[rng.choice(10 * k, k, replace=False)].astype(np.float64)
    assert k * k * d > lloyd._GAPS_BY_GEMM
    for kernel in ("rows", "gemm"):
        bounds, step_c = None, C.copy()
        for _ in range(4):
            sums, wsum, inertia, bounds = bounded_lloyd_sqeuclidean(X, np.ones(X.shape[0]), step_c, bounds, kernel)
            want_labels, want_costs = oracle.assign(X, step_c)
            np.testing.assert_array_equal(bounds.labels, want_labels)
            assert inertia == pytest.approx(float(want_costs.sum()), rel=1e-12)
            nz = wsum > 0
            step_c = step_c.copy()
            step_c[nz] = sums[nz] / wsum[nz, None]
    assert bool(computed) == pays


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    d=st.integers(1, 3),
    layout=st.sampled_from(["spread", "clumped", "flat-column", "huge", "duplicated-centers"]),
)
def test_a_fresh_pass_started_from_grid_cells_is_the_brute_force(seed: int, d: int, layout: str) -> None:
    # From GRID_MIN_CENTERS centers a fresh pass starts each row from the center found last in
    # its grid cell: only a start, so labels and costs are the full comparison's whatever it is.
    rng = np.random.default_rng(seed)
    k = nb.GRID_MIN_CENTERS + int(rng.integers(0, 64))
    n = 3000
    X = rng.uniform(-50, 50, size=(n, d))
    if layout == "clumped":
        X = np.round(X / 25) * 25 + rng.normal(scale=0.01, size=(n, d))  # most cells empty
    elif layout == "flat-column":
        X[:, 0] = 7.0  # a zero span: one bin along it
    elif layout == "huge":
        X *= 1e150
    centers = X[rng.choice(n, k, replace=False)] + rng.normal(scale=1e-3, size=(k, d)) * np.abs(X).max()
    if layout == "duplicated-centers":
        centers[1::2] = centers[::2][: centers[1::2].shape[0]]  # exact ties: the lowest index wins
    labels = np.empty(n, np.int32)
    lower = np.empty(n, np.float32)
    costs = np.empty(n)
    nb.ball_phase(X, centers, labels, lower, np.zeros(k), costs, np.empty(0, np.int64), True)
    want_labels, want_costs = assign_sqeuclidean(X, centers)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(costs, want_costs)
    np.testing.assert_array_equal(labels, oracle.assign(X, centers)[0])
    dist = np.sqrt(oracle.sq_euclidean(X, centers))
    dist[np.arange(n), labels] = np.inf
    assert np.all(lower <= dist.min(axis=1))  # every lower bound holds for every other center
