"""Deterministic sampling built on ``Dataset.map_reduce`` alone.

Every draw is keyed on ``(seed, global row index)`` (see :mod:`kmeans._random`), and the
rows with the smallest keys win, ties going to the lowest row index. A top-m selection
merges associatively, so any engine and any partitioning selects the same rows.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._types import Block, Float64Array
from kmeans.protocols import Dataset, optional


@attrs.frozen(eq=False)
class Candidates:
    """Rows with their keys, sorted by ``(key, row)``."""

    keys: Float64Array
    rows: NDArray[np.int64]
    points: Float64Array
    weights: Float64Array

    def top(self, m: int) -> Candidates:
        order = np.lexsort((self.rows, self.keys))[:m]
        return Candidates(self.keys[order], self.rows[order], self.points[order], self.weights[order])

    @staticmethod
    def concat(a: Candidates, b: Candidates) -> Candidates:
        return Candidates(
            np.concatenate([a.keys, b.keys]),
            np.concatenate([a.rows, b.rows]),
            np.concatenate([a.points, b.points]),
            np.concatenate([a.weights, b.weights]),
        )


def smallest_keys(dataset: Dataset, key_fn: Callable[[Block], Float64Array], m: int) -> Candidates:
    """The ``m`` rows with the smallest finite ``key_fn`` keys, as float64 points."""

    def some(block: Block) -> tuple[NDArray[np.int64], Float64Array]:
        keys = np.asarray(key_fn(block), dtype=np.float64)
        idx = np.flatnonzero(np.isfinite(keys))
        return idx, keys[idx]

    return smallest_of(dataset, some, m)


def smallest_of(
    dataset: Dataset, some_fn: Callable[[Block], tuple[NDArray[np.int64], Float64Array]], m: int
) -> Candidates:
    """:func:`smallest_keys` from ``some_fn(block) = (rows, keys)``: a superset of the block's ``m`` smallest."""

    def fn(block: Block) -> Candidates:
        idx, keys = some_fn(block)
        if idx.size > m:
            kth = np.partition(keys, m - 1)[m - 1]
            near = keys <= kth  # keeps every tie at the boundary
            idx, keys = idx[near], keys[near]
        cand = Candidates(
            keys,
            block.start + idx.astype(np.int64),
            np.asarray(block.points[idx], dtype=np.float64),
            np.asarray(block.weights[idx], dtype=np.float64),
        )
        return cand.top(m)

    def merge(a: Candidates, b: Candidates) -> Candidates:
        return Candidates.concat(a, b).top(m)

    return dataset.map_reduce(fn, merge)


def first_distinct(points: Float64Array, limit: int) -> NDArray[np.intp]:
    """Indices of the first ``limit`` pairwise-distinct rows of ``points``, in order.

    Rows are compared by their bytes (floats after ``+ 0``, which turns -0.0 into 0.0, so
    equal values have equal bytes; the data hold no NaN), in one pass that stops at ``limit``;
    when that pass has read many rows without finding ``limit``, one sort decides.
    """
    n = points.shape[0]
    if n == 0 or limit <= 0:
        return np.empty(0, dtype=np.intp)
    rows = np.asarray(points)
    if rows.dtype.kind == "f":
        rows = rows + rows.dtype.type(0)  # in its own dtype: its bytes are its values
    seen: set[bytes] = set()
    found: list[int] = []
    budget = 4 * limit + 1024
    for i in range(min(n, budget)):
        key = rows[i].tobytes()
        if key not in seen:
            seen.add(key)
            found.append(i)
            if len(found) == limit:
                return np.asarray(found, dtype=np.intp)
    if n <= budget:
        return np.asarray(found, dtype=np.intp)
    _, first = np.unique(rows, axis=0, return_index=True)
    return np.sort(first)[:limit]


def distinct_rows(dataset: Dataset, limit: int) -> Float64Array:
    """Up to ``limit`` distinct rows of positive weight (which ones is unspecified).

    Cheap when distinct rows are plentiful: each block looks at a growing prefix of its
    rows and stops as soon as it has ``limit`` distinct ones. A dataset may provide its
    own ``distinct_rows(limit)`` with the same contract (an engine that can answer
    without a pass over every row, such as a DataFrame with ``LIMIT``); it is used then.
    """
    own = optional(dataset, "distinct_rows")
    if own is not None:
        found: Float64Array = own(limit)
        return found

    def fn(block: Block) -> Float64Array:
        n = block.n_rows
        size = min(n, max(2 * limit, 64))
        while True:  # only the prefix is filtered and copied, not the whole block
            pts = np.asarray(block.points[:size][block.weights[:size] > 0], dtype=np.float64)
            found = pts[first_distinct(pts, limit)]
            if found.shape[0] >= limit or size >= n:
                return found
            size = min(n, size * 4)

    def merge(a: Float64Array, b: Float64Array) -> Float64Array:
        both = np.concatenate([a, b])
        return both[first_distinct(both, limit)]

    return dataset.map_reduce(fn, merge)
