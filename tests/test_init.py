"""Initializers: random, k-means++ and explicit centers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmeans.backends.numpy import NumPyDataset
from kmeans.distance.l1 import L1
from kmeans.distance.l2 import L2
from kmeans.errors import ValidationError
from kmeans.init._sampling import first_distinct
from kmeans.init.explicit import ExplicitCenters
from kmeans.init.kmeans_plus_plus import KMeansPlusPlus
from kmeans.init.random import Random

INITIALIZERS = [Random(), KMeansPlusPlus()]
LAYOUTS = [(1 << 20, 1), (5, 1), (37, 1), (37, 2), (500, 2)]


def _blobs(seed: int = 0, n: int = 900, d: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-20, 20, size=(6, d))
    return centers[rng.integers(0, 6, n)] + rng.normal(size=(n, d))


def _rows_of(points: np.ndarray, centers: np.ndarray) -> list[int]:
    """Index of the (first) data row equal to each center; fails if a center is not a row."""
    out = []
    for c in centers:
        hits = np.flatnonzero((points == c).all(axis=1))
        assert hits.size, f"{c} is not a data row"
        out.append(int(hits[0]))
    return out


@pytest.mark.parametrize("init", INITIALIZERS, ids=lambda i: i.name)
def test_same_seed_gives_the_same_centers(init: object) -> None:
    ds = NumPyDataset(_blobs())
    a = init.init(ds, 5, L2.assign, 123)  # type: ignore[attr-defined]
    b = init.init(ds, 5, L2.assign, 123)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", INITIALIZERS, ids=lambda i: i.name)
def test_different_seeds_give_different_centers(init: object) -> None:
    ds = NumPyDataset(_blobs())
    a = init.init(ds, 5, L2.assign, 1)  # type: ignore[attr-defined]
    b = init.init(ds, 5, L2.assign, 2)  # type: ignore[attr-defined]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("init", INITIALIZERS, ids=lambda i: i.name)
@pytest.mark.parametrize(("block_rows", "n_threads"), LAYOUTS)
def test_centers_do_not_depend_on_block_layout(init: object, block_rows: int, n_threads: int) -> None:
    X = _blobs(1)
    w = np.random.default_rng(1).uniform(0.1, 2.0, X.shape[0])
    ref = init.init(NumPyDataset(X, w), 6, L2.assign, 7)  # type: ignore[attr-defined]
    got = init.init(NumPyDataset(X, w, block_rows=block_rows, n_threads=n_threads), 6, L2.assign, 7)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("init", INITIALIZERS, ids=lambda i: i.name)
def test_centers_are_distinct_data_rows_as_float64(init: object) -> None:
    X = _blobs(2).astype(np.float32)
    centers = init.init(NumPyDataset(X), 6, L2.assign, 3)  # type: ignore[attr-defined]
    assert centers.shape == (6, 3) and centers.dtype == np.float64
    assert np.unique(centers, axis=0).shape[0] == 6
    _rows_of(X.astype(np.float64), centers)


@pytest.mark.parametrize("init", INITIALIZERS, ids=lambda i: i.name)
def test_zero_weight_rows_are_never_chosen(init: object) -> None:
    X = _blobs(3)
    w = np.zeros(X.shape[0])
    allowed = np.arange(0, X.shape[0], 9)
    w[allowed] = 1.0
    for seed in range(5):
        centers = init.init(NumPyDataset(X, w, block_rows=100), 5, L2.assign, seed)  # type: ignore[attr-defined]
        assert set(_rows_of(X, centers)) <= set(allowed.tolist())


def test_random_skips_duplicate_rows_to_find_k_distinct() -> None:
    X = np.repeat(np.array([[0.0], [1.0], [2.0]]), [500, 1, 1], axis=0)
    for seed in range(10):
        centers = Random().init(NumPyDataset(X, block_rows=64), 3, L2.assign, seed)
        assert sorted(centers[:, 0].tolist()) == [0.0, 1.0, 2.0]


def test_random_raises_when_there_are_too_few_distinct_rows() -> None:
    X = np.repeat(np.array([[0.0], [1.0]]), 10, axis=0)
    with pytest.raises(ValidationError, match=r"n_clusters=3 is larger than the number of distinct rows"):
        Random().init(NumPyDataset(X), 3, L2.assign, 0)


def test_random_draws_rows_in_proportion_to_weight() -> None:
    X = np.arange(4, dtype=np.float64)[:, None]
    w = np.array([1.0, 2.0, 3.0, 4.0])
    picks = np.array([Random().init(NumPyDataset(X, w), 1, L2.assign, s)[0, 0] for s in range(2000)])
    freq = np.bincount(picks.astype(int), minlength=4) / picks.size
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.045)  # about 4 standard deviations


def test_kmeans_plus_plus_spreads_centers_over_separated_blobs() -> None:
    rng = np.random.default_rng(4)
    blobs = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    X = blobs[np.repeat(np.arange(4), 200)] + rng.normal(size=(800, 2))
    for seed in range(5):
        centers = KMeansPlusPlus().init(NumPyDataset(X), 4, L2.assign, seed)
        nearest_blob = np.argmin(((centers[:, None, :] - blobs[None]) ** 2).sum(axis=2), axis=1)
        assert sorted(nearest_blob.tolist()) == [0, 1, 2, 3]


def test_kmeans_plus_plus_first_center_follows_the_weights() -> None:
    X = np.array([[0.0], [10.0], [20.0]])
    w = np.array([0.0, 1.0, 0.0])
    centers = KMeansPlusPlus().init(NumPyDataset(X, w), 1, L2.assign, 0)
    assert centers.tolist() == [[10.0]]


def test_kmeans_plus_plus_never_repeats_a_chosen_row() -> None:
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 1.0]]), [300, 2, 1], axis=0)
    centers = KMeansPlusPlus().init(NumPyDataset(X), 3, L2.assign, 5)
    assert np.unique(centers, axis=0).shape[0] == 3


def test_kmeans_plus_plus_raises_when_rows_run_out() -> None:
    X = np.repeat(np.array([[0.0], [1.0]]), 5, axis=0)
    with pytest.raises(ValidationError, match=r"k-means\+\+ found only 2 distinct rows"):
        KMeansPlusPlus().init(NumPyDataset(X), 3, L2.assign, 0)


def test_kmeans_plus_plus_works_with_the_l1_metric() -> None:
    X = _blobs(5)
    a = KMeansPlusPlus().init(NumPyDataset(X), 4, L1.assign, 9)
    b = KMeansPlusPlus().init(NumPyDataset(X, block_rows=50, n_threads=2), 4, L1.assign, 9)
    np.testing.assert_array_equal(a, b)
    _rows_of(X, a)


def test_explicit_centers_are_returned_as_a_float64_copy() -> None:
    given = np.array([[1, 2], [3, 4]], dtype=np.int32)
    init = ExplicitCenters(given)
    got = init.init(NumPyDataset(np.zeros((5, 2))), 2, L2.assign, 0)
    assert got.dtype == np.float64 and got.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    got[0, 0] = 99.0
    assert init.init(NumPyDataset(np.zeros((5, 2))), 2, L2.assign, 0)[0, 0] == 1.0


def test_explicit_centers_ignore_the_seed() -> None:
    init = ExplicitCenters([[0.5], [1.5]])
    ds = NumPyDataset(np.zeros((3, 1)))
    np.testing.assert_array_equal(init.init(ds, 2, L2.assign, 1), init.init(ds, 2, L2.assign, 2))


@pytest.mark.parametrize(
    ("centers", "k", "match"),
    [
        ([[0.0, 0.0]], 2, r"init has shape \(1, 2\); expected \(2, 2\)"),
        ([[0.0], [1.0]], 2, r"init has shape \(2, 1\); expected \(2, 2\)"),
        ([[0.0, np.nan], [1.0, 1.0]], 2, r"init contains NaN or infinite values"),
    ],
)
def test_explicit_centers_are_validated_against_the_data(centers: list[list[float]], k: int, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ExplicitCenters(centers).init(NumPyDataset(np.zeros((5, 2))), k, L2.assign, 0)


def test_kmeans_plus_plus_starts_better_than_random_on_average() -> None:
    from tests import oracle

    X = _blobs(6, n=600)
    ds = NumPyDataset(X)
    pp = np.mean([oracle.inertia(X, KMeansPlusPlus().init(ds, 6, L2.assign, s)) for s in range(10)])
    rnd = np.mean([oracle.inertia(X, Random().init(ds, 6, L2.assign, s)) for s in range(10)])
    assert pp < 0.7 * rnd


class _NoLocalBlocks:
    """A dataset that hides ``local_blocks``: k-means++ takes its generic (recomputing) path."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "local_blocks":
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.mark.parametrize(("d", "k", "weighted"), [(3, 40, False), (3, 7, True), (20, 25, True), (1, 60, False)])
def test_compiled_kmeans_plus_plus_picks_what_the_generic_path_picks(d: int, k: int, weighted: bool) -> None:
    import warnings

    from kmeans.backends.numpy import NumPyDataset
    from kmeans.distance.l2 import L2
    from kmeans.init.kmeans_plus_plus import KMeansPlusPlus

    rng = np.random.default_rng(d * k)
    X = np.vstack([rng.normal(size=(300, d)) + 8 * rng.normal(size=d) for _ in range(6)]).astype(np.float32)
    w = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    ds = NumPyDataset(X, w, block_rows=500)
    fast = KMeansPlusPlus().init(ds, k, L2.assign, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generic path warns about its passes
        slow = KMeansPlusPlus().init(_NoLocalBlocks(ds), k, L2.assign, 11)  # type: ignore[arg-type]
    np.testing.assert_array_equal(fast, slow)


def test_the_generic_kmeans_plus_plus_warning_points_at_the_callers_line() -> None:
    from kmeans.backends.numpy import NumPyDataset
    from kmeans.init.kmeans_plus_plus import KMeansPlusPlus

    ds = _NoLocalBlocks(NumPyDataset(np.arange(20.0).reshape(10, 2)))
    with pytest.warns(UserWarning, match="k-means\\+\\+ on this engine") as record:
        KMeansPlusPlus().init(ds, 3, L2.assign, 0)  # type: ignore[arg-type]
    assert record[0].filename == __file__


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 2.0**-1074]), min_size=2, max_size=2),
        max_size=1500,
    ),
    limit=st.integers(1, 2000),
)
def test_first_distinct_equals_the_first_occurrences_by_value(rows: list[list[float]], limit: int) -> None:
    # -0.0 equals 0.0; past the byte pass's budget one sort decides: the same indices either way.
    points = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    got = first_distinct(points, limit)
    if points.shape[0]:
        _, first = np.unique(points, axis=0, return_index=True)
        want = np.sort(first)[:limit]
    else:
        want = np.empty(0, dtype=np.intp)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.intp


def test_first_distinct_compares_rows_in_their_own_dtype() -> None:
    # Integers past 2**53 stay distinct (no float64 round trip); float32 -0.0 equals 0.0,
    # also in a non-contiguous view.
    big = np.array([[2**60], [2**60 + 1], [2**60]], dtype=np.int64)
    np.testing.assert_array_equal(first_distinct(big, 5), [0, 1])
    view = np.array([[1.0, -0.0], [1.0, 0.0], [1.0, 1.0]], dtype=np.float32)[:, ::-1]
    np.testing.assert_array_equal(first_distinct(view, 5), [0, 2])
