"""Compiled row kernels (Numba) for the hot loops of assignment and update.

Why compiled: with few features (pixels have 3) a BLAS product cannot amortize its
overhead, and NumPy needs several passes over an ``(n, k)`` matrix per iteration. These
kernels make one pass over the rows, keep the ``k`` distances of a row in registers or
L1 cache, and compute squared distances directly as ``sum_j (x_j - c_j)²`` in float64:
no cancellation, no negative costs, and the same bits on every machine whatever the
block layout (no BLAS blocking), so ties are decided identically everywhere. Rows are
read in their own dtype (float32 input is never copied to float64). The kernels release
the GIL, so the NumPy backend runs blocks on threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._types import Float64Array, FloatArray, IntArray

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "fastmath": False, "error_model": "numpy"}


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _first_min(dist: Any) -> tuple[int, float]:  # pragma: no cover - compiled
    # (index, value) of the smallest entry; strict < so ties keep the lowest index.
    best = 0
    best_d = dist[0]
    for c in range(1, dist.shape[0]):
        if dist[c] < best_d:
            best_d = dist[c]
            best = c
    return best, best_d


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _closest_sqeuclidean(x: Any, i: int, ct: Any, dist: Any) -> tuple[int, float]:  # pragma: no cover
    # Row i against every center (the inner loop runs over centers, so it vectorizes).
    k = ct.shape[1]
    for c in range(k):
        dist[c] = 0.0
    for j in range(x.shape[1]):
        xj = np.float64(x[i, j])
        for c in range(k):
            diff = xj - ct[j, c]
            dist[c] += diff * diff
    best, best_d = _first_min(dist)
    return best, best_d


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _assign_sqeuclidean(x: Any, ct: Any, labels: Any, costs: Any) -> None:  # pragma: no cover - compiled
    dist = np.empty(ct.shape[1], dtype=np.float64)
    for i in range(x.shape[0]):
        labels[i], costs[i] = _closest_sqeuclidean(x, i, ct, dist)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _assign_manhattan(x: Any, ct: Any, labels: Any, costs: Any) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    k = ct.shape[1]
    dist = np.empty(k, dtype=np.float64)
    for i in range(n):
        for c in range(k):
            dist[c] = 0.0
        for j in range(d):
            xj = np.float64(x[i, j])
            for c in range(k):
                dist[c] += abs(xj - ct[j, c])
        labels[i], costs[i] = _first_min(dist)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _weighted_sums(x: Any, w: Any, unit: bool, labels: Any, sums: Any, wsum: Any) -> None:  # pragma: no cover
    n, d = x.shape
    for i in range(n):
        c = labels[i]
        wi = 1.0 if unit else w[i]
        wsum[c] += wi
        for j in range(d):
            sums[c, j] += wi * np.float64(x[i, j])


#: Up to this many centers, three-feature rows use the register kernel; above it the
#: vectorized loop over centers wins (measured on the raccoon: equal near k=32).
RGB_MAX_CENTERS = 24


def _unit_or_array(weights: Float64Array) -> tuple[bool, Float64Array]:
    unit = weights.strides == (0,) and (weights.size == 0 or float(weights[0]) == 1.0)
    return unit, (np.zeros(1) if unit else np.ascontiguousarray(weights, dtype=np.float64))


#: Relative safety margin of every bound (see :func:`bounded_lloyd_sqeuclidean`): far above
#: float64 rounding (~1e-16 per operation), far below any real gap between centers.
_MARGIN = 1e-9
#: Lower bounds are stored as float32 after shrinking by this much (float32 rounding is 6e-8).
_SHRINK32 = 1e-6
#: float32's normal range: below it the spacing of float32 exceeds the shrink (store 0);
#: above it conversion overflows to inf (store the largest finite float32, still a bound).
_F32_TINY = 1.1754943508222875e-38
_F32_MAX = 3.4028234663852886e38
#: A skip needs a bound ``m`` in this range, so that ``m²`` is a normal float64 and every
#: relative-error argument holds (squares of 1e-162 underflow to subnormals and exact
#: ties; squares above 1e154 overflow). Larger bounds are lowered to the top (still valid).
_BOUND_MIN = 1e-145
_BOUND_MAX = 1e150


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _bound_updates(old: Any, new: Any, drop: Any, half_gap: Any) -> None:  # pragma: no cover - compiled
    # drop[a]: the largest move of any center other than a (how much closer it may have come);
    # half_gap[a]: half the distance from center a to its nearest other center. Moves are
    # rounded up and gaps down, so both stay on the safe side of float rounding.
    k, d = new.shape
    first = 0.0
    second = 0.0
    arg = -1
    for c in range(k):
        s = 0.0
        for j in range(d):
            t = new[c, j] - old[c, j]
            s += t * t
        move = np.sqrt(s) * (1.0 + _MARGIN)
        if move > first:
            second = first
            first = move
            arg = c
        elif move > second:
            second = move
    for c in range(k):
        drop[c] = second if c == arg else first
        nearest = np.inf
        for b in range(k):
            if b != c:
                s = 0.0
                for j in range(d):
                    t = new[c, j] - new[b, j]
                    s += t * t
                nearest = min(nearest, s)
        half_gap[c] = 0.5 * np.sqrt(nearest) * (1.0 - _MARGIN)


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _lower32(v: float) -> Any:  # pragma: no cover - compiled
    # A float32 that is <= v (distances are >= 0, so 0 is always a valid lower bound).
    shrunk = v * (1.0 - _SHRINK32)
    if shrunk < _F32_TINY:  # also v <= 0 and NaN
        return np.float32(0.0)
    return np.float32(min(shrunk, _F32_MAX))


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _kept(da: float, lower: Any, i: int, a: int, drop: Any, half_gap: Any) -> bool:  # pragma: no cover
    # Row i provably keeps center a when its (exact) distance to a is below both the lower
    # bound on every other center's distance and half of a's gap to its nearest neighbour
    # (then every other center is farther by the triangle inequality), with a margin.
    low = np.float64(lower[i]) - drop[a]
    m = min(max(low, half_gap[a]), _BOUND_MAX)
    if m >= _BOUND_MIN and da < m * m * (1.0 - _MARGIN):
        lower[i] = _lower32(low)
        return True
    return False


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _bounded_lloyd_3(
    x: Any,
    w: Any,
    unit: bool,
    cc: Any,
    labels: Any,
    lower: Any,
    drop: Any,
    half_gap: Any,
    fresh: bool,
    sums: Any,
    wsum: Any,
) -> tuple[float, int]:  # pragma: no cover - compiled
    # Three features (RGB) and few centers: the row stays in registers and the running
    # minimum is a branch-free select (labels of neighbouring pixels vary, so a branch
    # mispredicts). Same float64 operations, in the same order, as the generic kernels:
    # ((x0-c0)² + (x1-c1)²) + (x2-c2)², strict < so ties keep the lowest index. A row
    # whose bound holds costs one distance.
    n = x.shape[0]
    k = cc.shape[0]
    inertia = 0.0
    n_kept = 0
    for i in range(n):
        x0 = np.float64(x[i, 0])
        x1 = np.float64(x[i, 1])
        x2 = np.float64(x[i, 2])
        kept = False
        best = 0
        best_d = 0.0
        if not fresh:
            best = labels[i]
            a = x0 - cc[best, 0]
            b = x1 - cc[best, 1]
            e = x2 - cc[best, 2]
            best_d = a * a + b * b + e * e
            kept = _kept(best_d, lower, i, best, drop, half_gap)
            n_kept += kept
        if not kept:
            best = 0
            best_d = np.inf
            second = np.inf
            for c in range(k):
                a = x0 - cc[c, 0]
                b = x1 - cc[c, 1]
                e = x2 - cc[c, 2]
                s = a * a + b * b + e * e
                better = s < best_d
                second = best_d if better else min(second, s)
                best_d = s if better else best_d
                best = c if better else best
            labels[i] = best
            lower[i] = _lower32(np.sqrt(second))
        wi = 1.0 if unit else w[i]
        wsum[best] += wi
        inertia += wi * best_d
        sums[best, 0] += wi * x0
        sums[best, 1] += wi * x1
        sums[best, 2] += wi * x2
    return inertia, n_kept


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _bounded_lloyd(
    x: Any,
    w: Any,
    unit: bool,
    ct: Any,
    labels: Any,
    lower: Any,
    drop: Any,
    half_gap: Any,
    fresh: bool,
    sums: Any,
    wsum: Any,
) -> tuple[float, int]:  # pragma: no cover - compiled
    # Any d: the closest center (or the kept one), then its sums, weight and weighted cost.
    d = x.shape[1]
    k = ct.shape[1]
    dist = np.empty(k, dtype=np.float64)
    inertia = 0.0
    n_kept = 0
    for i in range(x.shape[0]):
        kept = False
        best = 0
        best_d = 0.0
        if not fresh:
            best = labels[i]
            for j in range(d):
                diff = np.float64(x[i, j]) - ct[j, best]
                best_d += diff * diff
            kept = _kept(best_d, lower, i, best, drop, half_gap)
            n_kept += kept
        if not kept:
            best, best_d = _closest_sqeuclidean(x, i, ct, dist)
            second = np.inf
            for c in range(k):
                if c != best:
                    second = min(second, dist[c])
            labels[i] = best
            lower[i] = _lower32(np.sqrt(second))
        wi = 1.0 if unit else w[i]
        wsum[best] += wi
        inertia += wi * best_d
        for j in range(d):
            sums[best, j] += wi * np.float64(x[i, j])
    return inertia, n_kept


class Bounds:
    """Per-row memory of a block between Lloyd passes (Hamerly's bounds).

    ``labels[i]`` is row i's closest center among ``centers`` and ``lower[i]`` a lower
    bound (float32, rounded down) on its distance to any other of those centers. ``kept``
    counts the rows of the last pass that the bounds settled without a full comparison.
    """

    __slots__ = ("centers", "kept", "labels", "lower")

    def __init__(self, centers: Float64Array, labels: NDArray[np.int32], lower: NDArray[np.float32]) -> None:
        self.centers = centers
        self.labels = labels
        self.lower = lower
        self.kept = 0


def bounded_lloyd_sqeuclidean(
    points: FloatArray, weights: Float64Array, centers: Float64Array, bounds: Bounds | None
) -> tuple[Float64Array, Float64Array, float, Bounds]:
    """:func:`lloyd_sqeuclidean` that skips rows whose closest center cannot have changed.

    Hamerly's rule (2010): after the centers move by ``delta_j``, a row assigned to ``a``
    keeps ``a`` when ``||x - c_a|| < max(l - max_{j != a} delta_j, min_{j != a} ||c_a - c_j|| / 2)``,
    ``l`` being the lower bound on its distance to the other centers at the previous
    pass (triangle inequality). Such a row costs one distance (still computed exactly: it
    feeds the inertia) instead of ``k``. Every bound is kept on the safe side of rounding
    by a relative margin of 1e-9 (far above the rounding of a distance over at most a few
    dozen features), a skip needs a strict inequality and a bound whose square is a normal
    float64 (no underflow to exact ties, no overflow), so a row is only
    skipped when the full comparison would pick the same center (ties included): sums,
    weights and inertia are bit-identical to :func:`lloyd_sqeuclidean`'s. ``bounds`` of a
    previous pass over the same rows (any centers of the same shape) make the pass
    faster; ``None`` starts fresh. Returns the bounds for the next pass (updated in place).
    """
    k, d = centers.shape
    n = points.shape[0]
    unit, w = _unit_or_array(weights)
    sums = np.zeros((k, d), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    fresh = bounds is None or bounds.centers.shape != centers.shape or bounds.labels.shape[0] != n
    drop = np.zeros(k, dtype=np.float64)
    half_gap = np.zeros(k, dtype=np.float64)
    if bounds is None or fresh:
        bounds = Bounds(centers, np.empty(n, dtype=np.int32), np.empty(n, dtype=np.float32))
    else:
        _bound_updates(bounds.centers, centers, drop, half_gap)
    bounds.centers = centers.copy()
    if n == 0:
        bounds.kept = 0
        return sums, wsum, 0.0, bounds
    if d == 3 and k <= RGB_MAX_CENTERS:
        kernel, cc = _bounded_lloyd_3, centers
    else:
        kernel, cc = _bounded_lloyd, np.ascontiguousarray(centers.T)
    inertia, kept = kernel(points, w, unit, cc, bounds.labels, bounds.lower, drop, half_gap, fresh, sums, wsum)
    bounds.kept = int(kept)
    return sums, wsum, float(inertia), bounds


def lloyd_sqeuclidean(
    points: FloatArray, weights: Float64Array, centers: Float64Array
) -> tuple[Float64Array, Float64Array, float]:
    """One fused Lloyd pass for squared Euclidean cost: ``(sums (k, d), weights (k,), inertia)``.

    For every row, the closest center ``j`` (lowest index on ties) gets ``w_i x_i`` added to
    ``sums[j]`` and ``w_i`` to ``weights[j]``, and ``w_i ||x_i - c_j||²`` is added to the
    inertia: assignment, mean summary and cost in one read of the rows. Labels and costs
    are bit-identical to :func:`assign_sqeuclidean`'s. (A pass without memory; see
    :func:`bounded_lloyd_sqeuclidean`.)
    """
    sums, wsum, inertia, _ = bounded_lloyd_sqeuclidean(points, weights, centers, None)
    return sums, wsum, inertia


def assign_sqeuclidean(points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
    """``(labels, costs)``: closest center by squared Euclidean distance, computed directly."""
    labels = np.empty(points.shape[0], dtype=np.intp)
    costs = np.empty(points.shape[0], dtype=np.float64)
    _assign_sqeuclidean(points, np.ascontiguousarray(centers.T, dtype=np.float64), labels, costs)
    return labels, costs


def assign_manhattan(points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
    """``(labels, costs)``: closest center by Manhattan distance."""
    labels = np.empty(points.shape[0], dtype=np.intp)
    costs = np.empty(points.shape[0], dtype=np.float64)
    _assign_manhattan(points, np.ascontiguousarray(centers.T, dtype=np.float64), labels, costs)
    return labels, costs


def weighted_sums(
    points: FloatArray, weights: Float64Array, labels: IntArray, k: int
) -> tuple[Float64Array, Float64Array]:
    """``(sums (k, d), weights (k,))``: per-cluster ``sum(w_i x_i)`` and ``sum(w_i)`` in float64."""
    unit, w = _unit_or_array(weights)
    sums = np.zeros((k, points.shape[1]), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    _weighted_sums(points, w, unit, labels, sums, wsum)
    return sums, wsum


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _column_ranges(x: Any, lo: Any, hi: Any) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    for j in range(d):
        lo[j] = np.int64(x[0, j])
        hi[j] = np.int64(x[0, j])
    for i in range(1, n):
        for j in range(d):
            v = np.int64(x[i, j])
            lo[j] = min(lo[j], v)
            hi[j] = max(hi[j], v)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _pack_rows(x: Any, lo: Any, strides: Any, keys: Any) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    for i in range(n):
        key = np.int64(0)
        for j in range(d):
            key += (np.int64(x[i, j]) - lo[j]) * strides[j]
        keys[i] = key


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _first_seen(keys: Any, table: Any, uniq: Any) -> int:  # pragma: no cover - compiled
    # table[key] = 1 + (order of first appearance); uniq collects each new key once.
    m = 0
    for i in range(keys.shape[0]):
        key = keys[i]
        if table[key] == 0:
            uniq[m] = key
            m += 1
            table[key] = m
    return m


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _lookup(keys: Any, table: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(keys.shape[0]):
        out[i] = table[keys[i]] - 1


def small_int_ranges(x: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per-column ``(min, max)`` of an integer array of at most 32-bit values, in one pass."""
    d = x.shape[1]
    lo = np.zeros(d, dtype=np.int64)
    hi = np.zeros(d, dtype=np.int64)
    if x.shape[0]:
        _column_ranges(x, lo, hi)
    return lo, hi


def pack_rows(x: NDArray[Any], lo: NDArray[np.int64], strides: NDArray[np.int64]) -> NDArray[np.int64]:
    """``keys_i = sum_j (x_ij - lo_j) * strides_j`` (int64; the caller checks the range fits)."""
    keys = np.empty(x.shape[0], dtype=np.int64)
    _pack_rows(x, lo, strides, keys)
    return keys


def unique_small_keys(keys: NDArray[np.int64], size: int) -> tuple[NDArray[np.int64], IntArray]:
    """``(sorted distinct keys, inverse)`` for keys in ``[0, size)``, without sorting the rows.

    A direct-address table of ``size`` int32 (allocated zeroed by the OS, so only the pages
    that keys touch cost anything) finds the distinct keys in one pass; only those are
    sorted, then a second pass looks every row's rank up.
    """
    table = np.zeros(size, dtype=np.int32)
    uniq = np.empty(min(keys.shape[0], size), dtype=np.int64)
    m = _first_seen(keys, table, uniq)
    uniq = np.sort(uniq[:m])
    table[uniq] = np.arange(1, m + 1, dtype=np.int32)
    inverse = np.empty(keys.shape[0], dtype=np.intp)
    _lookup(keys, table, inverse)
    return uniq, inverse


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _splitmix_uniform(seed: Any, row: Any) -> float:  # pragma: no cover - compiled
    z = seed + np.uint64(row) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _uniform(seed: Any, rows: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(rows.shape[0]):
        out[i] = _splitmix_uniform(seed, rows[i])


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _exponential_keys(seed: Any, rows: Any, weights: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(rows.shape[0]):
        w = weights[i]
        if w > 0.0:
            out[i] = -np.log(_splitmix_uniform(seed, rows[i])) / w
        else:
            out[i] = np.inf
