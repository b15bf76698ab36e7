"""The neutral in-memory dataset: a list of :class:`~kmeans._types.Block` objects and their facts.

No engine lives here. :class:`BlockDataset` is what an in-process engine is made of: the
``numpy`` backend's dataset is one (it only runs ``map_reduce`` on a thread pool), the
``spark-rdd`` backend hands one to the single task that runs a whole Lloyd run, and the
initializers reduce their candidates on one. A new in-process engine subclasses it and
overrides :meth:`BlockDataset.map_reduce` only.

:func:`compress_rows` is the one implementation of ``compress``'s rule (identical rows
folded, distinct rows in ascending lexicographic order), shared by every engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._kernels import pack_rows, small_int_ranges, unique_small_keys
from kmeans._types import Block, Float64Array, FloatArray, IntArray

T = TypeVar("T")

#: Largest default block (rows): bounds per-block temporaries.
MAX_BLOCK_ROWS = 1 << 18

#: The default grid has a multiple of this many blocks: as many as the most threads the
#: ``numpy`` backend's ``n_threads=None`` uses, so they share the blocks evenly.
GRID_BLOCKS = 4

#: Keys of integer rows are packed into one int64 when the value ranges allow it.
_MAX_PACKED = 1 << 62

#: Packed keys spanning at most this many values are deduplicated through a
#: direct-address table (at most 64 MiB of int32; the whole 24-bit RGB cube fits), not a sort.
_TABLE_KEYS = 1 << 24


def _as_dtype(value: Any) -> np.dtype[Any]:
    out: np.dtype[Any] = np.dtype(value)
    return out


@attrs.frozen
class DatasetFacts:
    """What a dataset knows about its rows without a pass over them (see :class:`~kmeans.protocols.Dataset`)."""

    n_rows: int
    n_features: int
    total_weight: float
    dtype: np.dtype[Any] = attrs.field(converter=_as_dtype)
    integer_valued: bool = False
    distinct: bool = False


def facts_of(
    points: FloatArray, weights: Float64Array | None, *, integer_valued: bool = False, distinct: bool = False
) -> DatasetFacts:
    """The facts of in-memory ``points`` ``(n, d)`` and their weights (``None``: unit weights)."""
    n = int(points.shape[0])
    total = float(n) if weights is None else float(np.sum(weights))
    return DatasetFacts(n, int(points.shape[1]), total, points.dtype, integer_valued, distinct)


class FactsMixin:
    """The :class:`~kmeans.protocols.Dataset` properties, read from a :class:`DatasetFacts` in ``facts``."""

    facts: DatasetFacts

    @property
    def n_rows(self) -> int:
        return self.facts.n_rows

    @property
    def n_features(self) -> int:
        return self.facts.n_features

    @property
    def total_weight(self) -> float:
        return self.facts.total_weight

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.facts.dtype

    @property
    def integer_valued(self) -> bool:
        return self.facts.integer_valued

    @property
    def distinct(self) -> bool:
        return self.facts.distinct


def unit_weights(n: int) -> Float64Array:
    """Unit weights that cost no memory: a read-only broadcast of 1.0."""
    return np.broadcast_to(np.float64(1.0), (n,))


def float_points(arr: NDArray[Any]) -> FloatArray:
    """``arr`` itself when float32/float64, else a float64 copy."""
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    return arr.astype(np.float64)


def scaled_points(points: FloatArray, exp: int) -> FloatArray:
    """``points * 2**exp`` in their own dtype (exact in range, see :mod:`kmeans._scale`); themselves if ``exp == 0``."""
    return np.ldexp(points, exp).astype(points.dtype, copy=False) if exp else points


def scaled_weights(weights: Float64Array, exp: int) -> Float64Array:
    """``weights * 2**exp`` as a float64 array (unit weights become a full array); themselves if ``exp == 0``."""
    return np.ldexp(np.asarray(weights, dtype=np.float64), exp) if exp else weights


def scaled_block(block: Block, data_exp: int, weight_exp: int) -> Block:
    """``block``, rows times ``2**data_exp`` and weights times ``2**weight_exp``: each ``Dataset.scaled``'s step."""
    if not data_exp and not weight_exp:
        return block
    return Block(scaled_points(block.points, data_exp), scaled_weights(block.weights, weight_exp), block.start)


def default_block_rows(n: int) -> int:
    """Rows per block for ``n`` rows: a grid fixed by the row count alone.

    Never by the threads or usable cores, so the merge order (and every bit of the result)
    is the same on any machine: a multiple of :data:`GRID_BLOCKS` blocks (one per default
    thread) of at most :data:`MAX_BLOCK_ROWS` rows (per-block temporaries grow with the block).
    """
    n_blocks = GRID_BLOCKS * max(1, -(-n // (GRID_BLOCKS * MAX_BLOCK_ROWS)))
    return max(4096, -(-n // n_blocks))


def split_blocks(points: FloatArray, weights: Float64Array | None, block_rows: int) -> list[Block]:
    """Contiguous row blocks of ``points`` (views, never copies) with global starts."""
    n = int(points.shape[0])
    w = weights if weights is not None else unit_weights(n)
    return [Block(points[s : s + block_rows], w[s : s + block_rows], s) for s in range(0, n, block_rows)]


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
    (8-bit RGB) go through a presence bitmap, larger spans through one 1-D sort.
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


class BlockDataset(FactsMixin):
    """An in-memory :class:`~kmeans.protocols.Dataset`: ``blocks`` in global row order, and their ``facts``.

    ``map_reduce`` applies ``fn`` to the blocks one after another and merges in block
    order; a subclass may run them elsewhere (threads, a device) and must merge in the
    same order to give the same bits. ``inverse`` maps the rows of the original input to
    rows of this dataset when it was made by :meth:`compress` (``None`` otherwise).
    """

    def __init__(self, blocks: Sequence[Block], facts: DatasetFacts, *, inverse: IntArray | None = None) -> None:
        self.blocks = list(blocks)
        self.facts = facts
        self.inverse = inverse

    @classmethod
    def from_arrays(
        cls,
        points: FloatArray,
        weights: Float64Array | None = None,
        *,
        integer_valued: bool = False,
        distinct: bool = False,
        block_rows: int | None = None,
    ) -> BlockDataset:
        """``points`` ``(n, d)`` float32/float64 (and optional weights) cut into blocks (views)."""
        rows = block_rows if block_rows is not None else default_block_rows(int(points.shape[0]))
        facts = facts_of(points, weights, integer_valued=integer_valued, distinct=distinct)
        return cls(split_blocks(points, weights, rows), facts)

    def local_blocks(self) -> list[Block]:
        """The blocks themselves: lets initializers cache per-row state in memory."""
        return self.blocks

    def value_range(self) -> tuple[float, float]:
        """The optional ``Dataset.value_range``: largest ``|x|`` and weight over the blocks (one pass)."""
        from kmeans._scale import max_abs

        big = max((max_abs(b.points) for b in self.blocks), default=0.0)
        wmax = max((float(np.max(b.weights)) for b in self.blocks if b.n_rows), default=0.0)
        return big, wmax

    def scaled(self, data_exp: int, weight_exp: int) -> BlockDataset:
        """The optional ``Dataset.scaled``: rows times ``2**data_exp``, weights ``2**weight_exp`` (exact copies).

        Of this dataset's own class (built with ``(blocks, facts, inverse=)``, as :meth:`compress`).
        """
        blocks = [scaled_block(b, data_exp, weight_exp) for b in self.blocks]
        f = self.facts
        facts = attrs.evolve(
            f,
            total_weight=float(np.ldexp(f.total_weight, weight_exp)),
            integer_valued=f.integer_valued and data_exp == 0,
        )
        return type(self)(blocks, facts, inverse=self.inverse)

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        """``fn`` over every block, merged in block order."""
        return functools.reduce(merge, [fn(b) for b in self.blocks])

    def compress(self) -> BlockDataset:
        """Identical rows folded into one row carrying their summed weight (see :func:`compress_rows`).

        The result is of this dataset's own class (built with ``(blocks, facts, inverse=)``), so an
        engine that overrides :meth:`map_reduce` keeps running the compressed rows.
        """
        if self.distinct:
            return self
        if not self.blocks:
            return type(self)([], attrs.evolve(self.facts, distinct=True), inverse=np.empty(0, dtype=np.intp))
        points = np.concatenate([b.points for b in self.blocks])
        weights = np.concatenate([np.asarray(b.weights, dtype=np.float64) for b in self.blocks])
        source = points.astype(np.int64) if self.integer_valued else points
        rows, w, inverse = compress_rows(source, weights)
        points = rows.astype(self.dtype)
        facts = facts_of(points, w, integer_valued=self.integer_valued, distinct=True)
        return type(self)(split_blocks(points, w, default_block_rows(facts.n_rows)), facts, inverse=inverse)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_rows={self.n_rows}, n_features={self.n_features}, "
            f"dtype={self.dtype}, distinct={self.distinct})"
        )
