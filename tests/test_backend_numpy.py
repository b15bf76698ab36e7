"""The NumPy backend: blocks, map_reduce and compress()."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmeans.backends.numpy import NumPyBackend, NumPyDataset, compress_rows
from kmeans.data import raccoon_path
from kmeans.protocols import Dataset
from tests import oracle


def test_dataset_satisfies_the_protocol() -> None:
    assert isinstance(NumPyDataset(np.zeros((3, 2))), Dataset)


@pytest.mark.parametrize("block_rows", [1, 3, 10, 100])
def test_blocks_cover_every_row_once_with_global_starts(block_rows: int) -> None:
    X = np.arange(20.0).reshape(10, 2)
    blocks = NumPyDataset(X, block_rows=block_rows).local_blocks()
    assert [b.start for b in blocks] == list(range(0, 10, block_rows))
    np.testing.assert_array_equal(np.concatenate([b.points for b in blocks]), X)
    np.testing.assert_array_equal(np.concatenate([b.row_indices() for b in blocks]), np.arange(10))


def test_blocks_are_views_not_copies() -> None:
    X = np.zeros((100, 2))
    assert all(np.shares_memory(b.points, X) for b in NumPyDataset(X, block_rows=30).local_blocks())


def test_unit_weights_cost_no_memory() -> None:
    (block,) = NumPyDataset(np.zeros((1000, 2))).local_blocks()
    assert block.weights.strides == (0,)
    assert block.weights.tolist() == [1.0] * 1000


def test_map_reduce_merges_in_block_order_with_threads() -> None:
    ds = NumPyDataset(np.arange(50.0)[:, None], block_rows=3, n_threads=2)
    assert ds.map_reduce(lambda b: [b.start], lambda a, b: a + b) == list(range(0, 50, 3))


def test_total_weight_and_shape() -> None:
    ds = NumPyDataset(np.zeros((4, 3), dtype=np.float32), np.array([1.0, 2.0, 0.0, 0.5]))
    assert (ds.n_rows, ds.n_features, ds.total_weight, ds.dtype) == (4, 3, 3.5, np.float32)
    assert NumPyDataset(np.zeros((4, 3))).total_weight == 4.0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_backend_dataset_keeps_float32_and_converts_integers_to_float64(dtype: type) -> None:
    ds = NumPyBackend().dataset(np.ones((5, 3), dtype=dtype))
    assert ds.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert ds.integer_valued == (np.dtype(dtype).kind in "iu")


def test_backend_dataset_flattens_an_image() -> None:
    img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    ds = NumPyBackend().dataset(img)
    assert (ds.n_rows, ds.n_features) == (8, 3)
    np.testing.assert_array_equal(ds.points, img.reshape(8, 3))


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float64])
def test_compress_matches_brute_force(dtype: type) -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(-3 if dtype != np.uint8 else 0, 4, size=(500, 3)).astype(dtype)
    w = rng.uniform(0.0, 2.0, 500)
    rows, weights, inverse = compress_rows(X, w)
    want_rows, want_weights = oracle.compress(X, w)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(weights, want_weights, rtol=1e-12)
    np.testing.assert_array_equal(rows[inverse], X)


def test_compressed_rows_are_in_ascending_lexicographic_order() -> None:
    X = np.array([[2, 0], [1, 9], [1, 0], [2, 0], [0, 5]], dtype=np.uint8)
    ds = NumPyBackend().dataset(X).compress()
    assert ds.points.tolist() == [[0.0, 5.0], [1.0, 0.0], [1.0, 9.0], [2.0, 0.0]]
    assert ds.weights is not None and ds.weights.tolist() == [1.0, 1.0, 1.0, 2.0]
    assert ds.distinct and ds.compress() is ds


def test_compress_sums_weights_of_identical_rows() -> None:
    X = np.array([[0.5, 1.0], [0.5, 1.0], [0.25, 1.0]])
    ds = NumPyBackend().dataset(X, np.array([1.5, 2.0, 4.0])).compress()
    assert ds.points.tolist() == [[0.25, 1.0], [0.5, 1.0]]
    assert ds.weights is not None and ds.weights.tolist() == [4.0, 3.5]
    assert ds.inverse is not None and ds.inverse.tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    "X",
    [
        np.array([[-(2**62)], [2**62], [0], [2**62]], dtype=np.int64),
        np.array([[2**63 + 5, 1], [3, 2], [2**63 + 5, 1]], dtype=np.uint64),
        np.array([[np.iinfo(np.int64).min, 0], [np.iinfo(np.int64).max, 0], [0, 0]], dtype=np.int64),
    ],
)
def test_compress_integers_whose_range_overflows_int64_stays_sorted_and_exact(X: np.ndarray) -> None:
    # Regression: value spans were computed in int64 and wrapped, giving unsorted rows.
    rows, weights, inverse = compress_rows(X, None)
    want_rows, want_weights = oracle.compress(X)
    assert rows.tolist() == want_rows.tolist()
    assert weights.tolist() == want_weights.tolist()
    assert rows[inverse].tolist() == X.tolist()


def test_compress_a_boolean_array() -> None:
    X = np.array([[True, False], [False, False], [True, False]])
    rows, weights, _ = compress_rows(X, None)
    assert rows.tolist() == [[False, False], [True, False]] and weights.tolist() == [1.0, 2.0]


def test_compress_raccoon_to_its_distinct_colors() -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(raccoon_path()).convert("RGB"))
    ds = NumPyBackend().dataset(pixels)
    assert ds.n_rows == 786_432
    small = ds.compress()
    assert small.n_rows == 134_105
    assert small.total_weight == 786_432.0
    assert small.inverse is not None
    np.testing.assert_array_equal(small.points[small.inverse], pixels.reshape(-1, 3))
    keys = small.points @ np.array([65536.0, 256.0, 1.0])
    assert (np.diff(keys) > 0).all()  # strictly ascending lexicographic order


def test_fit_labels_map_back_to_uncompressed_rows() -> None:
    from kmeans import KMeans

    X = np.array([[0, 0], [9, 9], [0, 0], [9, 8]], dtype=np.uint8)
    model = KMeans(2, init=np.array([[0.0, 0.0], [9.0, 9.0]]), seed=0).fit(X)
    assert model.labels_.tolist() == [0, 1, 0, 1]


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64]),
    n=st.integers(1, 300),
    d=st.integers(1, 4),
    spread=st.sampled_from([1, 3, 200, 70_000]),
    seed=st.integers(0, 2**16),
)
def test_compress_integer_rows_matches_brute_force_on_every_path(
    dtype: type, n: int, d: int, spread: int, seed: int
) -> None:
    # Small spans go through the direct-address table, large ones through a sort of the
    # packed keys; both must give np.unique's rows, sums and inverse.
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    lo = max(int(info.min), -spread)
    hi = min(int(info.max), spread)
    X = rng.integers(lo, hi + 1, size=(n, d)).astype(dtype)
    w = rng.uniform(0.0, 2.0, n)
    rows, weights, inverse = compress_rows(X, w)
    want_rows, want_weights = oracle.compress(X, w)
    assert rows.dtype == X.dtype
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(weights, want_weights, rtol=1e-12)
    np.testing.assert_array_equal(rows[inverse], X)


def test_compress_uses_the_direct_address_table_for_8_bit_rgb(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 24-bit RGB cube is within the table's span: no sort of the rows or keys.
    def no_unique(*args: object, **kwargs: object) -> None:
        raise AssertionError("np.unique called on the table path")

    X = np.array([[255, 0, 7], [0, 0, 0], [255, 0, 7], [255, 255, 255]], dtype=np.uint8)
    monkeypatch.setattr(np, "unique", no_unique)
    rows, weights, inverse = compress_rows(X, None)
    assert rows.tolist() == [[0, 0, 0], [255, 0, 7], [255, 255, 255]]
    assert weights.tolist() == [1.0, 2.0, 1.0]
    assert inverse.tolist() == [1, 0, 1, 2]


@pytest.mark.parametrize(("n", "threads"), [(1000, 2), (100_000, 2), (1_000_000, 2), (1_000_000, 3), (3_000_000, 1)])
def test_default_blocks_are_capped_equal_and_independent_of_threads(n: int, threads: int) -> None:
    # Regression: one block per thread made 10M-row blocks, and a 20M-row fit's peak
    # memory 3.4x its input (the per-block temporaries of k-means++); the goal is <= 2x.
    from kmeans.backends.numpy import GRID_BLOCKS, MAX_BLOCK_ROWS

    X = np.broadcast_to(np.float32(0.5), (n, 3))
    ds = NumPyDataset(X, n_threads=threads)
    sizes = [b.n_rows for b in ds.local_blocks()]
    assert sum(sizes) == n
    assert max(sizes) <= max(4096, MAX_BLOCK_ROWS)
    # the grid follows the row count only (issue 14: bit-identical for any thread count)
    assert sizes == [b.n_rows for b in NumPyDataset(X, n_threads=1).local_blocks()]
    if n >= 4096 * GRID_BLOCKS:
        assert len(sizes) % GRID_BLOCKS == 0
        assert max(sizes) - min(sizes) < len(sizes)  # equal up to rounding
