"""Squared-Euclidean assignment and the weighted-mean update."""

from __future__ import annotations

import numpy as np
import pytest

from kmeans._types import Block
from kmeans.distance.l2 import L2, SquaredEuclidean, WeightedMean
from tests import oracle


def _data(seed: int, n: int, d: int, k: int, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.normal(size=(k, d))


#: Both assignment paths: the compiled direct kernel (few features) and chunked GEMM.
PATHS = [SquaredEuclidean(direct_max_features=1 << 30), SquaredEuclidean(direct_max_features=0, chunk_elements=16)]
IDS = ["direct", "gemm"]


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
@pytest.mark.parametrize("k", [1, 2, 7, 300])
@pytest.mark.parametrize("d", [1, 3, 20])
def test_assign_matches_brute_force(metric: SquaredEuclidean, k: int, d: int) -> None:
    # chunk_elements=16 gives 256-row chunks: 1000 rows span several, including a partial one.
    points, centers = _data(k, 1000, d, k)
    labels, costs = metric.assign(points, centers)
    want_labels, want_costs = oracle.assign(points, centers)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(costs, want_costs, rtol=1e-12)


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
def test_assign_tie_goes_to_lowest_center_index(metric: SquaredEuclidean) -> None:
    points = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    centers = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    labels, _ = metric.assign(points, centers)
    # Row 0 is equidistant from all four centers; rows 1 and 2 match a duplicated center.
    assert labels.tolist() == [0, 1, 0]


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
def test_assign_tie_between_mirror_centers_goes_to_lowest_index(metric: SquaredEuclidean) -> None:
    points = np.array([[0.0, 5.0], [0.0, -3.0]])
    centers = np.array([[1.0, 0.0], [-1.0, 0.0]])
    labels, costs = metric.assign(points, centers)
    assert labels.tolist() == [0, 0]
    assert costs.tolist() == [26.0, 10.0]


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
def test_costs_are_never_negative_even_under_cancellation(metric: SquaredEuclidean) -> None:
    # Far from the origin ||x||² - 2x·c + ||c||² cancels catastrophically (and may come out
    # negative); the reported cost is recomputed directly, so it is >= 0 and exact.
    rng = np.random.default_rng(7)
    points = 1e6 + rng.normal(scale=1e-3, size=(200, 3))
    centers = points[:4].copy()
    labels, costs = metric.assign(points, centers)
    assert (costs >= 0).all()
    np.testing.assert_allclose(costs, oracle.sq_euclidean(points, centers)[np.arange(200), labels], rtol=1e-12)


def test_float32_points_stay_float32_in_the_product(monkeypatch: pytest.MonkeyPatch) -> None:
    points, centers = _data(2, 600, 20, 4, np.float32)  # 20 features: the default takes the GEMM path
    seen: list[np.dtype] = []
    real_matmul = np.matmul

    def spy(a: np.ndarray, b: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        seen.append(np.result_type(a, b))
        return real_matmul(a, b, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(np, "matmul", spy)
    labels, costs = SquaredEuclidean().assign(points, centers)
    assert seen and set(seen) == {np.dtype(np.float32)}
    assert costs.dtype == np.float64
    np.testing.assert_array_equal(labels, oracle.assign(points, centers)[0])


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
def test_float32_costs_are_computed_in_float64(metric: SquaredEuclidean) -> None:
    points, centers = _data(3, 200, 3, 4, np.float32)
    labels, costs = metric.assign(points, centers)
    want = ((points.astype(np.float64) - centers[labels]) ** 2).sum(axis=1)
    np.testing.assert_allclose(costs, want, rtol=1e-14)


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
@pytest.mark.parametrize("d", [3, 20])
def test_pairwise_matches_brute_force_and_is_never_negative(metric: SquaredEuclidean, d: int) -> None:
    points, centers = _data(4, 100, d, 6)
    centers[0] = points[0] * (1 + 1e-16)
    got = metric.pairwise(points, centers)
    np.testing.assert_allclose(got, oracle.sq_euclidean(points, centers), rtol=1e-9, atol=1e-12)
    assert (got >= 0).all()


def test_shift_is_euclidean_distance_per_center() -> None:
    old = np.array([[0.0, 0.0], [1.0, 1.0]])
    new = np.array([[3.0, 4.0], [1.0, 1.0]])
    assert SquaredEuclidean().shift(old, new).tolist() == [5.0, 0.0]


def _mean_of(points: np.ndarray, weights: np.ndarray | None, labels: np.ndarray, old: np.ndarray) -> np.ndarray:
    update = WeightedMean()
    w = np.ones(points.shape[0]) if weights is None else weights
    summary = update.partial(Block(points, w), labels, old.shape[0], None)
    return update.finalize(summary, old, None)  # type: ignore[no-any-return]


def test_weighted_mean_hand_computed() -> None:
    points = np.array([[0.0, 0.0], [4.0, 8.0], [10.0, 10.0]])
    weights = np.array([3.0, 1.0, 2.0])
    labels = np.array([0, 0, 1])
    got = _mean_of(points, weights, labels, np.zeros((2, 2)))
    assert got.tolist() == [[1.0, 2.0], [10.0, 10.0]]


def test_weighted_mean_with_unit_broadcast_weights_is_the_plain_mean() -> None:
    points, old = _data(5, 300, 3, 4)
    labels = oracle.assign(points, old)[0]
    update = WeightedMean()
    unit = np.broadcast_to(np.float64(1.0), (300,))
    got = update.finalize(update.partial(Block(points, unit), labels, 4, None), old, None)
    np.testing.assert_allclose(got, oracle.update(points, np.ones(300), labels, old), rtol=1e-13)


def test_weighted_mean_of_an_empty_cluster_keeps_the_old_center() -> None:
    points = np.array([[1.0], [3.0]])
    old = np.array([[2.0], [100.0]])
    assert _mean_of(points, None, np.array([0, 0]), old).tolist() == [[2.0], [100.0]]


def test_zero_weight_rows_do_not_move_the_mean() -> None:
    points = np.array([[1.0], [3.0], [1000.0]])
    got = _mean_of(points, np.array([1.0, 1.0, 0.0]), np.array([0, 0, 0]), np.zeros((1, 1)))
    assert got.tolist() == [[2.0]]


def test_float32_block_sums_in_float64() -> None:
    # 2**24 + 1 is not a float32; float32 accumulation of many ones would stall at 2**24.
    points = np.ones((2**12, 1), dtype=np.float32)
    weights = np.full(2**12, 2.0**12 + 1)
    update = WeightedMean()
    sums, total = update.partial(Block(points, weights), np.zeros(2**12, dtype=np.intp), 1, None)
    assert sums.dtype == np.float64
    assert sums[0, 0] == total[0] == 2.0**12 * (2.0**12 + 1)


def test_merged_partials_equal_one_partial_over_all_rows() -> None:
    points, old = _data(6, 500, 3, 5)
    weights = np.random.default_rng(6).uniform(0.5, 2, 500)
    labels = oracle.assign(points, old)[0]
    update = WeightedMean()
    whole = update.partial(Block(points, weights), labels, 5, None)
    parts = [
        update.partial(Block(points[s : s + 97], weights[s : s + 97], s), labels[s : s + 97], 5, None)
        for s in range(0, 500, 97)
    ]
    merged = parts[0]
    for p in parts[1:]:
        merged = update.merge(merged, p)
    np.testing.assert_allclose(update.finalize(merged, old, None), update.finalize(whole, old, None), rtol=1e-13)


def test_l2_pairs_squared_euclidean_with_the_mean() -> None:
    assert isinstance(L2.assign, SquaredEuclidean)
    assert isinstance(L2.update, WeightedMean)
    assert L2.name == "l2"


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_assign_is_exact_for_data_far_from_the_origin(metric: SquaredEuclidean, dtype: type) -> None:
    # Regression: on the GEMM path ||c||² - 2x·c cancels when the offset dwarfs the spread
    # (float32 embeddings or coordinates): most labels came out wrong.
    rng = np.random.default_rng(8)
    centers = 1000.0 + rng.normal(scale=0.01, size=(8, 20))
    points = (centers[rng.integers(0, 8, 2000)] + rng.normal(scale=0.002, size=(2000, 20))).astype(dtype)
    labels, _ = metric.assign(points, centers)
    np.testing.assert_array_equal(labels, oracle.assign(points, centers)[0])


@pytest.mark.parametrize("metric", PATHS, ids=IDS)
def test_float32_points_are_never_copied_to_float64(metric: SquaredEuclidean) -> None:
    import tracemalloc

    n = 400_000
    points = np.random.default_rng(9).normal(size=(n, 3)).astype(np.float32)
    centers = np.random.default_rng(10).normal(size=(8, 3))
    metric.assign(points[:1000], centers)  # warm up (compilation, caches)
    tracemalloc.start()
    try:
        metric.assign(points, centers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = n * (np.dtype(np.intp).itemsize + 8)  # labels and float64 costs
    assert peak < outputs + n * 3 * 8 // 2  # a float64 copy of the points would add n * 24 bytes


def _generic_pass(points: np.ndarray, weights: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, ...]:
    labels, costs = SquaredEuclidean().assign(points, centers)
    sums, wsum = WeightedMean().partial(Block(points, weights), labels, centers.shape[0], None)
    return sums, wsum, np.sum(weights * costs)


@pytest.mark.parametrize("k", [1, 2, 10, 24, 25, 256])  # 24/25: either side of the RGB register kernel
@pytest.mark.parametrize("d", [1, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("unit", [True, False])
def test_fused_pass_equals_assign_then_partial(k: int, d: int, dtype: type, unit: bool) -> None:
    rng = np.random.default_rng(k * 100 + d)
    points = (rng.integers(0, 256, size=(2000, d)) if dtype == np.uint8 else rng.normal(size=(2000, d))).astype(dtype)
    centers = points[rng.choice(2000, k, replace=False)].astype(np.float64) + rng.normal(scale=0.01, size=(k, d))
    weights = np.broadcast_to(np.float64(1.0), (2000,)) if unit else rng.uniform(0.0, 3.0, 2000)
    out = WeightedMean().fused_partial(SquaredEuclidean(), Block(points, weights), centers, None)
    assert out is not None
    (sums, wsum), inertia, cluster_weights = out
    want_sums, want_wsum, want_inertia = _generic_pass(points, weights, centers)
    # Same labels and the same row-order accumulation: the sums are bit-identical.
    np.testing.assert_array_equal(sums, want_sums)
    np.testing.assert_array_equal(wsum, want_wsum)
    np.testing.assert_array_equal(cluster_weights, want_wsum)
    assert inertia == pytest.approx(want_inertia, rel=1e-12)


@pytest.mark.parametrize("k", [4, 40])
def test_fused_pass_breaks_ties_towards_the_lowest_center_index(k: int) -> None:
    # Every center is duplicated: each row is exactly as close to center j as to j + k/2.
    half = np.arange(k // 2, dtype=np.float64)[:, None] * np.ones((1, 3))
    centers = np.vstack([half, half])
    points = np.repeat(half, 3, axis=0) + 0.25
    out = WeightedMean().fused_partial(SquaredEuclidean(), Block(points, np.ones(points.shape[0])), centers, None)
    assert out is not None
    wsum = out[2]
    assert wsum[: k // 2].tolist() == [3.0] * (k // 2) and wsum[k // 2 :].sum() == 0.0


def test_fused_pass_declines_an_assign_step_it_would_bypass() -> None:
    class Custom(SquaredEuclidean):
        pass

    points, centers = _data(1, 50, 20, 3)
    block = Block(points, np.ones(50))
    assert WeightedMean().fused_partial(Custom(), block, centers, None) is None
    assert WeightedMean().fused_partial(L2.assign, block, centers, None) is not None


def test_fused_pass_of_an_empty_block_is_zero() -> None:
    out = WeightedMean().fused_partial(SquaredEuclidean(), Block(np.empty((0, 3)), np.empty(0)), np.zeros((2, 3)), None)
    assert out is not None
    assert out[1] == 0.0 and out[2].tolist() == [0.0, 0.0]


def _passes(points: np.ndarray, weights: np.ndarray, center_seq: list[np.ndarray], memory: dict | None) -> list:
    """``fused_partial`` over a sequence of centers, with or without the run's memory."""
    out = []
    for centers in center_seq:
        res = WeightedMean().fused_partial(SquaredEuclidean(), Block(points, weights), centers, None, memory)
        assert res is not None
        out.append(res)
    return out


def _reference(points: np.ndarray, weights: np.ndarray, center_seq: list[np.ndarray]) -> list:
    """The same passes without any kernel that keeps bounds: assign every row, then sum."""
    out = []
    for centers in center_seq:
        sums, wsum, inertia = _generic_pass(points, weights, centers)
        out.append(((sums, wsum), inertia, wsum))
    return out


def _lloyd_centers(points: np.ndarray, weights: np.ndarray, centers: np.ndarray, n: int) -> list[np.ndarray]:
    seq = [centers]
    for _ in range(n - 1):
        sums, wsum, _ = _generic_pass(points, weights, seq[-1])
        seq.append(WeightedMean().finalize((sums, wsum), seq[-1], None))
    return seq


def _assert_same_passes(a: list, b: list) -> None:
    for ((s1, w1), i1, c1), ((s2, w2), i2, c2) in zip(a, b, strict=True):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(c1, c2)
        assert i1 == pytest.approx(i2, rel=1e-12, abs=0.0)  # the reference sums costs in another order


@pytest.mark.parametrize("k", [1, 2, 10, 24, 25, 256])  # 24/25: either side of the RGB register kernel
@pytest.mark.parametrize("d", [1, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_bounded_passes_equal_the_full_comparison_along_a_lloyd_run(k: int, d: int, dtype: type) -> None:
    # Hamerly's bounds skip rows whose center cannot have changed; the sums and weights of
    # every pass must stay exactly those of assigning every row, and the bounds must skip.
    rng = np.random.default_rng(k * 10 + d)
    n = 3000
    points = (rng.integers(0, 6, size=(n, d)) if dtype == np.uint8 else rng.normal(size=(n, d))).astype(dtype)
    weights = rng.uniform(0.0, 2.0, n)
    centers = points[rng.choice(n, k, replace=False)].astype(np.float64) + rng.normal(scale=0.1, size=(k, d))
    seq = _lloyd_centers(points, weights, centers, 12)
    memory: dict = {}
    bounded = _passes(points, weights, seq, memory)
    _assert_same_passes(bounded, _reference(points, weights, seq))
    # and bit-identical to the same kernel started afresh at every pass
    for got, fresh in zip(bounded, _passes(points, weights, seq, None), strict=True):
        np.testing.assert_array_equal(got[0][0], fresh[0][0])
        assert got[1] == fresh[1]
    # the last pass settled rows from the bounds (most of them unless centers are crowded)
    assert memory[0].kept > (n // 2 if k <= 25 else 0)


def test_bounded_pass_is_exact_when_the_centers_jump_or_tie() -> None:
    # Bounds must hold for *any* next centers: unrelated ones (a relocation, a new run), a
    # center moved onto another (exact ties: lowest index wins), a center moved onto a row.
    rng = np.random.default_rng(3)
    points = rng.integers(0, 4, size=(500, 3)).astype(np.float64)
    weights = np.ones(500)
    a = rng.normal(size=(6, 3)) + 1.5
    b = a.copy()
    b[4] = b[1]  # duplicate center: every row closer to 1 than to others ties with 4
    c = b.copy()
    c[0] = points[0]  # a center exactly on rows (cost 0)
    seq = [a, a, b, b, c, rng.normal(size=(6, 3)) * 10, a, a + 1e-12, c]
    memory: dict = {}
    _assert_same_passes(_passes(points, weights, seq, memory), _reference(points, weights, seq))
    assert memory[0].kept > 0


@pytest.mark.parametrize(
    ("points", "first", "then"),
    [
        # distances beyond float32's range: a lower bound must not become inf
        ([[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [1e39, 0.0, 0.0]], [[5e38, 0.0, 0.0], [1e38, 0.0, 0.0]]),
        # distances in float32's subnormal range: its spacing exceeds the shrink
        ([[0.0]], [[0.0], [1e-45]], [[1.2e-45], [1e-45]]),
        # a gap between centers whose square overflows float64
        ([[1e154]], [[1e154], [1e154 + 1e140]], [[0.0], [1.5e154]]),
        # squares that underflow to an exact tie (the full comparison then picks center 0)
        (
            [[np.sqrt(1.6) * np.sqrt(5e-324) / 2] * 2],
            [[1.0, 1.0], [np.sqrt(1.6) * np.sqrt(5e-324) / 2] * 2],
            [[np.sqrt(1.6) * np.sqrt(5e-324)] * 2, [0.0, 0.0]],
        ),
        (
            [[np.sqrt(1.6) * np.sqrt(5e-324) / 2] * 3],
            [[1.0, 1.0, 1.0], [np.sqrt(1.6) * np.sqrt(5e-324) / 2] * 3],
            [[np.sqrt(1.6) * np.sqrt(5e-324)] * 3, [0.0, 0.0, 0.0]],
        ),
    ],
)
def test_bounded_pass_is_exact_at_extreme_magnitudes(points: list, first: list, then: list) -> None:
    # Regression (review of the bounds): float32 overflow / subnormal bounds and float64
    # squares out of the normal range made the bounds keep a row on the wrong center.
    x = np.array(points)
    seq = [np.array(first), np.array(then)]
    with np.errstate(over="ignore", under="ignore"):
        want = _reference(x, np.ones(x.shape[0]), seq)
        got = _passes(x, np.ones(x.shape[0]), seq, {})
    for ((s1, w1), i1, _), ((s2, w2), i2, _) in zip(got, want, strict=True):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(s1, s2)
        assert i1 == i2


def test_bounded_pass_starts_afresh_on_another_shape_and_on_empty_blocks() -> None:
    rng = np.random.default_rng(4)
    points = rng.normal(size=(200, 3))
    weights = np.ones(200)
    memory: dict = {}
    first = rng.normal(size=(3, 3))
    _passes(points, weights, [first], memory)
    other = rng.normal(size=(5, 3))  # different k: the stored bounds do not apply
    _assert_same_passes(_passes(points, weights, [other], memory), _reference(points, weights, [other]))
    assert memory[0].kept == 0
    half = points[:100]  # same start, fewer rows: not the same block any more
    _assert_same_passes(_passes(half, weights[:100], [other], memory), _reference(half, weights[:100], [other]))
    assert memory[0].kept == 0
    out = WeightedMean().fused_partial(SquaredEuclidean(), Block(np.empty((0, 3)), np.empty(0)), other, None, {})
    assert out is not None and out[1] == 0.0


def test_a_lloyd_run_keeps_bounds_for_every_block_under_its_start() -> None:
    from kmeans.backends.numpy import NumPyDataset
    from kmeans.driver import lloyd

    rng = np.random.default_rng(6)
    X = rng.normal(size=(20_000, 3))
    ds = NumPyDataset(X, n_threads=2, block_rows=4096)
    seen: list[dict] = []
    inner = WeightedMean.fused_partial

    class Spy(WeightedMean):
        def fused_partial(self, assign, block, centers, state, memory=None):  # type: ignore[no-untyped-def]
            if memory is not None and all(m is not memory for m in seen):
                seen.append(memory)
            return inner(self, assign, block, centers, state, memory)

    lloyd(ds, X[:5], SquaredEuclidean(), Spy(), max_iter=6, tol=0.0)
    assert len(seen) == 1  # one dict for the run
    assert sorted(seen[0]) == [b.start for b in ds.local_blocks()] == list(range(0, 20_000, 4096))
    assert all(seen[0][s].labels.shape[0] == b.n_rows for s, b in zip(sorted(seen[0]), ds.local_blocks(), strict=True))
