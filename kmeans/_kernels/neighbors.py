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
from kmeans._kernels.assign import _closest_sqeuclidean
from kmeans._kernels.bounds import _MARGIN, _kept, _lower32
from kmeans._kernels.gemm import _exact
from kmeans._types import Float64Array

#: Neighbours kept per center: balls larger than this take the full path.
MAX_NEIGHBORS = 128


class CenterNeighbors:
    """For every center ``a``, its ``M`` nearest other centers: ``index[a]`` and ``dist[a]`` ascending.

    ``dist`` is rounded *down* past the rounding of its computation, so it never
    overstates a gap; ``complete`` is True when ``M = k - 1`` (every other center listed).
    """

    __slots__ = ("centers", "complete", "dist", "index")

    def __init__(self, centers: Float64Array, max_neighbors: int = MAX_NEIGHBORS) -> None:
        k, d = centers.shape
        self.centers = centers.copy()
        m = max(1, min(k - 1, max_neighbors))
        self.complete = m == k - 1
        c = centers - centers.mean(axis=0)
        sq = np.einsum("ij,ij->i", c, c)
        gaps = sq[:, None] + sq[None, :] - 2.0 * (c @ c.T)
        radius = np.sqrt(sq)
        # |computed - exact| <= (d + 8) 2**-53 (|c_a| + |c_b|)² for the float64 expansion.
        gaps -= (d + 8) * 2.0**-53 * 1.01 * (radius[:, None] + radius[None, :]) ** 2
        np.fill_diagonal(gaps, np.inf)
        part = np.argpartition(gaps, m - 1, axis=1)[:, :m] if m < k - 1 else np.argsort(gaps, axis=1)[:, :m]
        near = np.take_along_axis(gaps, part, axis=1)
        order = np.argsort(near, axis=1, kind="stable")
        self.index = np.ascontiguousarray(np.take_along_axis(part, order, axis=1), dtype=np.int64)
        self.dist = np.ascontiguousarray(
            np.sqrt(np.maximum(np.take_along_axis(near, order, axis=1), 0.0)) * (1.0 - _MARGIN)
        )

    def half_gap(self) -> Float64Array:
        """Half the distance from each center to its nearest other center (rounded down)."""
        out: Float64Array = 0.5 * self.dist[:, 0]
        return out


_cache_lock = threading.Lock()
_cache: list[CenterNeighbors] = []


def neighbors_of(centers: Float64Array) -> CenterNeighbors:
    """The table of ``centers``, computed once per pass (blocks of one pass share it)."""
    with _cache_lock:
        for table in _cache:
            if table.centers.shape == centers.shape and np.array_equal(table.centers, centers):
                return table
    table = CenterNeighbors(centers)
    with _cache_lock:
        _cache[:] = [table]
    return table


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _ball_phase(
    x: Any,
    C: Any,
    nbr: Any,
    ndist: Any,
    complete: bool,
    labels: Any,
    lower: Any,
    drop: Any,
    half_gap: Any,
    costs: Any,
    failed: Any,
) -> int:  # pragma: no cover - compiled
    # Hamerly's test, then the ball search; rows neither settles are listed in ``failed``.
    m = nbr.shape[1]
    nf = 0
    for i in range(x.shape[0]):
        a = labels[i]
        ua2 = _exact(x, i, C, a)
        low = np.float64(lower[i]) - drop[a]
        if _kept(ua2, lower, i, a, drop, half_gap):
            costs[i] = ua2
            continue
        ua = np.sqrt(ua2) * (1.0 + _MARGIN)
        rho = (2.0 * ua + max(low, 0.0)) * (1.0 + _MARGIN)
        if not complete and not rho < ndist[a, m - 1]:
            failed[nf] = i
            nf += 1
            continue
        best = a
        bd = ua2
        second = np.inf
        t = 0
        while t < m and ndist[a, t] <= rho:
            c = nbr[a, t]
            s = _exact(x, i, C, c)
            if s < bd or (s == bd and c < best):
                second = min(second, bd)
                bd = s
                best = c
            else:
                second = min(second, s)
            t += 1
        # Every center past the ball is at least (its gap to a) - u away.
        outside = ndist[a, t] - ua if t < m else np.inf
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(min(np.sqrt(second), outside) * (1.0 - _MARGIN))
    return nf


def ball_phase(
    points: Any,
    centers: Float64Array,
    table: CenterNeighbors,
    labels: NDArray[np.int32],
    lower: NDArray[np.float32],
    drop: Float64Array,
    costs: Float64Array,
    failed: NDArray[np.int64],
) -> int:
    """Settle rows by Hamerly's test or the ball search; returns how many are listed in ``failed``."""
    return int(
        _ball_phase(
            points,
            centers,
            table.index,
            table.dist,
            table.complete,
            labels,
            lower,
            drop,
            table.half_gap(),
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
        best, bd = _closest_sqeuclidean(x, i, ct, dist)
        second = np.inf
        for c in range(k):
            if c != best:
                second = min(second, dist[c])
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
