"""Manhattan assignment and the exact weighted coordinate-wise median update (k-medians).

**Median rule.** For one cluster and one coordinate, with values ``v`` of positive weights
``w`` and total ``W``, the center is the *lower weighted median*: the smallest data value
``m`` with ``sum(w[v <= m]) >= W / 2``. It is always a data value (uint8 pixels stay
integers) and minimizes ``sum(w |v - m|)``. Rows of weight 0 never vote.

**Mergeable, bounded memory.** The summary is, per cluster and coordinate, a histogram of
``B = 256`` bins over a value range ``[lo, hi]`` (weight, smallest and largest value per
bin) plus the weight below ``lo`` (recounted in every pass): ``k * d * B`` numbers whatever the row count, merged by
adding weights and taking min/max. The first pass spans the data's range; if the bin
holding the median contains more than one distinct value, the next pass re-bins just
that bin's ``[min, max]``. Each pass strictly shrinks the candidate set, so the median is
exact after a few passes (one pass for integer data spanning fewer than 256 values, such
as 8-bit pixels). Weights are summed in float64: exact for integer weights (counts).

The first ``LINEAR_PASSES`` passes use equal-width bins in value space, which settle
ordinary data in two to four passes. Values spread over many orders of magnitude would
shrink slowly that way, so later passes use equal-width bins over the order-preserving
64-bit integer image of the doubles: each such pass divides the number of representable
candidates by ``B``, so at most 8 more passes are ever needed (``B = 256``).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._kernels import assign_manhattan
from kmeans._ops import weighted_bincount
from kmeans._types import Block, Float64Array, FloatArray, IntArray
from kmeans.distance.base import Distance
from kmeans.protocols import Refine

#: Histogram bins per cluster and coordinate in each pass.
BINS = 256
#: Passes with equal-width bins in value space before switching to bins over the bit
#: patterns of the doubles (which bound the remaining passes by 64 / log2(BINS)).
LINEAR_PASSES = 6
#: A safety net never reached: LINEAR_PASSES + 64 / log2(BINS) + 1 passes always suffice.
MAX_PASSES = 200
_INT64_MIN = np.int64(np.iinfo(np.int64).min)


def ordered_bits(values: Float64Array) -> NDArray[np.int64]:
    """An int64 for each double that sorts like the doubles (``-0.0`` and ``0.0`` map to 0)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    out: NDArray[np.int64] = np.where(bits < 0, _INT64_MIN - bits, bits)
    return out


def _bit_length(x: NDArray[np.uint64]) -> NDArray[np.int64]:
    """``int.bit_length`` of every element, exactly (no float rounding)."""
    out = np.zeros(x.shape, dtype=np.int64)
    x = x.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = x >= (np.uint64(1) << np.uint64(step))
        out += np.where(big, step, 0)
        x = np.where(big, x >> np.uint64(step), x)
    return out + (x > 0)


def _linear_bins(v: Float64Array, lo: Float64Array, hi: Float64Array, bins: int) -> IntArray:
    """Equal-width bins of ``[lo, hi]`` in value space; monotone in ``v``, ``lo -> 0``, ``hi -> bins - 1``."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        width = hi - lo
        wide = ~np.isfinite(width)
        if wide.any():  # the range exceeds the largest double: halve everything (exact for such values)
            v, lo, width = (
                np.where(wide, v * 0.5, v),
                np.where(wide, lo * 0.5, lo),
                np.where(wide, hi * 0.5 - lo * 0.5, width),
            )
        pos = np.where(width > 0, (v - lo) / width * bins, 0.0)
    return np.minimum(pos.astype(np.intp), bins - 1)


def _bit_bins(v: Float64Array, lo: Float64Array, hi: Float64Array, bins: int) -> IntArray:
    """Equal-width bins of ``[lo, hi]`` over :func:`ordered_bits`; monotone, ``lo -> 0``."""
    klo = ordered_bits(lo)
    # Differences of ordered bits fit in uint64; the int64 subtraction wraps, exactly mod 2**64.
    with np.errstate(over="ignore"):
        span = (ordered_bits(hi) - klo).view(np.uint64)
        offset = (ordered_bits(v) - klo).view(np.uint64)
    shift = np.maximum(_bit_length(span) - (bins.bit_length() - 1), 0).astype(np.uint64)
    return (offset >> shift).astype(np.intp)


def _manhattan(points: FloatArray, centers: Float64Array, out: Float64Array) -> Float64Array:
    out.fill(0.0)
    for j in range(points.shape[1]):
        out += np.abs(points[:, j, None] - centers[None, :, j])
    return out


@attrs.frozen
class Manhattan:
    """Manhattan (cityblock) cost, ``sum_j |x_j - c_j|``, computed exactly in float64."""

    name: str = "manhattan"

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        return assign_manhattan(points, centers)

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        return _manhattan(points, centers, np.empty((points.shape[0], centers.shape[0]), dtype=np.float64))

    def shift(self, old: Float64Array, new: Float64Array) -> Float64Array:
        return np.abs(new - old).sum(axis=1)  # type: ignore[no-any-return]


@attrs.frozen(eq=False)
class MedianState:
    """Which value range each (cluster, coordinate) histogram covers in this pass."""

    lo: Float64Array  # (k, d)
    hi: Float64Array  # (k, d)
    done: NDArray[np.bool_]  # (k, d) median already found
    median: Float64Array  # (k, d) valid where done
    passes: int = 0


@attrs.frozen(eq=False)
class MedianSummary:
    """Per (cluster, coordinate): bin weights, bin min/max, weight below range, total."""

    hist: Float64Array  # (k, d, B)
    bin_min: Float64Array  # (k, d, B), +inf where empty
    bin_max: Float64Array  # (k, d, B), -inf where empty
    below: Float64Array  # (k, d)
    total: Float64Array  # (k,)


def feature_bounds(dataset: Any) -> tuple[Float64Array, Float64Array]:
    """Per-feature ``(min, max)`` over rows of positive weight, in one pass."""

    def fn(block: Block) -> tuple[Float64Array, Float64Array]:
        pts = block.points[block.weights > 0]
        if pts.shape[0] == 0:
            d = block.points.shape[1]
            return np.full(d, np.inf), np.full(d, -np.inf)
        return pts.min(axis=0).astype(np.float64), pts.max(axis=0).astype(np.float64)

    def merge(
        a: tuple[Float64Array, Float64Array], b: tuple[Float64Array, Float64Array]
    ) -> tuple[Float64Array, Float64Array]:
        return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])

    return dataset.map_reduce(fn, merge)  # type: ignore[no-any-return]


@attrs.frozen
class WeightedMedian:
    """Exact weighted coordinate-wise (lower) median update; see the module docstring."""

    name: str = "median"
    bins: int = BINS

    def plan(self, dataset: Any, k: int) -> MedianState:
        lo, hi = feature_bounds(dataset)
        d = lo.shape[0]
        return MedianState(
            lo=np.broadcast_to(lo, (k, d)).copy(),
            hi=np.broadcast_to(hi, (k, d)).copy(),
            done=np.zeros((k, d), dtype=bool),
            median=np.zeros((k, d)),
        )

    def partial(self, block: Block, labels: IntArray, k: int, state: MedianState) -> MedianSummary:
        B = self.bins
        points, weights = block.points, block.weights
        d = points.shape[1]
        hist = np.zeros(k * d * B)
        bin_min = np.full(k * d * B, np.inf)
        bin_max = np.full(k * d * B, -np.inf)
        below = np.zeros(k * d)
        positive = weights > 0
        if not positive.all():
            points, labels, weights = points[positive], labels[positive], weights[positive]
        w = np.ascontiguousarray(weights, dtype=np.float64)
        total = weighted_bincount(labels, w, k)
        for j in range(d):
            v = points[:, j].astype(np.float64, copy=False)
            lo, hi = state.lo[labels, j], state.hi[labels, j]
            cell = labels * d + j
            low = v < lo
            if low.any():
                below += np.bincount(cell[low], weights=w[low], minlength=k * d)
            inside = ~low & (v <= hi) & ~state.done[labels, j]
            vi, loi, hii = v[inside], lo[inside], hi[inside]
            binner = _linear_bins if state.passes < LINEAR_PASSES else _bit_bins
            flat = cell[inside] * B + binner(vi, loi, hii, B)
            hist += np.bincount(flat, weights=w[inside], minlength=k * d * B)
            np.minimum.at(bin_min, flat, vi)
            np.maximum.at(bin_max, flat, vi)
        return MedianSummary(
            hist=hist.reshape(k, d, B),
            bin_min=bin_min.reshape(k, d, B),
            bin_max=bin_max.reshape(k, d, B),
            below=below.reshape(k, d),
            total=total,
        )

    def merge(self, a: MedianSummary, b: MedianSummary) -> MedianSummary:
        return MedianSummary(
            hist=a.hist + b.hist,
            bin_min=np.minimum(a.bin_min, b.bin_min),
            bin_max=np.maximum(a.bin_max, b.bin_max),
            below=a.below + b.below,
            total=a.total + b.total,
        )

    def finalize(self, summary: MedianSummary, old_centers: Float64Array, state: MedianState) -> Float64Array | Refine:
        k, d = state.lo.shape
        half = summary.total / 2.0  # (k,)
        below = summary.below  # each pass recounts the weight below its ranges
        cum = below[:, :, None] + np.cumsum(summary.hist, axis=2)  # (k, d, B)
        reached = cum >= half[:, None, None]
        b = np.argmax(reached, axis=2)  # first bin where the cumulative weight reaches W/2
        ii, jj = np.meshgrid(np.arange(k), np.arange(d), indexing="ij")
        bmin, bmax = summary.bin_min[ii, jj, b], summary.bin_max[ii, jj, b]
        empty = summary.total == 0
        found = ~state.done & ~empty[:, None] & (bmin == bmax)
        median = np.where(found, bmin, state.median)
        done = state.done | found | empty[:, None]
        if done.all() or state.passes + 1 >= MAX_PASSES:
            return np.where(empty[:, None], old_centers, median)
        refine = ~done
        return Refine(
            MedianState(
                lo=np.where(refine, bmin, state.lo),
                hi=np.where(refine, bmax, state.hi),
                done=done,
                median=median,
                passes=state.passes + 1,
            )
        )


L1 = Distance(name="l1", assign=Manhattan(), update=WeightedMedian(), cost_power=1)
