"""Cosine assignment and the spherical (normalized weighted mean) update."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmeans import KMeans, ValidationError
from kmeans._kernels.cosine import (
    CosineBounds,
    UnitCenters,
    assign_and_sum,
    cosine_costs,
    direction_sums,
    error_factor,
    row_norms,
    similarities,
    unit_centers,
)
from kmeans._types import Block
from kmeans.distance.cosine import COSINE, Cosine, SphericalMean
from tests import oracle

#: Tiles of 16 entries: with k centers, 16 // k rows (>= 64) per tile, so 1000 rows span many.
SMALL_TILES = Cosine(chunk_elements=16)


def _data(seed: int, n: int, d: int, k: int, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.normal(size=(k, d))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 2, 7, 60])
@pytest.mark.parametrize("d", [1, 3, 50])
def test_assign_matches_brute_force(dtype: type, k: int, d: int) -> None:
    points, centers = _data(k + d, 1000, d, k, dtype)
    labels, costs = SMALL_TILES.assign(points, centers)
    want = oracle.cosine(points, centers)
    np.testing.assert_array_equal(labels, np.argmin(want, axis=1))
    np.testing.assert_allclose(costs, want[np.arange(1000), labels], rtol=1e-12, atol=1e-15)
    assert (costs >= 0).all() and (costs <= 2).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_tiles_equal_assign_then_sums_bit_for_bit(dtype: type, weighted: bool) -> None:
    # Many tiles, a row count no multiple of the 8-row dot batches, and exact duplicates of
    # centers (every row a recheck between them) mixed with clear rows in each tile.
    points, centers = _data(5, 1003, 24, 9, dtype)
    centers[4] = centers[2]
    weights = np.random.default_rng(6).random(1003) if weighted else np.broadcast_to(1.0, (1003,))
    norms = row_norms(points)
    unit = UnitCenters(centers)
    labels, sims = similarities(points, unit, norms, 16)
    costs = cosine_costs(sims, norms)
    want = (labels, costs, *direction_sums(points, weights, norms, labels, costs, 9))
    got = assign_and_sum(points, unit, norms, weights, 16)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(labels, np.argmin(oracle.cosine(points, centers), axis=1))
    assert 4 not in labels  # ties go to the lowest index


def test_near_ties_are_rechecked_exactly_in_float64() -> None:
    # Two centers whose float32 similarities tie while the float64 ones do not: the BLAS
    # tile proposes both, and the exact float64 recheck picks the truly closer one.
    rng = np.random.default_rng(3)
    points = rng.normal(size=(400, 64)).astype(np.float32)
    base = rng.normal(size=64)
    centers = np.stack([base, base + 1e-9 * rng.normal(size=64), -base])
    labels, _ = Cosine().assign(points, centers)
    want = oracle.cosine(points, centers)
    np.testing.assert_array_equal(labels, np.argmin(want, axis=1))


def test_error_bound_covers_the_float32_products() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 200)).astype(np.float32)
    unit = unit_centers(rng.normal(size=(9, 200)))
    exact = x.astype(np.float64) @ unit.T
    approx = (x @ unit.T.astype(np.float32)).astype(np.float64)
    eps, abs_err = error_factor(200, np.dtype(np.float32))
    bound = eps * np.linalg.norm(x.astype(np.float64), axis=1)[:, None] + abs_err
    assert (np.abs(approx - exact) <= bound).all()


def test_ties_go_to_the_lowest_center_index() -> None:
    points = np.array([[1.0, 1.0], [3.0, 0.0], [0.0, 2.0]])
    # centers 0 and 2 are the same direction at different lengths; 1 and 3 too
    centers = np.array([[1.0, 0.0], [0.0, 5.0], [7.0, 0.0], [0.0, 1.0]])
    labels, costs = Cosine().assign(points, centers)
    assert labels.tolist() == [0, 0, 1]
    np.testing.assert_allclose(costs, [1 - 1 / np.sqrt(2), 0.0, 0.0], atol=1e-15)


def test_transform_score_and_predict_agree_with_the_costs() -> None:
    points, _ = _data(1, 300, 5, 3)
    model = KMeans(3, distance="cosine", seed=0).fit(points)
    dist = model.transform(points)
    np.testing.assert_allclose(dist, oracle.cosine(points, model.cluster_centers_), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(model.predict(points), np.argmin(dist, axis=1))
    np.testing.assert_array_equal(model.labels_, model.predict(points))
    assert model.score(points) == pytest.approx(-model.inertia_, rel=1e-12)
    np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0, rtol=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_equals_the_brute_force_spherical_reference(weighted: bool) -> None:
    rng = np.random.default_rng(2)
    directions = rng.normal(size=(5, 8))
    points = directions[rng.integers(0, 5, 600)] + 0.4 * rng.normal(size=(600, 8))
    points *= rng.uniform(0.1, 10.0, size=(600, 1))  # lengths do not matter
    weights = rng.uniform(0.2, 3.0, 600) if weighted else None
    init = points[:5]
    model = KMeans(5, distance="cosine", init=init, max_iter=8, tol=0).fit(points, sample_weight=weights)
    centers, labels, inertia = oracle.lloyd(points, init, 8, weights, distance="cosine")
    np.testing.assert_allclose(model.cluster_centers_, centers, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(inertia, rel=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 5), log_scales=st.lists(st.integers(-30, 30), min_size=1))
def test_rows_scaled_by_positive_factors_give_the_same_fit(seed: int, k: int, log_scales: list[int]) -> None:
    # k-means++ draws by the cosine cost, which ignores lengths: the same rows are picked
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(40, 4))
    factors = 2.0 ** np.resize(np.asarray(log_scales), 40) * rng.uniform(0.5, 2.0, 40)
    a = KMeans(k, distance="cosine", seed=seed, max_iter=5, tol=0).fit(points)
    b = KMeans(k, distance="cosine", seed=seed, max_iter=5, tol=0).fit(points * factors[:, None])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-9, atol=1e-12)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-9, abs=1e-12)


def test_zero_rows_are_refused_before_fitting() -> None:
    points, _ = _data(0, 50, 3, 1)
    points[7] = 0.0
    with pytest.raises(ValidationError, match=r"undefined for all-zero rows: 1 row\(s\) are zero \(first at row 7\)"):
        KMeans(2, distance="cosine", seed=0).fit(points)
    model = KMeans(2, distance="cosine", seed=0).fit(points[8:])
    with pytest.raises(ValidationError, match=r"all-zero rows"):
        model.predict(points[:8])


def test_a_zero_start_center_has_cosine_zero_and_moves_in_the_first_update() -> None:
    points = np.array([[1.0, 0.0], [2.0, 0.1], [-1.0, 0.0], [-3.0, -0.2]])
    labels, costs = Cosine().assign(points, np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert labels.tolist() == [0, 0, 1, 1]  # similarity 0 beats the negative ones
    np.testing.assert_allclose(costs[2:], 1.0)
    model = KMeans(2, distance="cosine", init=np.array([[1.0, 0.0], [0.0, 0.0]]), max_iter=2, tol=0).fit(points)
    np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0)


def test_directions_that_cancel_keep_the_old_center() -> None:
    # One cluster holds two opposite rows of equal weight: its mean direction is zero.
    update = SphericalMean()
    points = np.array([[1.0, 0.0], [-2.0, 0.0], [0.0, 3.0]])
    block = Block(points, np.ones(3), 0)
    summary = update.partial(block, np.array([0, 0, 1]), 2, None)
    old = np.array([[0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(update.finalize(summary, old, None), [[0.0, 1.0], [0.0, 1.0]])


def test_fused_pass_equals_the_generic_one_and_keeps_the_norms() -> None:
    points, centers = _data(4, 500, 20, 6, np.float32)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, 500)
    block = Block(points, weights, 0)
    memory: dict[int, Any] = {}
    (sums, wsum), inertia, _ = COSINE.update.fused_partial(COSINE.assign, block, centers, None, memory=memory)
    labels, costs = COSINE.assign.assign(points, centers)
    want_sums, want_w = COSINE.update.partial(block, labels, 6, None)
    np.testing.assert_array_equal(sums, want_sums)
    np.testing.assert_array_equal(wsum, want_w)
    assert inertia == pytest.approx(float(np.dot(weights, costs)), rel=1e-13)
    assert isinstance(memory[0], CosineBounds)
    np.testing.assert_allclose(memory[0].norms, np.linalg.norm(points.astype(np.float64), axis=1), rtol=1e-15)

    class Redefined(Cosine):  # a subclass may redefine assign, which the fused pass would bypass
        pass

    assert COSINE.update.fused_partial(Redefined(), block, centers, None) is None


@pytest.mark.parametrize("init", ["random", "k-means++", "k-means||", "per-partition"])
def test_every_initializer_seeds_with_the_cosine_cost(init: str) -> None:
    rng = np.random.default_rng(8)
    directions = np.eye(4) * 5
    points = directions[rng.integers(0, 4, 400)] + rng.normal(size=(400, 4))
    points *= rng.uniform(0.5, 20.0, size=(400, 1))
    model = KMeans(4, distance="cosine", init=init, seed=3).fit(points)
    assert model.cluster_centers_.shape == (4, 4)
    # four well-separated directions: each center points along one axis
    assert sorted(np.argmax(np.abs(model.cluster_centers_), axis=1).tolist()) == [0, 1, 2, 3]
    assert model.inertia_ == pytest.approx(oracle.inertia(points, model.cluster_centers_, distance="cosine"))


def test_similarities_fall_back_to_exact_when_blas_could_overflow() -> None:
    points = np.array([[3e38, 3e38], [1.0, -1.0]], dtype=np.float32)
    unit = unit_centers(np.array([[1.0, 1.0], [1.0, -1.0]]))
    labels, sims = similarities(points, unit, np.linalg.norm(points.astype(np.float64), axis=1))
    assert labels.tolist() == [0, 1]
    assert np.isfinite(sims).all()


def _bounded_passes(points: np.ndarray, centers: np.ndarray, weights: np.ndarray, passes: int, step: float) -> int:
    # Passes of the bounded fused pass (one memory) equal the generic assignment and sums bit for bit,
    # while the centers move by their spherical update plus a seeded jitter of relative size ``step``.
    rng = np.random.default_rng(1)
    block = Block(points, weights, 0)
    memory: dict[int, Any] = {}
    k = centers.shape[0]
    kept = 0
    for _ in range(passes):
        (sums, wsum), inertia, _ = COSINE.update.fused_partial(COSINE.assign, block, centers, None, memory=memory)
        labels, costs = COSINE.assign.assign(points, centers)
        np.testing.assert_array_equal(memory[0].labels, labels)
        want_sums, want_w = COSINE.update.partial(block, labels, k, None)
        want_inertia = float(np.dot(weights, costs))
        (unbounded_sums, _), unbounded_inertia, _ = COSINE.update.fused_partial(COSINE.assign, block, centers, None)
        assert inertia == unbounded_inertia  # the pass without memory, bit for bit
        np.testing.assert_array_equal(sums, unbounded_sums)
        np.testing.assert_array_equal(sums, want_sums)
        np.testing.assert_array_equal(wsum, want_w)
        assert inertia == pytest.approx(want_inertia, rel=1e-13)
        kept += memory[0].kept
        centers = COSINE.update.finalize((sums, wsum), centers, None)
        centers = centers + step * rng.normal(size=centers.shape) * np.linalg.norm(centers, axis=1, keepdims=True)
    return kept


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("step", [0.0, 1e-12, 1e-3, 0.3])
def test_bounded_cosine_passes_equal_the_generic_pass(dtype: type, step: float) -> None:
    rng = np.random.default_rng(5)
    directions = rng.normal(size=(8, 40))
    points = (directions[rng.integers(0, 8, 3000)] + 0.6 * rng.normal(size=(3000, 40))).astype(dtype)
    points *= rng.uniform(0.01, 100.0, size=(3000, 1)).astype(dtype)  # cosines do not see the norms
    centers = points[:8].astype(np.float64) + 0.1
    kept = _bounded_passes(points, centers, rng.uniform(0.5, 2.0, 3000), 8, step)
    if step < 0.1:  # the bounds settle rows, so the test exercises them (big jumps leave none)
        assert kept > 3000


def test_bounded_cosine_passes_with_tied_and_duplicated_centers() -> None:
    # Duplicated centers tie exactly (the lowest index wins) and rows on the bisector of two
    # centers tie too: no bound may settle a tie the other way.
    rng = np.random.default_rng(6)
    base = rng.normal(size=(5, 16))
    centers = np.concatenate([base, base[:2], base[:1] * 3.0])  # duplicates, and one scaled copy (same unit vector)
    mid = (base[0] / np.linalg.norm(base[0]) + base[1] / np.linalg.norm(base[1]))[None, :]
    points = np.concatenate([rng.normal(size=(2000, 16)) + base[rng.integers(0, 5, 2000)], np.repeat(mid, 50, axis=0)])
    assert _bounded_passes(points, centers, np.ones(points.shape[0]), 6, 0.0) > 0
    assert _bounded_passes(points.astype(np.float32), centers, np.ones(points.shape[0]), 6, 1e-9) > 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 12),
    d=st.sampled_from([2, 5, 33]),
    f32=st.booleans(),
)
def test_bounded_cosine_passes_property(seed: int, k: int, d: int, f32: bool) -> None:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(300, d)) + rng.normal(size=(1, d)) * rng.uniform(0, 5)  # offset: narrow cones
    if f32:
        points = points.astype(np.float32)
    centers = rng.normal(size=(k, d))
    _bounded_passes(points, centers, rng.uniform(0.1, 3.0, 300), 5, float(rng.choice([0.0, 1e-6, 0.05])))
