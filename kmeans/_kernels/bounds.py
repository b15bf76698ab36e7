"""Hamerly's distance bounds: fused Lloyd passes in which rows that provably keep their center cost one distance."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._kernels._common import _JIT
from kmeans._kernels.assign import _closest_and_second
from kmeans._types import Float64Array

#: Up to this many centers, three-feature rows use the register kernel; above it the
#: vectorized loop over centers wins (measured on the raccoon: equal near k=32).
RGB_MAX_CENTERS = 24


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
            best, best_d, second = _closest_and_second(x, i, ct, dist)
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
    counts the rows of the last pass that the bounds settled without a full comparison;
    ``passes`` the passes so far and ``ball_misses`` the share of rows the last ball
    search (:mod:`kmeans._kernels.neighbors`) left to the full comparison.
    """

    __slots__ = ("ball_misses", "centers", "kept", "labels", "lower", "passes")

    def __init__(self, centers: Float64Array, labels: NDArray[np.int32], lower: NDArray[np.float32]) -> None:
        self.centers = centers
        self.labels = labels
        self.lower = lower
        self.kept = 0
        self.passes = 0
        self.ball_misses = 0.0


def center_shifts(old: Float64Array, new: Float64Array) -> Float64Array:
    """``||new_j - old_j||`` per center, rounded up."""
    diff = new - old
    out: Float64Array = np.sqrt(np.einsum("ij,ij->i", diff, diff)) * (1.0 + _MARGIN)
    return out


def largest_other(moves: Float64Array) -> Float64Array:
    """``out[a] = max_{j != a} moves[j]`` (0 for a single center)."""
    top = int(np.argmax(moves))
    out = np.full(moves.shape[0], moves[top])
    out[top] = np.max(np.delete(moves, top), initial=0.0)
    return out
