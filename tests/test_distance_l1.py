"""Manhattan assignment and the exact weighted-median update (k-medians)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from kmeans._types import Block
from kmeans.backends.numpy import NumPyDataset
from kmeans.distance.l1 import L1, Manhattan, MedianState, WeightedMedian
from kmeans.protocols import Refine
from tests import oracle


def run_median(
    points: np.ndarray,
    weights: np.ndarray | None,
    labels: np.ndarray,
    old: np.ndarray,
    *,
    block_rows: int = 1 << 20,
    update: WeightedMedian | None = None,
) -> tuple[np.ndarray, int]:
    """Drive ``WeightedMedian`` to completion as the driver does; returns ``(centers, passes)``."""
    update = update or WeightedMedian()
    k = old.shape[0]
    ds = NumPyDataset(points, weights, block_rows=block_rows)
    state: Any = update.plan(ds, k)
    passes = 0
    while True:
        passes += 1
        summary = ds.map_reduce(
            lambda b, state=state: update.partial(b, labels[b.start : b.start + b.n_rows], k, state), update.merge
        )
        result = update.finalize(summary, old, state)
        if not isinstance(result, Refine):
            return np.asarray(result), passes
        state = result.state


def brute_medians(points: np.ndarray, weights: np.ndarray | None, labels: np.ndarray, old: np.ndarray) -> np.ndarray:
    w = np.ones(points.shape[0]) if weights is None else weights
    return oracle.update(points, w, labels, old, "l1")


def test_manhattan_assign_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    points, centers = rng.normal(size=(700, 3)), rng.normal(size=(9, 3))
    labels, costs = Manhattan().assign(points, centers)
    want_labels, want_costs = oracle.assign(points, centers, "l1")
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(costs, want_costs, rtol=1e-13)


def test_manhattan_tie_goes_to_lowest_center_index() -> None:
    points = np.array([[0.0, 0.0], [3.0, 3.0]])
    centers = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [3.0, 3.0], [3.0, 3.0]])
    labels, costs = Manhattan().assign(points, centers)
    assert labels.tolist() == [0, 3]
    assert costs.tolist() == [2.0, 0.0]


def test_manhattan_float32_costs_are_exact_float64_and_non_negative() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 4)).astype(np.float32)
    centers = rng.normal(size=(5, 4))
    labels, costs = Manhattan().assign(points, centers)
    assert costs.dtype == np.float64 and (costs >= 0).all()
    np.testing.assert_array_equal(labels, oracle.assign(points, centers, "l1")[0])
    np.testing.assert_allclose(costs, oracle.assign(points, centers, "l1")[1], rtol=1e-14)


def test_manhattan_shift_and_pairwise() -> None:
    m = Manhattan()
    assert m.shift(np.array([[0.0, 0.0]]), np.array([[3.0, -4.0]])).tolist() == [7.0]
    pts, cs = np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    assert m.pairwise(pts, cs).tolist() == [[2.0, 0.0], [1.0, 3.0]]


def test_lower_median_of_an_even_count_is_the_lower_middle_value() -> None:
    points = np.array([[1.0], [2.0], [3.0], [4.0]])
    got, _ = run_median(points, None, np.zeros(4, dtype=np.intp), np.zeros((1, 1)))
    assert got.tolist() == [[2.0]]


def test_weighted_median_hand_computed() -> None:
    # Cumulative weights 1, 2, 10 of total 10: 5 is reached at the value 7.
    points = np.array([[5.0], [-1.0], [7.0]])
    weights = np.array([1.0, 1.0, 8.0])
    got, _ = run_median(points, weights, np.zeros(3, dtype=np.intp), np.zeros((1, 1)))
    assert got.tolist() == [[7.0]]


def test_weight_exactly_half_stops_at_that_value() -> None:
    points = np.array([[0.0], [10.0], [20.0]])
    got, _ = run_median(points, np.array([2.0, 1.0, 1.0]), np.zeros(3, dtype=np.intp), np.zeros((1, 1)))
    assert got.tolist() == [[0.0]]


def test_median_is_per_coordinate_and_per_cluster() -> None:
    points = np.array([[0.0, 9.0], [1.0, 8.0], [2.0, 7.0], [100.0, -1.0], [300.0, -3.0], [200.0, -2.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    got, _ = run_median(points, None, labels, np.zeros((2, 2)))
    assert got.tolist() == [[1.0, 8.0], [200.0, -2.0]]


def test_zero_weight_rows_never_vote() -> None:
    points = np.array([[1.0], [2.0], [3.0], [-1000.0], [-2000.0]])
    weights = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    got, _ = run_median(points, weights, np.zeros(5, dtype=np.intp), np.zeros((1, 1)))
    assert got.tolist() == [[2.0]]


def test_empty_cluster_keeps_its_old_center() -> None:
    points = np.array([[1.0], [2.0]])
    got, _ = run_median(points, None, np.zeros(2, dtype=np.intp), np.array([[0.0], [42.0]]))
    assert got.tolist() == [[1.0], [42.0]]


def test_float_median_is_exact_after_several_refinement_passes() -> None:
    # Values packed far below the bin width of the first pass force refinement.
    rng = np.random.default_rng(2)
    points = np.concatenate([rng.normal(size=(2000, 2)) * 1e-9, [[1e6, -1e6], [-1e6, 1e6]]])
    weights = rng.uniform(0.1, 3.0, points.shape[0])
    labels = (rng.uniform(size=points.shape[0]) < 0.5).astype(np.intp)
    got, passes = run_median(points, weights, labels, np.zeros((2, 2)))
    assert passes > 2
    np.testing.assert_array_equal(got, brute_medians(points, weights, labels, np.zeros((2, 2))))


def test_median_of_integer_pixels_takes_one_pass() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(5000, 3)).astype(np.float32)
    pixels[:3] = [[0, 0, 0], [255, 255, 255], [0, 255, 0]]  # full uint8 range on every channel
    labels = rng.integers(0, 4, size=5000).astype(np.intp)
    weights = rng.integers(1, 5, size=5000).astype(np.float64)
    got, passes = run_median(pixels, weights, labels, np.zeros((4, 3)))
    assert passes == 1
    np.testing.assert_array_equal(got, brute_medians(pixels, weights, labels, np.zeros((4, 3))))


def test_median_is_always_a_data_value_of_its_cluster() -> None:
    rng = np.random.default_rng(4)
    points = rng.normal(size=(301, 2))
    labels = rng.integers(0, 3, size=301).astype(np.intp)
    got, _ = run_median(points, None, labels, np.zeros((3, 2)))
    for j in range(3):
        for f in range(2):
            assert got[j, f] in points[labels == j, f]


@pytest.mark.parametrize("block_rows", [3, 7, 64, 1000])
def test_median_does_not_depend_on_block_layout(block_rows: int) -> None:
    rng = np.random.default_rng(5)
    points = rng.standard_t(df=2, size=(600, 3))
    weights = rng.integers(1, 4, size=600).astype(np.float64)
    labels = rng.integers(0, 5, size=600).astype(np.intp)
    got, _ = run_median(points, weights, labels, np.zeros((5, 3)), block_rows=block_rows)
    np.testing.assert_array_equal(got, brute_medians(points, weights, labels, np.zeros((5, 3))))


def test_merge_of_partials_in_any_grouping_gives_the_same_summary() -> None:
    rng = np.random.default_rng(6)
    points = rng.integers(0, 50, size=(400, 2)).astype(np.float64)
    weights = rng.integers(1, 4, size=400).astype(np.float64)
    labels = rng.integers(0, 3, size=400).astype(np.intp)
    update = WeightedMedian()
    state: MedianState = update.plan(NumPyDataset(points, weights), 3)
    parts = [
        update.partial(Block(points[s : s + 50], weights[s : s + 50], s), labels[s : s + 50], 3, state)
        for s in range(0, 400, 50)
    ]
    left = functools.reduce(update.merge, parts)
    right = functools.reduce(lambda a, b: update.merge(b, a), reversed(parts))
    tree = update.merge(
        update.merge(functools.reduce(update.merge, parts[:3]), functools.reduce(update.merge, parts[3:5])),
        functools.reduce(update.merge, parts[5:]),
    )
    whole = update.partial(Block(points, weights), labels, 3, state)
    for s in (left, right, tree):
        for field in ("hist", "bin_min", "bin_max", "below", "total"):
            np.testing.assert_array_equal(getattr(s, field), getattr(whole, field))


def test_summary_size_does_not_grow_with_the_number_of_rows() -> None:
    update = WeightedMedian()
    sizes = []
    for n in (100, 10_000):
        points = np.random.default_rng(n).normal(size=(n, 2))
        state = update.plan(NumPyDataset(points), 3)
        s = update.partial(Block(points, np.ones(n)), np.zeros(n, dtype=np.intp), 3, state)
        sizes.append(sum(getattr(s, f).nbytes for f in ("hist", "bin_min", "bin_max", "below", "total")))
    assert sizes[0] == sizes[1]


def test_l1_pairs_manhattan_with_the_median() -> None:
    assert isinstance(L1.assign, Manhattan)
    assert isinstance(L1.update, WeightedMedian)
    assert L1.name == "l1"


@pytest.mark.parametrize(
    "values",
    [
        [-1.7e308, 1.7e308, 5.0, 6.0, 7.0],  # the range overflows to inf
        [np.finfo(np.float64).max, -np.finfo(np.float64).max, 0.0, 1.0],
        [5e-324, 0.0, 1e-323, 1.5e-323, -5e-324],  # subnormals
        [1.0, 1.0 + 2**-52, 1.0 + 2**-51, 1.0 + 3 * 2**-52],  # adjacent doubles
    ],
    ids=["overflowing-range", "float-max", "subnormal", "adjacent"],
)
def test_median_is_exact_at_the_edges_of_float64(values: list[float]) -> None:
    # Regression: a range wider than the largest double made the bin width inf and crashed.
    points = np.array(values)[:, None]
    for weights in (np.ones(len(values)), np.arange(1.0, len(values) + 1)):
        got, _ = run_median(points, weights, np.zeros(len(values), dtype=np.intp), np.zeros((1, 1)))
        assert got[0, 0] == oracle.lower_weighted_median(points[:, 0], weights)


def test_median_of_values_spread_over_every_binade_is_exact_in_few_passes() -> None:
    # Regression: linear bins peel off only a few binades per pass, so values spread over
    # 2**-1074 .. 2**1023 exhausted MAX_PASSES and returned a wrong (zero) median.
    values = np.ldexp(1.0, np.arange(-1074, 1024, 3))
    points = np.concatenate([values, -values[::2]])[:, None]
    rng = np.random.default_rng(7)
    for _ in range(3):
        weights = rng.integers(1, 5, size=points.shape[0]).astype(np.float64)
        got, passes = run_median(points, weights, np.zeros(points.shape[0], dtype=np.intp), np.zeros((1, 1)))
        assert got[0, 0] == oracle.lower_weighted_median(points[:, 0], weights)
        assert passes <= 16
