"""k-means++ at scale: the grouped seeding state, exact gains and the canonical choice among candidates."""

from __future__ import annotations

import warnings
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kmeans._kernels.seeding import SeedingState, exact_parts, sq_gaps
from kmeans._types import Block
from kmeans.backends.numpy import NumPyDataset
from kmeans.dataset import BlockDataset
from kmeans.distance.l2 import L2
from kmeans.init.kmeans_plus_plus import KMeansPlusPlus, best_candidate
from tests.test_init import _NoLocalBlocks


def _brute(x: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # float64, feature order, ties to the older center: what the seeding state must hold
    d = np.zeros((x.shape[0], chosen.shape[0]))
    for j in range(x.shape[1]):
        t = x[:, j, None].astype(np.float64) - chosen[None, :, j]
        d += t * t
    return d.min(axis=1), d.argmin(axis=1)


def _run(x: np.ndarray, chosen: np.ndarray) -> SeedingState:
    state = SeedingState(x.shape[0], chosen.shape[0])
    for j in range(chosen.shape[0]):
        state.add_center(x, chosen[j], sq_gaps(chosen, j, chosen[j : j + 1])[:, 0])
    return state


def _check_groups(state: SeedingState, x: np.ndarray, chosen: np.ndarray) -> None:
    D, near = _brute(x, chosen)
    np.testing.assert_array_equal(state.D, D)
    np.testing.assert_array_equal(state.near, near)
    seen = []
    for a in range(state.n_groups):
        rows = state.pool[state.gstart[a] : state.gstart[a] + state.gcount[a]]
        assert (near[rows] == a).all()
        assert state.gmax[a] == (D[rows].max() if rows.size else 0.0)
        seen.append(rows)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(x.shape[0]))


def test_groups_hold_each_row_once_with_its_exact_cost_and_radius() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.3, (400, 2)) for c in rng.uniform(-20, 20, (12, 2))]).astype(np.float32)
    chosen = x[rng.choice(x.shape[0], 60, replace=False)].astype(np.float64)
    _check_groups(_run(x, chosen), x, chosen)  # 60 steps on 4800 rows: the pool compacts a few times


@settings(max_examples=25)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 3)), elements=st.integers(-4, 4).map(float)),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_the_grouped_state_equals_brute_force_with_duplicates_and_ties(x: np.ndarray, k: int, seed: int) -> None:
    chosen = x[np.random.default_rng(seed).integers(0, x.shape[0], k)]  # repeats and equidistant rows
    _check_groups(_run(x, chosen), x, chosen)


@given(st.lists(st.floats(0, 1e300) | st.sampled_from([0.0, 1.0, 2.0**-1074, 2.0**53]), max_size=60))
def test_exact_parts_sum_exactly(terms: list[float]) -> None:
    parts = exact_parts(np.array(terms, dtype=np.float64))
    assert sum(map(Fraction, parts.tolist()), Fraction(0)) == sum(map(Fraction, terms), Fraction(0))


def test_gains_equal_the_brute_force_terms_exactly_and_within_the_bound() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (3000, 3))
    w = np.asarray(rng.uniform(0.1, 2.0, x.shape[0]), dtype=np.float64)
    chosen = x[:25]
    state = _run(x, chosen)
    cands = x[100:111]
    cgap2 = sq_gaps(chosen, 25, cands)
    fast = state.gains(x, w, False, cands, cgap2)
    exact = state.exact_gains(x, w, False, cands, cgap2)
    D = state.D
    for q in range(cands.shape[0]):
        d2, _ = _brute(x, cands[q : q + 1])
        terms = w * (D - np.minimum(D, d2))
        want = sum(map(Fraction, terms.tolist()), Fraction(0))
        assert sum(map(Fraction, exact[q].tolist()), Fraction(0)) == want
        assert abs(Fraction(fast[q]) - want) <= Fraction(x.shape[0] * 2.0**-52) * want


def _sums_dataset(per_block: list[list[float]]) -> tuple[BlockDataset, Any, Any]:
    # A dataset whose blocks "have" the given gain terms per candidate (one term per block row).
    blocks = [Block(np.zeros((1, 1)), np.ones(1), s) for s in range(len(per_block))]
    ds = BlockDataset(blocks, BlockDataset.from_arrays(np.zeros((len(blocks), 1))).facts)

    def fast(block: Block) -> np.ndarray:
        return np.array(per_block[block.start], dtype=np.float64)

    def exact(block: Block, which: list[int]) -> list[np.ndarray]:
        return [exact_parts(np.array([per_block[block.start][q]])) for q in which]

    return ds, fast, exact


def test_a_tie_hidden_by_rounding_goes_to_the_lowest_index() -> None:
    # Candidate 0's terms 2^53, 1, 1 sum in float64 to 2^53 (1 is lost twice), candidate 1's to
    # 2^53 + 2: exactly they are equal, so candidate 0 (the lower index) wins.
    ds, fast, exact = _sums_dataset([[2.0**53, 2.0**53 + 2], [1.0, 0.0], [1.0, 0.0]])
    cands = np.array([[0.0], [1.0]])
    assert best_candidate(ds, cands, fast, exact) == 0


def test_an_order_rounding_inverts_is_decided_exactly() -> None:
    # Exactly, candidate 0 gains 2^53 + 3 and candidate 1 gains 2^53 + 2; in float64, 0 sums to 2^53.
    ds, fast, exact = _sums_dataset([[2.0**53, 2.0**53 + 2], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert best_candidate(ds, np.array([[0.0], [1.0]]), fast, exact) == 0
    ds, fast, exact = _sums_dataset([[2.0**53, 2.0**53 + 4], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert best_candidate(ds, np.array([[0.0], [1.0]]), fast, exact) == 1


def test_equal_candidate_rows_take_the_first_without_an_exact_pass() -> None:
    ds, fast, _ = _sums_dataset([[5.0, 5.0, 1.0]])

    def no_exact(block: Block, which: list[int]) -> list[np.ndarray]:
        raise AssertionError("equal rows need no exact sums")

    assert best_candidate(ds, np.array([[2.0], [2.0], [3.0]]), fast, no_exact) == 0


@settings(max_examples=15)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.booleans())
def test_compiled_and_generic_paths_agree_on_integer_data_full_of_ties(seed: int, d: int, weighted: bool) -> None:
    # Integer rows repeat and their gains tie exactly: the choice is the exact one on both paths.
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 6, (300, d)).astype(np.float64)
    w = np.asarray(rng.integers(1, 4, X.shape[0]), dtype=np.float64) if weighted else None
    ds = NumPyDataset(X, w, block_rows=70)
    k = min(12, np.unique(X, axis=0).shape[0])
    fast = KMeansPlusPlus().init(ds, k, L2.assign, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generic path warns about its passes
        slow = KMeansPlusPlus().init(_NoLocalBlocks(ds), k, L2.assign, seed)  # type: ignore[arg-type]
    np.testing.assert_array_equal(fast, slow)
