"""The in-process engine: NumPy blocks over an in-memory array.

``map_reduce`` runs ``fn`` over contiguous row blocks (views, never copies), on a small
thread pool when ``n_threads > 1`` (NumPy releases the GIL in its kernels), and merges
the partial results in block order, so the result does not depend on thread timing.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import driver
from kmeans._blas import single_threaded_blas
from kmeans._types import Block, FitResult, FitSpec, Float64Array, FloatArray, IntArray
from kmeans._validation import check_points, check_weights
from kmeans.dataset import (
    GRID_BLOCKS,
    MAX_BLOCK_ROWS,
    BlockDataset,
    compress_rows,
    default_block_rows,
    facts_of,
    float_points,
    scaled_points,
    scaled_weights,
    split_blocks,
    unit_weights,
)
from kmeans.errors import ValidationError
from kmeans.protocols import AssignStep
from kmeans.sparse import check_sparse, is_scipy_sparse

T = TypeVar("T")

__all__ = [
    "GRID_BLOCKS",
    "MAX_BLOCK_ROWS",
    "NumPyBackend",
    "NumPyDataset",
    "SparseNumPyDataset",
    "compress_rows",
    "dataset_labels",
    "default_threads",
]


@functools.lru_cache(maxsize=4)
def _pool(n_threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="kmeans-numpy")


class NumPyDataset(BlockDataset):
    """An in-memory dataset: ``points`` ``(n, d)`` float32/float64 with optional weights.

    A :class:`~kmeans.dataset.BlockDataset` of contiguous row blocks (views) whose
    ``map_reduce`` runs on a thread pool. ``source`` is the original integer array, if any,
    which ``compress`` folds with packed integer keys.
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
        self._source = source
        self.n_threads = max(1, n_threads)
        self.block_rows = block_rows if block_rows is not None else default_block_rows(int(points.shape[0]))
        facts = facts_of(points, weights, integer_valued=integer_valued, distinct=distinct)
        super().__init__(split_blocks(points, weights, self.block_rows), facts, inverse=inverse)

    def scaled(self, data_exp: int, weight_exp: int) -> NumPyDataset:
        """The optional ``Dataset.scaled``: an exactly rescaled copy on the same thread pool and grid."""
        w = self.weights
        if weight_exp:
            w = scaled_weights(unit_weights(self.points.shape[0]) if w is None else w, weight_exp)
        return NumPyDataset(
            scaled_points(self.points, data_exp),
            w,
            integer_valued=self.integer_valued and data_exp == 0,
            distinct=self.distinct,
            inverse=self.inverse,
            n_threads=self.n_threads,
            block_rows=self.block_rows,
        )

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        """``fn`` over every block (on the thread pool if ``n_threads > 1``), merged in block order."""
        blocks = self.blocks
        if self.n_threads > 1 and len(blocks) > 1:
            # n_threads threads in all, the calling one included, each taking the next block
            # not yet taken: no more threads than cores (three threads on two cores left one
            # block to finish alone), and no core idles while blocks remain. Which thread
            # ran a block does not matter: parts are merged in block order.
            # BLAS (the L2 kernel's tiles) gets one thread per block: no oversubscription.
            results: list[Any] = [None] * len(blocks)
            taken = iter(range(len(blocks)))
            lock = threading.Lock()

            def work() -> None:
                while True:
                    with lock:
                        i = next(taken, None)
                    if i is None:
                        return
                    results[i] = fn(blocks[i])

            with single_threaded_blas():
                futures = [_pool(self.n_threads).submit(work) for _ in range(min(self.n_threads, len(blocks)) - 1)]
                try:
                    work()
                finally:  # never return (or raise) while other blocks still run
                    wait(futures)
            for f in futures:
                f.result()  # a block's exception, raised here
            parts: Sequence[T] = results
        else:
            parts = [fn(b) for b in blocks]
        return functools.reduce(merge, parts)

    def compress(self) -> NumPyDataset:
        """Identical rows folded into one row carrying their summed weight."""
        if self.distinct:
            return self
        source = self._source if self._source is not None else self.points
        rows, w, inverse = compress_rows(source, self.weights)
        return NumPyDataset(
            float_points(rows),
            w,
            integer_valued=self.integer_valued,
            distinct=True,
            inverse=inverse,
            n_threads=self.n_threads,
        )


class SparseNumPyDataset(NumPyDataset):
    """A :class:`NumPyDataset` of sparse rows: blocks hold :class:`~kmeans.sparse.SparseRows` (CSR views).

    Only metrics that read sparse rows (``l2``, ``cosine``) can fit it; nothing densifies
    the data. ``compress`` is refused (identical sparse rows are rare and the fold would
    need a dense sort).
    """

    def compress(self) -> NumPyDataset:
        raise ValidationError("compress=True needs dense rows; fit sparse input with compress='auto' or False")

    def distinct_rows(self, limit: int) -> Float64Array:
        """The first ``limit`` distinct rows of positive weight in row order, dense (only they are densified)."""
        seen: set[tuple[bytes, bytes]] = set()
        picked: list[Any] = []
        for block in self.blocks:
            rows: Any = block.points  # SparseRows
            w = np.asarray(block.weights)
            for i in np.flatnonzero(w > 0):
                s, e = rows.indptr[i], rows.indptr[i + 1]
                key = (rows.indices[s:e].tobytes(), rows.data[s:e].astype(np.float64).tobytes())
                if key not in seen:
                    seen.add(key)
                    picked.append(rows[i : i + 1])
                    if len(picked) >= limit:
                        break
            if len(picked) >= limit:
                break
        if not picked:
            return np.empty((0, self.n_features), dtype=np.float64)
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in picked])


def default_threads() -> int:
    """The threads used when ``n_threads=None``: the cores this process may use, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@attrs.frozen
class NumPyBackend:
    """The in-process backend. ``n_threads=None`` uses the available cores (at most 4)."""

    name: str = "numpy"
    array_input = True  # an (n, d) array-like: fit may hand it an exactly rescaled copy
    n_threads: int | None = None
    block_rows: int | None = None

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> NumPyDataset:
        """Validate ``X`` and ``sample_weight`` and wrap them; raises before any pass over the data."""
        if features is not None:
            raise ValidationError(
                "features= selects DataFrame columns; the numpy backend takes an array (select columns first)"
            )
        if is_scipy_sparse(X):
            rows = check_sparse(X)
            return SparseNumPyDataset(
                rows,  # type: ignore[arg-type]  # SparseRows stand in for the dense points
                check_weights(sample_weight, rows.shape[0]),
                n_threads=self.n_threads or default_threads(),
                block_rows=self.block_rows,
            )
        arr = check_points(X)
        weights = check_weights(sample_weight, arr.shape[0])
        integer = arr.dtype.kind in "biu"
        return NumPyDataset(
            float_points(arr),
            weights,
            integer_valued=integer,
            source=arr if integer else None,
            n_threads=self.n_threads or default_threads(),
            block_rows=self.block_rows,
        )

    def fit(self, dataset: Any, spec: FitSpec) -> FitResult:
        """The generic fit (:func:`kmeans.driver.fit`): compress rule, restarts, labels of every input row."""
        return driver.fit(dataset, spec)

    def predict(self, X: Any, centers: Float64Array, assign: AssignStep, *, features: Any = None) -> NDArray[np.int32]:
        """Closest center of every row of ``X`` (the lowest index on ties), as int32."""
        ds = self.dataset(X, features=features)
        return dataset_labels(ds, centers, assign)


def dataset_labels(dataset: Any, centers: Float64Array, assign: AssignStep) -> NDArray[np.int32]:
    """Labels of every row of an in-memory dataset, in row order (:func:`kmeans.driver.labels`)."""
    found: NDArray[np.int32] = driver.labels(dataset, centers, assign)
    return found
