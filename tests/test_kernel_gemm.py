"""The BLAS kernel of L2: exact against the float64 brute force, bit-identical to the rows kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmeans._kernels.gemm as gemm_module
from kmeans._kernels import assign_sqeuclidean, bounded_lloyd_sqeuclidean, lloyd_sqeuclidean
from kmeans._kernels.gemm import (
    CENTERS_MAJOR_MIN,
    GemmCenters,
    _key,
    ball_candidates,
    center_gap_table,
    error_factor,
    gemm_assign,
    gemm_labels,
    gemm_lloyd,
)
from kmeans._kernels.lloyd import bound_updates
from kmeans._types import Block
from kmeans.distance.l2 import SquaredEuclidean, WeightedMean
from tests import oracle

ROWS = SquaredEuclidean(kernel="rows")
GEMM = SquaredEuclidean(kernel="gemm", chunk_elements=64)  # 64-row tiles: many tiles, a partial one


def _blobs(seed: int, n: int, d: int, k: int, dtype: type, offset: float = 0.0, scale: float = 1.0) -> tuple:
    rng = np.random.default_rng(seed)
    means = rng.uniform(-10, 10, size=(max(k // 2, 1), d))
    X = (means[rng.integers(0, means.shape[0], n)] + rng.normal(size=(n, d))) * scale + offset
    C = X[rng.choice(n, k, replace=False)].astype(np.float64) + rng.normal(scale=0.1 * scale, size=(k, d))
    return X.astype(dtype), C


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("d", "k"), [(1, 5), (3, 300), (16, 64), (40, 7), (130, 33)])
def test_gemm_labels_and_costs_equal_the_brute_force(dtype: type, d: int, k: int) -> None:
    X, C = _blobs(d * k, 700, d, k, dtype)
    labels, costs = GEMM.assign(X, C)
    want_labels, want_costs = oracle.assign(X, C)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(costs, want_costs, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("offset", "scale"), [(1e4, 1e-3), (-3e6, 1.0), (0.0, 1e-30), (0.0, 1e20), (1e7, 1e-2)])
def test_gemm_is_exact_where_the_expansion_is_ill_conditioned(dtype: type, offset: float, scale: float) -> None:
    # Far from the origin relative to the spread, the expansion cancels to nothing; tiny or
    # huge scales push float32 products towards underflow or overflow.
    X, C = _blobs(3, 500, 24, 20, dtype, offset=offset, scale=scale)
    labels, costs = GEMM.assign(X, C)
    np.testing.assert_array_equal(labels, ROWS.assign(X, C)[0])
    np.testing.assert_array_equal(costs, ROWS.assign(X, C)[1])


def test_gemm_ties_go_to_the_lowest_center_index() -> None:
    rng = np.random.default_rng(0)
    half = rng.integers(-5, 5, size=(10, 20)).astype(np.float64)
    C = np.vstack([half, half, half])  # every center three times
    X = np.repeat(half, 4, axis=0).astype(np.float32) + 0.5
    labels, _ = GEMM.assign(X, C)
    want, _ = oracle.assign(X, C)
    np.testing.assert_array_equal(labels, want)
    assert labels.max() < 10


def test_near_ties_within_the_error_bound_are_rechecked_exactly() -> None:
    # Two centers whose distances to every row differ far less than float32 can resolve.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 32)).astype(np.float32)
    base = rng.normal(size=32)
    C = np.vstack([base, base + 1e-9, base - 1e-9, base * 0.5])
    labels, costs = GEMM.assign(X, C)
    want_labels, want_costs = ROWS.assign(X, C)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(costs, want_costs)


def test_blocks_that_could_overflow_the_products_fall_back_to_exact_rows() -> None:
    X = np.full((10, 20), 1e37, dtype=np.float32)
    X[::2] *= -1
    C = np.vstack([X[0], X[1]]).astype(np.float64)
    assert gemm_assign(X, C) is None
    labels, _ = GEMM.assign(X, C)
    assert labels.tolist() == [0, 1] * 5


def test_error_factor_grows_with_features_and_roundoff() -> None:
    e16, _ = error_factor(16, np.dtype(np.float32))
    e64, _ = error_factor(64, np.dtype(np.float32))
    d16, _ = error_factor(16, np.dtype(np.float64))
    assert e64 > e16 > d16 > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("d", "k"), [(3, 40), (20, 9), (64, 100), (5, 300)])  # k > 24: the ball search
def test_bounded_passes_are_bit_identical_to_a_pass_without_bounds(dtype: type, d: int, k: int) -> None:
    X, C = _blobs(k + d, 3000, d, k, dtype)
    rng = np.random.default_rng(2)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    bounds = {"rows": None, "gemm": None}
    kept = {"rows": 0, "gemm": 0}
    for step in range(6):  # centers that move less and less: later passes keep most rows
        C = C + rng.normal(scale=0.5 / (step + 1) ** 2, size=C.shape)
        want = lloyd_sqeuclidean(X, w, C, "rows")
        want_labels, _ = oracle.assign(X, C)
        for kernel in ("rows", "gemm"):
            sums, wsum, inertia, bounds[kernel] = bounded_lloyd_sqeuclidean(X, w, C, bounds[kernel], kernel)
            np.testing.assert_array_equal(sums, want[0])
            np.testing.assert_array_equal(wsum, want[1])
            assert inertia == want[2]
            np.testing.assert_array_equal(bounds[kernel].labels, want_labels)
            kept[kernel] += bounds[kernel].kept
    assert kept["rows"] > 0 and kept["gemm"] > 0  # the bounds did settle rows


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(25, 90),
    d=st.integers(1, 20),
    gemm=st.booleans(),
    seed=st.integers(0, 2**16),
    moves=st.lists(st.sampled_from([0.0, 1e-12, 1e-3, 0.1, 2.0]), min_size=2, max_size=5),
)
def test_ball_search_equals_the_brute_force_after_any_moves(
    k: int, d: int, gemm: bool, seed: int, moves: list[float]
) -> None:
    # Centers on data rows, duplicated centers, moves from none to large: every bounded
    # pass labels exactly as comparing every center (ties to the lowest index). The
    # reference sums in feature order like the kernels: moves of 1e-12 make ties that
    # another summation order (NumPy's pairwise sum above 8 features) rounds otherwise.
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(400, d)).astype(np.float64)  # many exact ties
    C = X[rng.choice(400, k, replace=False)].astype(np.float64)
    C[k // 2 :: 5] = C[: len(C[k // 2 :: 5])]
    bounds = None
    for scale in moves:
        C = C + rng.normal(scale=scale, size=C.shape) * (rng.random(size=(k, 1)) < 0.3)
        _, _, inertia, bounds = bounded_lloyd_sqeuclidean(X, np.ones(400), C, bounds, "gemm" if gemm else "rows")
        want_labels, _ = assign_sqeuclidean(X, C)
        _, want_costs = oracle.assign(X, C)
        np.testing.assert_array_equal(bounds.labels, want_labels)
        assert inertia == pytest.approx(float(want_costs.sum()), rel=1e-12, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    d=st.integers(13, 48),
    k=st.integers(1, 40),
    n=st.integers(1, 300),
    offset=st.sampled_from([0.0, 1.0, 1e3, -1e5]),
    scale=st.sampled_from([1e-6, 1.0, 1e4]),
    f32=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_gemm_fused_pass_equals_the_brute_force(
    d: int, k: int, n: int, offset: float, scale: float, f32: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * scale + offset).astype(np.float32 if f32 else np.float64)
    C = (rng.normal(size=(k, d)) * scale + offset).astype(np.float64)
    C[: min(k, n) // 2] = X[: min(k, n) // 2]  # some centers on data rows: exact zero distances
    want_labels, want_costs = oracle.assign(X, C)
    labels, costs = GEMM.assign(X, C)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(costs, want_costs, rtol=1e-12, atol=0)
    _, wsum, inertia = lloyd_sqeuclidean(X, np.ones(n), C, "gemm")
    assert wsum.tolist() == np.bincount(want_labels, minlength=k).astype(float).tolist()
    assert inertia == pytest.approx(float(want_costs.sum()), rel=1e-12, abs=1e-300)


def test_fused_gemm_pass_through_the_update_step_equals_the_generic_path() -> None:
    X, C = _blobs(5, 1000, 30, 12, np.float32)
    w = np.ones(X.shape[0])
    out = WeightedMean().fused_partial(GEMM, Block(X, w), C, None, {})
    assert out is not None
    (sums, wsum), inertia, _ = out
    labels, costs = oracle.assign(X, C)
    want_sums, want_wsum = WeightedMean().partial(Block(X, w), labels, 12, None)
    np.testing.assert_array_equal(wsum, want_wsum)
    np.testing.assert_allclose(sums, want_sums, rtol=1e-12)
    assert inertia == pytest.approx(float(costs.sum()), rel=1e-12)


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
@pytest.mark.parametrize(("d", "k"), [(1, 25), (3, 200), (8, 60)])
def test_ball_assignment_equals_the_brute_force_including_ties(order: str, d: int, k: int) -> None:
    # Many centers and few features: assign() searches balls from each row's predecessor.
    rng = np.random.default_rng(k + d)
    X = rng.integers(0, 12, size=(3000, d)).astype(np.float32)
    X = X[np.lexsort(X.T[::-1])] if order == "sorted" else X
    C = rng.integers(0, 12, size=(k, d)).astype(np.float64) + 0.5 * (rng.random((k, 1)) < 0.5)
    C[k // 2 :: 7] = C[: len(C[k // 2 :: 7])]  # duplicated centers: exact ties
    labels, costs = ROWS.assign(X, C)
    want_labels, want_costs = oracle.assign(X, C)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(costs, want_costs)


@pytest.mark.parametrize(("dtype", "ints"), [(np.float32, np.int32), (np.float64, np.int64)])
@given(st.data())
@settings(max_examples=30, deadline=None)
def test_integer_keys_order_like_the_floats(dtype: type, ints: type, data: st.DataObject) -> None:
    # The window scans compare floats as integer keys: the same order (-0 just below +0),
    # key + 1 is the next float up, and the map is its own inverse.
    width = 32 if dtype is np.float32 else 64
    drawn = data.draw(st.lists(st.floats(width=width, allow_nan=False), min_size=2, max_size=40))
    values = np.array(drawn, dtype=dtype)
    shift, mask = ints(8 * np.dtype(dtype).itemsize - 1), ints(np.iinfo(ints).max)
    keys = _key(values.view(ints), shift, mask)
    a, b = np.meshgrid(np.arange(values.size), np.arange(values.size))
    neg_zero_first = (values[a] == values[b]) & np.signbit(values[a]) & ~np.signbit(values[b])
    np.testing.assert_array_equal(keys[a] < keys[b], (values[a] < values[b]) | neg_zero_first)
    np.testing.assert_array_equal(_key(keys, shift, mask), values.view(ints))
    inner = values[np.isfinite(values) & (values != 0) & (values != np.finfo(dtype).max)]
    up = _key(_key(inner.view(ints), shift, mask) + ints(1), shift, mask).view(dtype)
    np.testing.assert_array_equal(up, np.nextafter(inner, dtype(np.inf)))


def _gemm_labels(X: np.ndarray, C: np.ndarray, centers_major: bool, tile: int = 64) -> tuple:
    gc = GemmCenters(C, X.dtype)
    assert gc.safe_for(X)
    n = X.shape[0]
    labels, lower, costs = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.float32), np.empty(n)
    gemm_labels(X, gc, labels, lower, costs, None, tile * C.shape[0], centers_major)
    return labels, costs, lower


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("offset", "scale"), [(0.0, 1.0), (1e4, 1e-3), (0.0, 1e-30), (-3e6, 1.0)])
def test_centers_major_tiles_equal_the_brute_force_at_many_centers(dtype: type, offset: float, scale: float) -> None:
    # k >= CENTERS_MAJOR_MIN: the tiles are (k, rows) products scanned across rows.
    k = CENTERS_MAJOR_MIN + 37
    X, C = _blobs(k, k + 200, 12, k, dtype, offset=offset, scale=scale)
    C[:40] = X[:40]  # centers on rows: exact zero distances
    labels, costs = GEMM.assign(X, C)
    want_labels, want_costs = ROWS.assign(X, C)
    np.testing.assert_array_equal(labels, oracle.assign(X, C)[0])
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(costs, want_costs)


@settings(max_examples=40, deadline=None)
@given(
    d=st.integers(1, 40),
    k=st.integers(1, 60),
    n=st.integers(1, 200),
    f32=st.booleans(),
    grid=st.booleans(),
    tile=st.sampled_from([1, 7, 64]),
    seed=st.integers(0, 2**16),
)
def test_both_tile_layouts_equal_the_brute_force(
    d: int, k: int, n: int, f32: bool, grid: bool, tile: int, seed: int
) -> None:
    # Integer grids make exact ties and zero values of the expansion (the centers-major scan
    # compares floats, where -0 equals +0); labels and costs match the reference either way,
    # and both layouts leave valid lower bounds on every other center.
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, d)) if grid else rng.normal(size=(n, d)) * 10.0 + 100.0
    C = rng.integers(-3, 4, size=(k, d)) if grid else rng.normal(size=(k, d)) * 10.0 + 100.0
    X = X.astype(np.float32 if f32 else np.float64)
    C = C.astype(np.float64)
    want_labels, want_costs = ROWS.assign(X, C)
    np.testing.assert_array_equal(want_labels, oracle.assign(X, C)[0])
    full = oracle.sq_euclidean(X, C)
    full[np.arange(n), want_labels] = np.inf
    for centers_major in (False, True):
        labels, costs, lower = _gemm_labels(X, C, centers_major, tile)
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_array_equal(costs, want_costs)
        assert np.all(lower.astype(np.float64) ** 2 <= full.min(axis=1))


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 80),
    d=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    spread=st.sampled_from([0.0, 1e-9, 0.5, 3.0, 50.0]),
)
def test_ball_candidates_hold_every_center_within_reach(k: int, d: int, seed: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    C = rng.integers(-3, 4, size=(k, d)).astype(np.float64) + rng.normal(scale=spread, size=(k, d))
    C[k // 2 :: 3] = C[: len(C[k // 2 :: 3])]  # duplicated centers: zero gaps
    rho = rng.uniform(0, 6, size=k) * (rng.random(k) < 0.9)
    indptr, indices, reach = ball_candidates(C, rho)
    gaps = np.sqrt(oracle.sq_euclidean(C, C))
    for a in range(k):
        members = indices[indptr[a] : indptr[a + 1]]
        assert np.all(np.diff(members) > 0) and a in members
        outside = np.setdiff1d(np.arange(k), members)
        assert set(np.flatnonzero(gaps[a] <= rho[a])) <= set(members.tolist())
        assert np.all(gaps[a, outside] > rho[a])
        assert reach[a] <= gaps[a, outside].min(initial=np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("offset", "grid"), [(0.0, False), (1e4, False), (0.0, True)])
@pytest.mark.parametrize(("tiles", "d"), [(True, 10), (False, 10), (False, 24)])
def test_grouped_passes_equal_the_brute_force_and_the_full_tiles(
    dtype: type, offset: float, grid: bool, tiles: bool, d: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many centers per blob: rows that fail their bounds go cluster by cluster against the
    # centers within twice their distance (one BLAS tile per cluster, or the compiled loop over
    # each row's candidates, exact or first by the vectorized distance from 16 features);
    # labels equal the oracle's, and sums, weights and inertia equal the full tiles' bit for
    # bit, pass after pass while the centers move.
    monkeypatch.setattr(gemm_module, "TILE_ROWS_PER_CLUSTER", 0 if tiles else 10**9)
    rng = np.random.default_rng(7)
    n, k = 3000, 150
    if grid:
        X = rng.integers(-2, 3, size=(n, d)).astype(np.float64)  # exact ties everywhere
    else:
        X = _blobs(1, n, d, 40, np.float64, offset=offset)[0]
    X = X.astype(dtype)
    C = X[rng.choice(n, k, replace=False)].astype(np.float64)
    C[100:110] = C[:10]  # duplicated centers
    w = rng.uniform(0.5, 2.0, n)
    state = {mode: (np.empty(n, dtype=np.int32), np.empty(n, dtype=np.float32)) for mode in ("full", "grouped")}
    prev = None
    for step in range(5):
        drop, half_gap = np.zeros(k), np.zeros(k)
        if prev is not None:
            bound_updates(prev, C, drop, half_gap)
        out = {}
        for mode, (labels, lower) in state.items():
            sums, wsum = np.zeros((k, d)), np.zeros(k)
            res = gemm_lloyd(
                X, w, False, C, labels, lower, drop, half_gap, prev is None, sums, wsum, grouped=mode == "grouped"
            )
            assert res is not None
            out[mode] = (sums, wsum, res[0])
            np.testing.assert_array_equal(labels, oracle.assign(X, C)[0])
        np.testing.assert_array_equal(out["grouped"][0], out["full"][0])
        np.testing.assert_array_equal(out["grouped"][1], out["full"][1])
        assert out["grouped"][2] == out["full"][2]
        prev = C
        sums, wsum, _ = out["full"]
        C = np.where(wsum[:, None] > 0, sums / np.maximum(wsum, 1e-300)[:, None], C)
        C = C + rng.normal(scale=0.3 / (step + 1), size=C.shape) * (rng.random((k, 1)) < 0.2)


@pytest.mark.parametrize("offset", [0.0, 1e6, -3e9])
def test_the_gap_table_bounds_every_squared_gap_from_below(offset: float) -> None:
    rng = np.random.default_rng(3)
    C = rng.normal(size=(300, 7)) * rng.uniform(1e-3, 10, size=(300, 1)) + offset
    C[150:160] = C[:10]  # duplicates: zero gaps
    table = center_gap_table(C)
    assert table.dtype == np.float32 and table.shape == (300, 300)
    true = oracle.sq_euclidean(C, C)
    assert np.all(table.astype(np.float64) <= true)
    assert np.all(np.diag(table) == 0)
    assert center_gap_table(C.copy()) is table  # one table per set of centers (a pass's blocks share it)
    apart = true > 1e-3
    assert np.all(table[apart] >= 0.999 * true[apart])  # and tight: the expansion is about the centers' mean
