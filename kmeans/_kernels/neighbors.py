"""Ball search over the centers' nearest neighbours: bounds that pay off at large ``k``.

Hamerly's test (:mod:`kmeans._kernels.bounds`) settles a row whose lower bound on the
distance to every other center still exceeds its distance ``u`` to its own center ``a``.
When it fails, a full pass over all ``k`` centers is not needed: by the triangle
inequality ``||x - c_j|| >= ||c_j - c_a|| - u``, so only the centers within
``rho >= 2u`` of ``c_a`` can be closer than ``c_a`` (Newling & Fleuret's Exponion
idea). Each pass sorts, for every center, its ``M`` nearest other centers; a row whose
ball fits in that list computes the exact distances to the centers in it only, and
every center outside is at least ``r - u`` away (``r`` the first neighbour distance past
the ball), which is its new lower bound. Rows whose ball does not fit take the full
path. The same exact float64 distances decide, with the same relative margins as
Hamerly's test, so labels and costs are those of the full comparison.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._kernels._common import _JIT
from kmeans._kernels.assign import _closest_and_second
from kmeans._kernels.bounds import _BOUND_MAX, _BOUND_MIN, _MARGIN, _lower32, center_shifts, largest_other
from kmeans._kernels.gemm import _exact
from kmeans._types import Float64Array

#: Neighbours kept per center: balls larger than this take the full path.
MAX_NEIGHBORS = 128


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _direct_gaps(c: Any, rows: Any, gaps: Any) -> None:  # pragma: no cover - compiled
    # gaps[r, b] = ||c_{rows[r]} - c_b||² computed directly (few features).
    k, d = c.shape
    for r in range(rows.shape[0]):
        a = rows[r]
        for b in range(k):
            s = 0.0
            for j in range(d):
                t = c[a, j] - c[b, j]
                s += t * t
            gaps[r, b] = s


#: Up to this many features the centers' gaps are computed directly, above it by BLAS.
_DIRECT_GAP_FEATURES = 16
#: Centers whose gaps are computed at once (bounds the temporary to this many rows x k).
_GAP_ROWS = 256


class CenterNeighbors:
    """For every center ``a``, its ``M`` nearest other centers: ``index[a]`` and ``dist[a]`` ascending.

    ``dist`` is rounded *down* past the rounding of its computation, so it never
    overstates a gap; ``complete`` is True when ``M = k - 1`` (every other center listed).
    """

    __slots__ = ("centers", "complete", "dist", "index", "typical_gap")

    def __init__(self, centers: Float64Array, max_neighbors: int = MAX_NEIGHBORS) -> None:
        k, d = centers.shape
        self.centers = centers.copy()
        m = max(1, min(k - 1, max_neighbors))
        self.complete = m == k - 1
        self.index = np.zeros((k, m), dtype=np.int64)
        self.dist = np.zeros((k, m), dtype=np.float64)
        self.typical_gap = 0.0
        if k < 2:
            self.dist[:] = np.inf
            return
        c = np.ascontiguousarray(centers - centers.mean(axis=0))
        sq = np.einsum("ij,ij->i", c, c)
        radius = np.sqrt(sq)
        gaps = np.empty((min(_GAP_ROWS, k), k), dtype=np.float64)
        for s in range(0, k, _GAP_ROWS):
            rows = np.arange(s, min(s + _GAP_ROWS, k), dtype=np.int64)
            g = gaps[: rows.shape[0]]
            if d <= _DIRECT_GAP_FEATURES:
                _direct_gaps(c, rows, g)
            else:
                np.matmul(c[rows], c.T, out=g)
                g *= -2.0
                g += sq[rows, None]
                g += sq[None, :]
                # |computed - exact| <= (d + 8) 2**-53 (|c_a| + |c_b|)² for the float64 expansion.
                g -= (d + 8) * 2.0**-53 * 1.01 * (radius[rows, None] + radius[None, :]) ** 2
            g[np.arange(rows.shape[0]), rows] = np.inf
            part = np.argpartition(g, m - 1, axis=1)[:, :m] if m < k - 1 else np.argsort(g, axis=1)[:, :m]
            near = np.take_along_axis(g, part, axis=1)
            order = np.argsort(near, axis=1)
            self.index[rows] = np.take_along_axis(part, order, axis=1)
            self.dist[rows] = np.sqrt(np.maximum(np.take_along_axis(near, order, axis=1), 0.0)) * (1.0 - _MARGIN)
        #: The median gap from a center to its nearest neighbour: the scale of "the centers drifted".
        self.typical_gap = float(np.median(self.dist[:, 0]))


_cache_lock = threading.Lock()  # held while a table is looked up or built
_cache: list[CenterNeighbors] = []

#: A table is rebuilt once its centers have drifted by more than this fraction of the
#: median gap between neighbouring centers (a stale table stays valid, only weaker).
REBUILD_DRIFT = 0.5


def neighbors_of(centers: Float64Array) -> tuple[CenterNeighbors, Float64Array]:
    """A neighbour table for ``centers`` and the correction ``corr`` its gaps need.

    The table may have been built for earlier centers of the same shape (a pass's blocks,
    and the passes of a run while the centers settle, share one): for every ``a`` and
    ``j``, ``||c_a - c_j|| >= dist_old(a, j) - corr[a]`` with
    ``corr[a] = drift_a + max_{j != a} drift_j`` (the drifts since the build, rounded up),
    and the list order is kept, so the ball search stays exact with ``dist - corr``.
    One thread builds while the blocks of the same pass wait for its table.
    """
    with _cache_lock:
        table = _cache[0] if _cache and _cache[0].centers.shape == centers.shape else None
        if table is not None:
            drift = center_shifts(table.centers, centers)
            if drift.max() <= REBUILD_DRIFT * table.typical_gap:
                return table, (drift + largest_other(drift)) * (1.0 + _MARGIN)
        table = CenterNeighbors(centers)
        _cache[:] = [table]
        return table, np.zeros(centers.shape[0])


#: From this many features the ball's candidates are first compared through a
#: vectorized distance (any summation order), confirmed exactly only when close.
FAST_MIN_FEATURES = 16


#: The exact distance's terms summed in any order (so it vectorizes): the differences and
#: squares round identically, so ``|fast - exact| <= 2 (d - 1) u exact`` (nonnegative terms).
_fast_sq = njit(**{**_JIT, "fastmath": {"reassoc", "nsz", "nnan"}})(_exact.py_func)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _ball_phase(
    x: Any,
    C: Any,
    ct: Any,
    nbr: Any,
    ndist: Any,
    corr: Any,
    complete: bool,
    fresh: bool,
    fast: bool,
    rel: float,
    labels: Any,
    lower: Any,
    drop: Any,
    half_gap: Any,
    costs: Any,
    failed: Any,
) -> int:  # pragma: no cover - compiled
    # Hamerly's test, then the ball search; rows neither settles are listed in ``failed``.
    # A gap in the table less ``corr[a]`` is a lower bound on the current gap. ``fresh``:
    # no labels yet, so the previous row's center is the guess (sorted or clustered rows
    # are usually close to their predecessor); a row whose ball does not fit is then
    # compared with every center at once, so the next row's guess is right.
    m = nbr.shape[1]
    k = ct.shape[1]
    dist = np.empty(k, dtype=np.float64)
    nf = 0
    guess = 0
    for i in range(x.shape[0]):
        low = 0.0
        if fresh:
            a = guess
            ua2 = _exact(x, i, C, a)
        else:
            a = labels[i]
            ua2 = _exact(x, i, C, a)
            # Only the listed neighbours' moves lower the bound (drop[a]); every center past the
            # list is at least (the list's last gap) - u away whatever it did.
            low = np.float64(lower[i]) - drop[a]
            if not complete:
                low = min(low, ndist[a, m - 1] - corr[a] - np.sqrt(ua2) * (1.0 + _MARGIN))
            bound = min(max(low, half_gap[a]), _BOUND_MAX)
            if bound >= _BOUND_MIN and ua2 < bound * bound * (1.0 - _MARGIN):
                costs[i] = ua2
                lower[i] = _lower32(low)
                continue
        ua = np.sqrt(ua2) * (1.0 + _MARGIN)
        rho = (2.0 * ua + max(low, 0.0)) * (1.0 + _MARGIN)
        ca = corr[a]
        if not complete and not rho < ndist[a, m - 1] - ca:
            if fresh:
                best, bd, second = _closest_and_second(x, i, ct, dist)
                guess = best
                labels[i] = best
                costs[i] = bd
                lower[i] = _lower32(np.sqrt(second))
            else:
                failed[nf] = i
                nf += 1
            continue
        best = a
        bd = ua2
        exact = True  # bd is the exact distance of best (else within rel of it)
        second = np.inf
        t = 0
        while t < m and ndist[a, t] - ca <= rho:
            c = nbr[a, t]
            if fast:
                s = _fast_sq(x, i, C, c)
                if s < bd * (1.0 - 4.0 * rel):  # certainly closer than best
                    second = min(second, bd)
                    bd = s
                    best = c
                    exact = False
                    t += 1
                    continue
                if s > bd * (1.0 + 4.0 * rel):  # certainly farther
                    second = min(second, s)
                    t += 1
                    continue
                if not exact:
                    bd = _exact(x, i, C, best)
                    exact = True
            s = _exact(x, i, C, c)
            if s < bd or (s == bd and c < best):
                second = min(second, bd)
                bd = s
                best = c
            else:
                second = min(second, s)
            t += 1
        if not exact:
            bd = _exact(x, i, C, best)
        second *= 1.0 - 2.0 * rel
        # Every center past the ball is at least (its gap to a) - u away.
        outside = ndist[a, t] - ca - ua if t < m else np.inf
        guess = best
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(min(np.sqrt(second), outside) * (1.0 - _MARGIN))
    return nf


def ball_phase(
    points: Any,
    centers: Float64Array,
    labels: NDArray[np.int32],
    lower: NDArray[np.float32],
    moves: Float64Array,
    costs: Float64Array,
    failed: NDArray[np.int64],
    fresh: bool,
) -> int:
    """Settle rows by Hamerly's test or the ball search; returns how many are listed in ``failed``.

    ``moves[j]``: how far center ``j`` moved since the bounds in ``lower`` were set (rounded up).

    ``fresh`` (no labels or bounds yet): every row starts from its predecessor's center,
    and a row whose ball does not fit is compared with every center directly.
    """
    d = centers.shape[1]
    table, corr = neighbors_of(centers)
    half_gap = np.maximum(0.5 * (table.dist[:, 0] - corr), 0.0)
    drop = moves[table.index].max(axis=1)  # the largest move among each center's listed neighbours
    ct = np.ascontiguousarray(centers.T) if fresh else np.zeros((1, 1))
    return int(
        _ball_phase(
            points,
            centers,
            ct,
            table.index,
            table.dist,
            corr,
            table.complete,
            fresh,
            d >= FAST_MIN_FEATURES,
            (2 * d + 4) * 2.0**-53,
            labels,
            lower,
            drop,
            half_gap,
            costs,
            failed,
        )
    )


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _full_rows(x: Any, ct: Any, rows: Any, labels: Any, lower: Any, costs: Any) -> None:  # pragma: no cover
    # The listed rows against every center, directly (the rows kernel's arithmetic).
    k = ct.shape[1]
    dist = np.empty(k, dtype=np.float64)
    for r in range(rows.shape[0]):
        i = rows[r]
        best, bd, second = _closest_and_second(x, i, ct, dist)
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(np.sqrt(second))


def full_rows(
    points: Any,
    centers: Float64Array,
    rows: NDArray[np.int64],
    labels: NDArray[np.int32],
    lower: NDArray[np.float32],
    costs: Float64Array,
) -> None:
    """Label ``rows`` by comparing them with every center directly; writes labels, costs, bounds."""
    if rows.shape[0]:
        _full_rows(points, np.ascontiguousarray(centers.T), rows, labels, lower, costs)
