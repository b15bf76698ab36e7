"""The centers' neighbour tables of the ball search: built, rebuilt and refreshed, always on the safe side."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
