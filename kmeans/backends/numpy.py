"""The in-process engine: NumPy blocks over an in-memory array.

``map_reduce`` runs ``fn`` over contiguous row blocks (views, never copies), on a small
thread pool when ``n_threads > 1`` (NumPy releases the GIL in its kernels), and merges
the partial results in block order, so the result does not depend on thread timing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._blas import single_threaded_blas
from kmeans._kernels import pack_rows, small_int_ranges, unique_small_keys
from kmeans._types import Block, FitResult, FitSpec, Float64Array, FloatArray, IntArray
from kmeans._validation import check_points, check_weights
from kmeans.driver import fit_restarts
from kmeans.errors import ValidationError
from kmeans.protocols import AssignStep

T = TypeVar("T")

#: Largest default block (rows): bounds per-block temporaries.
MAX_BLOCK_ROWS = 1 << 18

#: The default grid has a multiple of this many blocks: as many as the most threads
#: ``n_threads=None`` uses, so they share the blocks evenly.
GRID_BLOCKS = 4

#: Keys of integer rows are packed into one int64 when the value ranges allow it.
_MAX_PACKED = 1 << 62


def _unit_weights(n: int) -> Float64Array:
    """Unit weights that cost no memory: a read-only broadcast of 1.0."""
    return np.broadcast_to(np.float64(1.0), (n,))


def _float_points(arr: NDArray[Any]) -> FloatArray:
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    return arr.astype(np.float64)


#: Packed keys spanning at most this many values are deduplicated through a
#: direct-address table (at most 64 MiB of int32; the whole 24-bit RGB cube fits), not a sort.
_TABLE_KEYS = 1 << 24


def _packed_keys(arr: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[Any], list[int], int] | None:
    """Row keys ``sum_j (x_j - min_j) * stride_j`` that sort like the rows, or None.

    Returns ``(keys, mins, strides, span)`` with every key in ``[0, span)``; ``mins`` is
    in ``arr``'s own dtype. Spans are computed with Python integers, so 64-bit ranges
    that overflow int64 are detected (and fall back to a row-wise sort) instead of wrapping.
    """
    small = arr.dtype.kind in "iu" and arr.dtype.itemsize <= 4
    if small:  # one compiled pass for every column's range (NumPy's axis-0 min/max is strided)
        lo, hi = small_int_ranges(arr)
        lows, highs = lo.tolist(), hi.tolist()
    else:
        mins_, maxs_ = arr.min(axis=0), arr.max(axis=0)
        lows, highs = [int(v) for v in mins_.tolist()], [int(v) for v in maxs_.tolist()]
    spans = [hi_ - lo_ + 1 for lo_, hi_ in zip(lows, highs, strict=True)]
    total = 1
    for s in spans:
        total *= s
    if total >= _MAX_PACKED:
        return None
    strides = [1] * arr.shape[1]
    for j in range(arr.shape[1] - 2, -1, -1):
        strides[j] = strides[j + 1] * spans[j + 1]
    if small:
        keys = pack_rows(arr, lo, np.asarray(strides, dtype=np.int64))
        return keys, lo.astype(arr.dtype), strides, total
    mins = mins_
    keys = np.zeros(arr.shape[0], dtype=np.int64)
    for j in range(arr.shape[1]):
        # Offsets from the minimum fit in int64 (span < 2**62); the int64 subtraction may
        # wrap for uint64 input, but modulo 2**64 it is still exact.
        keys += (arr[:, j].astype(np.int64) - mins[j : j + 1].astype(np.int64)) * strides[j]
    return keys, mins, strides, total


def compress_rows(arr: NDArray[Any], weights: Float64Array | None) -> tuple[NDArray[Any], Float64Array, IntArray]:
    """Fold identical rows: ``(unique rows ascending lexicographically, summed weights, inverse)``.

    Integer rows use a packed integer key (no row-wise comparison): keys of a small span
    (8-bit RGB) go through a direct-address table, larger spans through one 1-D sort.
    Float rows fall back to ``np.unique(axis=0)``.
    """
    packed = _packed_keys(arr) if arr.dtype.kind in "biu" and arr.shape[0] else None
    if packed is not None:
        keys, mins, strides, span = packed
        if span <= _TABLE_KEYS:
            uniq, inverse = unique_small_keys(keys, span)
        else:
            uniq, inverse = np.unique(keys, return_inverse=True)
        rows = np.empty((uniq.shape[0], arr.shape[1]), dtype=arr.dtype)
        rest = uniq.copy()
        for j in range(arr.shape[1]):
            # offset + min in the input dtype: wraps back to the exact value modulo 2**bits
            rows[:, j] = (rest // strides[j]).astype(arr.dtype) + mins[j : j + 1]
            rest %= strides[j]
    else:
        rows, inverse = np.unique(arr, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp, copy=False)
    w = np.bincount(inverse, weights=weights, minlength=rows.shape[0])
    return rows, w.astype(np.float64), inverse


@functools.lru_cache(maxsize=4)
def _pool(n_threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="kmeans-numpy")


class NumPyDataset:
    """An in-memory dataset: ``points`` ``(n, d)`` float32/float64 with optional weights.

    ``inverse`` maps the rows of the original input to rows of this dataset when it was
    made by :meth:`compress` (``None`` otherwise).
    """

    def __init__(
        self,
        points: FloatArray,
        weights: Float64Array | None = None,
        *,
        integer_valued: bool = False,
        distinct: bool = False,
        source: NDArray[Any] | None = None,
        inverse: IntArray | None = None,
        n_threads: int = 1,
        block_rows: int | None = None,
    ) -> None:
        self.points = points
        self.weights = weights
        self._integer_valued = integer_valued
        self._distinct = distinct
        self._source = source
        self.inverse = inverse
        self.n_threads = max(1, n_threads)
        n = points.shape[0]
        if block_rows is None:
            # A grid fixed by the row count alone, never by the threads or usable cores, so
            # the merge order (and every bit of the result) is the same on any machine:
            # a multiple of GRID_BLOCKS blocks (one per default thread) of at most
            # MAX_BLOCK_ROWS rows (per-block temporaries grow with the block).
            n_blocks = GRID_BLOCKS * max(1, -(-n // (GRID_BLOCKS * MAX_BLOCK_ROWS)))
            block_rows = max(4096, -(-n // n_blocks))
        self.block_rows = block_rows
        self._total_weight = float(n) if weights is None else float(np.sum(weights))

    @property
    def n_rows(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.points.shape[1])

    @property
    def total_weight(self) -> float:
        return self._total_weight

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.points.dtype

    @property
    def integer_valued(self) -> bool:
        return self._integer_valued

    @property
    def distinct(self) -> bool:
        return self._distinct

    def local_blocks(self) -> list[Block]:
        """The blocks themselves: lets initializers cache per-row state in memory."""
        n = self.n_rows
        w = self.weights if self.weights is not None else _unit_weights(n)
        return [
            Block(self.points[s : s + self.block_rows], w[s : s + self.block_rows], s)
            for s in range(0, n, self.block_rows)
        ]

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        """``fn`` over every block (on the thread pool if ``n_threads > 1``), merged in block order."""
        blocks = self.local_blocks()
        if self.n_threads > 1 and len(blocks) > 1:
            # The calling thread takes the first block itself: one thread hand-off fewer per
            # pass (measured ~0.1 ms of a ~1.7 ms pass on the raccoon's colors).
            # BLAS (the L2 kernel's tiles) gets one thread per block: no oversubscription.
            with single_threaded_blas():
                futures = [_pool(self.n_threads).submit(fn, b) for b in blocks[1:]]
                try:
                    first = fn(blocks[0])
                finally:  # never return (or raise) while other blocks still run
                    wait(futures)
            parts: Sequence[T] = [first, *(f.result() for f in futures)]
        else:
            parts = [fn(b) for b in blocks]
        return functools.reduce(merge, parts)

    def compress(self) -> NumPyDataset:
        """Identical rows folded into one row carrying their summed weight."""
        if self._distinct:
            return self
        source = self._source if self._source is not None else self.points
        rows, w, inverse = compress_rows(source, self.weights)
        return NumPyDataset(
            _float_points(rows),
            w,
            integer_valued=self._integer_valued,
            distinct=True,
            inverse=inverse,
            n_threads=self.n_threads,
        )

    def __repr__(self) -> str:
        return (
            f"NumPyDataset(n_rows={self.n_rows}, n_features={self.n_features}, "
            f"dtype={self.dtype}, distinct={self.distinct})"
        )


def default_threads() -> int:
    """The threads used when ``n_threads=None``: the cores this process may use, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@attrs.frozen
class NumPyBackend:
    """The in-process backend. ``n_threads=None`` uses the available cores (at most 4)."""

    name: str = "numpy"
    n_threads: int | None = None
    block_rows: int | None = None

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> NumPyDataset:
        """Validate ``X`` and ``sample_weight`` and wrap them; raises before any pass over the data."""
        if features is not None:
            raise ValidationError(
                "features= selects DataFrame columns; the numpy backend takes an array (select columns first)"
            )
        arr = check_points(X)
        weights = check_weights(sample_weight, arr.shape[0])
        integer = arr.dtype.kind in "biu"
        return NumPyDataset(
            _float_points(arr),
            weights,
            integer_valued=integer,
            source=arr if integer else None,
            n_threads=self.n_threads or default_threads(),
            block_rows=self.block_rows,
        )

    def fit(self, dataset: Any, spec: FitSpec) -> FitResult:
        """Compress if asked (``"auto"``: integer data), run the restarts, label every input row."""
        original = dataset
        if spec.compress is True or (spec.compress == "auto" and dataset.integer_valued):
            dataset = dataset.compress()
        result = fit_restarts(dataset, spec)
        labels = dataset_labels(dataset, result.centers, spec.distance.assign)
        inverse = getattr(dataset, "inverse", None)
        if dataset is not original and inverse is not None:
            labels = labels[inverse]
        return attrs.evolve(result, labels=labels)

    def predict(self, X: Any, centers: Float64Array, assign: AssignStep, *, features: Any = None) -> NDArray[np.int32]:
        """Closest center of every row of ``X`` (the lowest index on ties), as int32."""
        ds = self.dataset(X, features=features)
        return dataset_labels(ds, centers, assign)


def dataset_labels(dataset: Any, centers: Float64Array, assign: AssignStep) -> NDArray[np.int32]:
    """Labels of every row of an in-memory dataset, in row order."""
    out = np.empty(dataset.n_rows, dtype=np.int32)  # like scikit-learn: half the memory of intp

    def fn(block: Block) -> None:
        out[block.start : block.start + block.n_rows] = assign.assign(block.points, centers)[0]

    dataset.map_reduce(fn, lambda a, b: None)
    return out
