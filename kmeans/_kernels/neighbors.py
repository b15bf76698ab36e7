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
from kmeans._kernels.gemm import FAST_MIN_FEATURES, _exact, _fast_sq, fast_rel
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


@njit(**{**_JIT, "fastmath": {"reassoc", "nsz", "nnan"}})  # type: ignore[untyped-decorator]
def _refresh(c: Any, index: Any, new_index: Any, dist: Any) -> None:  # pragma: no cover - compiled
    # For every center a: the gaps to its listed neighbours, sorted ascending (insertion sort:
    # the previous order is nearly right), rounded down past the rounding of the sum. The sum
    # may be reassociated (it vectorizes): its error, at most (d + 2) 2**-53 of the gap, is far
    # inside the margin, and a gap only bounds the search, so the labels do not depend on it.
    k, m = index.shape
    d = c.shape[1]
    for a in range(k):
        for t in range(m):
            b = index[a, t]
            s = 0.0
            for j in range(d):
                u = c[a, j] - c[b, j]
                s += u * u
            g = np.sqrt(s) * (1.0 - _MARGIN)
            q = t
            while q > 0 and dist[a, q - 1] > g:
                dist[a, q] = dist[a, q - 1]
                new_index[a, q] = new_index[a, q - 1]
                q -= 1
            dist[a, q] = g
            new_index[a, q] = b


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _insert(sd: Any, si: Any, n: int, m: int, v: float, b: int) -> int:  # pragma: no cover - compiled
    # Insert (v, b) into the ascending list sd/si of length n, keeping at most m; returns the length.
    if n == m:
        if not (v < sd[m - 1] or (v == sd[m - 1] and b < si[m - 1])):
            return n
        n -= 1
    q = n
    while q > 0 and (sd[q - 1] > v or (sd[q - 1] == v and si[q - 1] > b)):
        sd[q] = sd[q - 1]
        si[q] = si[q - 1]
        q -= 1
    sd[q] = v
    si[q] = b
    return n + 1


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _rebuild(c: Any, ct: Any, hint: Any, index: Any, dist: Any, a0: int, a1: int) -> None:  # pragma: no cover
    # The M nearest other centers of each center a0 <= a < a1 (ties by index), from the exact squared
    # gaps g: the centers listed in hint[a] go in first (nearly in order, so the insertion
    # sort is short); the others compete only when g is below the M-th smallest so far.
    k, m = hint.shape
    d = c.shape[1]
    g = np.empty(k, dtype=np.float64)
    sd = np.empty(m, dtype=np.float64)
    si = np.empty(m, dtype=np.int64)
    stamp = np.full(k, -1, dtype=np.int64)
    cand = np.empty(k, dtype=np.int64)
    for a in range(a0, a1):
        g[:] = 0.0
        for j in range(d):  # feature by feature over all b (vectorizes; the same sums in feature order)
            caj = c[a, j]
            for b in range(k):
                u = caj - ct[j, b]
                g[b] += u * u
        n = 0
        for t in range(m):
            b = hint[a, t]
            stamp[b] = a
            n = _insert(sd, si, n, m, g[b], b)
        stamp[a] = a
        top = sd[m - 1]
        nc = 0
        for b in range(k):  # branch-free: the few below the M-th gap so far, in index order
            cand[nc] = b
            nc += g[b] <= top
        for q in range(nc):
            b = cand[q]
            if stamp[b] != a and g[b] <= sd[m - 1]:
                n = _insert(sd, si, n, m, g[b], b)
        for t in range(m):
            index[a, t] = si[t]
            dist[a, t] = np.sqrt(sd[t]) * (1.0 - _MARGIN)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _listed_max(moves: Any, index: Any, out: Any) -> None:  # pragma: no cover - compiled
    # out[a] = max_t moves[index[a, t]]: the largest move among a's listed neighbours.
    for a in range(index.shape[0]):
        top = 0.0
        for t in range(index.shape[1]):
            top = max(top, moves[index[a, t]])
        out[a] = top


class CenterNeighbors:
    """For every center ``a``, ``M`` other centers ``index[a]`` with their gaps ``dist[a]``, ascending.

    Every center that is not listed is at least ``outer[a]`` away from ``a``; ``dist`` and
    ``outer`` are rounded *down* past the rounding of their computation, so they never
    overstate a gap; ``complete`` is True when ``M = k - 1`` (every other center listed,
    ``outer = inf``). A table is *built* with the ``M`` nearest neighbours (then
    ``outer[a] = dist[a, M-1]``) and *refreshed* for moved centers
    (:meth:`refreshed`): the same lists with their gaps recomputed, and ``outer`` lowered by the
    drifts since the build.
    """

    __slots__ = (
        "built",
        "built_outer",
        "centers",
        "complete",
        "dist",
        "drift",
        "half_gap",
        "index",
        "outer",
        "typical_gap",
    )

    def __init__(self, centers: Float64Array, max_neighbors: int = MAX_NEIGHBORS) -> None:
        k, d = centers.shape
        self.centers = centers.copy()
        self.built = self.centers
        m = max(1, min(k - 1, max_neighbors))
        self.complete = m == k - 1
        self.index = np.zeros((k, m), dtype=np.int64)
        self.dist = np.zeros((k, m), dtype=np.float64)
        self.drift = 0.0
        self.typical_gap = 0.0
        if k < 2:
            self.dist[:] = np.inf
            self._finish(np.full(k, np.inf))
            self.built_outer = self.outer
            return
        c = np.ascontiguousarray(centers - centers.mean(axis=0))
        sq = np.einsum("ij,ij->i", c, c)
        radius = np.sqrt(sq)
        gaps = np.empty((min(_GAP_ROWS, k), k), dtype=np.float64)
        for s in range(0, k, _GAP_ROWS):
            rows = np.arange(s, min(s + _GAP_ROWS, k), dtype=np.int64)
            g = gaps[: rows.shape[0]]
            if d <= _DIRECT_GAP_FEATURES:  # unshifted: the shift's rounding would swamp tiny gaps
                _direct_gaps(np.ascontiguousarray(centers, dtype=np.float64), rows, g)
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
        self._finish(np.full(k, np.inf) if self.complete else self.dist[:, m - 1].copy())
        self.built_outer = self.outer

    def _finish(self, outer: Float64Array) -> None:
        self.outer = outer
        #: Half the gap from each center to its nearest other center (a lower bound).
        self.half_gap = 0.5 * np.minimum(self.dist[:, 0], outer)

    def refreshed(self, centers: Float64Array) -> CenterNeighbors:
        """A table for moved ``centers`` (same shape): the same lists, gaps recomputed, ``outer`` lowered.

        Every center ``j`` not listed for ``a`` was at least ``built_outer[a]`` away at the
        build, so now it is at least ``built_outer[a] - drift_a - max_{j != a} drift_j``
        (drifts since the build, rounded up). The refreshed lists are sorted again;
        ``O(k M d)`` against the build's ``O(k² d)``.
        """
        new = object.__new__(CenterNeighbors)
        new.centers = centers.copy()
        new.built, new.built_outer, new.complete = self.built, self.built_outer, self.complete
        new.typical_gap, new.drift = self.typical_gap, 0.0
        new.index = self.index.copy()
        new.dist = np.empty_like(self.dist)
        _refresh(new.centers, self.index, new.index, new.dist)
        outer = self.built_outer
        if not self.complete:
            drift = center_shifts(self.built, new.centers)
            new.drift = float(drift.max())
            outer = np.maximum((outer - (drift + largest_other(drift)) * (1.0 + _MARGIN)) * (1.0 - _MARGIN), 0.0)
        new._finish(outer)
        return new

    def rebuilt(self, centers: Float64Array) -> CenterNeighbors:
        """A fresh build for ``centers`` (same shape) by direct gaps, with this table's lists as the hint."""
        return _Rebuild(self, centers).work()

    def listed_max(self, moves: Float64Array) -> Float64Array:
        """``max_t moves[index[a, t]]`` per center ``a``."""
        out = np.empty(self.index.shape[0], dtype=np.float64)
        _listed_max(np.ascontiguousarray(moves, dtype=np.float64), self.index, out)
        return out


class _Rebuild:
    """A direct rebuild in progress, shared by the threads of a pass.

    Every thread that needs the table takes shares of its centers until none is left
    (each center's list depends on the centers alone, so any split gives the same
    table), then waits until the last share is done.
    """

    __slots__ = ("centers", "ct", "done", "error", "hint", "left", "lock", "next", "table")

    def __init__(self, old: CenterNeighbors, centers: Float64Array) -> None:
        new = object.__new__(CenterNeighbors)
        new.centers = centers.copy()
        new.built, new.complete, new.drift = new.centers, old.complete, 0.0
        new.index = np.empty_like(old.index)
        new.dist = np.empty_like(old.dist)
        self.table, self.centers, self.hint = new, new.centers, old.index
        self.ct = np.ascontiguousarray(new.centers.T)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.next, self.left = 0, centers.shape[0]
        self.error: BaseException | None = None

    def work(self) -> CenterNeighbors:
        """Build shares until none is left; the table once every share is built."""
        k = self.centers.shape[0]
        share = max(16, -(-k // 16))
        try:
            while True:
                with self.lock:
                    a0 = self.next
                    if a0 >= k or self.error is not None:
                        break
                    a1 = self.next = min(k, a0 + share)
                _rebuild(self.centers, self.ct, self.hint, self.table.index, self.table.dist, a0, a1)
                with self.lock:
                    self.left -= a1 - a0
                    last = self.left == 0
                if last:
                    new = self.table
                    new.typical_gap = float(np.median(new.dist[:, 0]))
                    new._finish(np.full(k, np.inf) if new.complete else new.dist[:, -1].copy())
                    new.built_outer = new.outer
                    self.done.set()
        except BaseException as exc:  # a claimed share never completes: nobody may wait for it
            with self.lock:
                if self.error is None:
                    self.error = exc
            self.done.set()
            raise
        self.done.wait()
        if self.error is not None:
            raise RuntimeError("the neighbour table's rebuild failed in another thread") from self.error
        return self.table


_cache_lock = threading.Lock()  # held while a table is looked up, refreshed or built
_cache: list[CenterNeighbors] = []
_building: list[_Rebuild] = []  # the rebuild in progress, if any

#: A refreshed table is rebuilt once a center has drifted by more than this fraction of
#: the median gap between neighbouring centers since the build (its ``outer`` bounds
#: weaken with the drifts; a refreshed table stays valid, only weaker).
REBUILD_DRIFT = 0.5
#: Up to this many ``k² d`` operations (and 16 features) a table is built afresh for every new
#: set of centers, by direct gaps with the last table's lists bounding the search.
DIRECT_REBUILD_BUDGET = 1 << 24


def neighbors_of(centers: Float64Array) -> CenterNeighbors:
    """A neighbour table for ``centers``: built, or refreshed from the last one of the same shape.

    A pass's blocks, and the passes of a run while the centers settle, share one build:
    later passes refresh it (:meth:`CenterNeighbors.refreshed`) until its ``outer``
    bounds have weakened too much. Tables are never changed once made (a reader may
    hold an old one); one thread refreshes or builds a table while the others of the same
    pass wait, and a direct rebuild is shared by the threads that need it.
    """
    with _cache_lock:
        table = _cache[0] if _cache and _cache[0].centers.shape == centers.shape else None
        if table is None:
            table = CenterNeighbors(centers, MAX_NEIGHBORS)
            _cache[:] = [table]
            return table
        if np.array_equal(table.centers, centers):
            return table
        k, d = centers.shape
        if d > _DIRECT_GAP_FEATURES or k * k * d > DIRECT_REBUILD_BUDGET:
            table = table.refreshed(centers)
            if not (table.complete or table.drift <= REBUILD_DRIFT * table.typical_gap):
                table = CenterNeighbors(centers, MAX_NEIGHBORS)
            _cache[:] = [table]
            return table
        if _building and np.array_equal(_building[0].centers, centers):
            build = _building[0]
        else:
            build = _Rebuild(table, centers)
            _building[:] = [build]
    try:
        new = build.work()  # outside the lock: the pass's other threads take shares too
    finally:
        with _cache_lock:
            if _building and _building[0] is build:
                _building.clear()
                if build.error is None:
                    _cache[:] = [build.table]
    return new


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _ball_phase(
    x: Any,
    C: Any,
    ct: Any,
    nbr: Any,
    ndist: Any,
    outer: Any,
    complete: bool,
    fresh: bool,
    fast: bool,
    wide: bool,
    rel: float,
    labels: Any,
    lower: Any,
    drop: Any,
    half_gap: Any,
    costs: Any,
    failed: Any,
    bins: int,
    grid_lo: Any,
    grid_scale: Any,
    grid_label: Any,
) -> int:  # pragma: no cover - compiled
    # Hamerly's test, then the ball search; rows neither settles are listed in ``failed``.
    # Centers not listed for a are at least outer[a] from it. ``fresh``:
    # no labels yet, so the previous row's center is the guess (sorted or clustered rows
    # are usually close to their predecessor); a row whose ball does not fit is then
    # compared with every center at once, so the next row's guess is right.
    m = nbr.shape[1]
    k = ct.shape[1]
    dist = np.empty(k, dtype=np.float64)
    nf = 0
    guess = 0
    cell = 0
    for i in range(x.shape[0]):
        low = 0.0
        if fresh:
            if bins:  # the center found last for a row of the same grid cell, if any (fresh passes only)
                cell = 0
                for j in range(x.shape[1]):
                    v = int((np.float64(x[i, j]) - grid_lo[j]) * grid_scale[j])
                    cell = cell * bins + min(max(v, 0), bins - 1)
                if grid_label[cell] >= 0:
                    guess = grid_label[cell]
            a = guess
            ua2 = _exact(x, i, C, a)
        else:
            a = labels[i]
            ua2 = _exact(x, i, C, a)
            # Only the listed neighbours' moves lower the bound (drop[a]); every center not listed
            # is at least outer[a] - u away whatever it did. (A tighter drop over the neighbours
            # within lower + u settled more rows but cost more than it saved: measured.)
            low = np.float64(lower[i]) - drop[a]
            if not complete:
                low = min(low, outer[a] - np.sqrt(ua2) * (1.0 + _MARGIN))
            bound = min(max(low, half_gap[a]), _BOUND_MAX)
            if bound >= _BOUND_MIN and ua2 < bound * bound * (1.0 - _MARGIN):
                costs[i] = ua2
                lower[i] = _lower32(low)
                continue
        ua = np.sqrt(ua2) * (1.0 + _MARGIN)
        # Centers closer than c_a are within 2u of it. Every center past the ball is at least
        # rho - u away: searching to u + low keeps the new lower bound no weaker than low; with
        # many features (``wide``) to 2u + low (tighter bounds pay there, measured).
        if wide:
            rho = (2.0 * ua + max(low, 0.0)) * (1.0 + _MARGIN)
        else:
            rho = max(2.0 * ua, ua + max(low, 0.0)) * (1.0 + _MARGIN)
        if not complete and not rho < outer[a]:
            if fresh:
                best, bd, second = _closest_and_second(x, i, ct, dist)
                guess = best
                if bins:
                    grid_label[cell] = best
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
        while t < m and ndist[a, t] <= rho:
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
        outside = (min(ndist[a, t], outer[a]) if t < m else outer[a]) - ua
        guess = best
        if bins:
            grid_label[cell] = best
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(min(np.sqrt(second), outside) * (1.0 - _MARGIN))
    return nf


#: Up to this many features the ball reaches u + low past the row's center, above it 2u + low.
NARROW_MAX_FEATURES = 8


#: A fresh pass over rows with at most this many features, and at least GRID_MIN_CENTERS
#: centers, starts each row from the center found last in its cell of a grid of about
#: GRID_CELLS cells over the rows' bounding box (else from its predecessor's center).
GRID_MAX_FEATURES = 3
GRID_MIN_CENTERS = 512
GRID_CELLS = 1 << 15
_NO_GRID = (0, np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))


def _guess_grid(points: Any, k: int) -> tuple[int, Float64Array, Float64Array, NDArray[np.int64]]:
    """``(bins, lo, scale, labels)``: cells per feature (0: no grid), the box's corner, cells
    per unit, and a label per cell (-1: none yet)."""
    n, d = points.shape
    if d > GRID_MAX_FEATURES or k < GRID_MIN_CENTERS or n == 0:
        return _NO_GRID
    bins = max(1, int(GRID_CELLS ** (1.0 / d)))
    lo = np.asarray(points.min(axis=0), dtype=np.float64)
    span = np.asarray(points.max(axis=0), dtype=np.float64) - lo
    with np.errstate(divide="ignore", over="ignore"):
        scale = np.where((span > 0) & np.isfinite(bins / span), bins / span, 0.0)
    return bins, lo, scale, np.full(bins**d, -1, dtype=np.int64)


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
    table = neighbors_of(centers)
    drop = table.listed_max(moves)  # the largest move among each center's listed neighbours
    ct = np.ascontiguousarray(centers.T) if fresh else np.zeros((1, 1))
    bins, lo, scale, cells = _guess_grid(points, centers.shape[0]) if fresh else _NO_GRID
    return int(
        _ball_phase(
            points,
            centers,
            ct,
            table.index,
            table.dist,
            table.outer,
            table.complete,
            fresh,
            d >= FAST_MIN_FEATURES,
            d > NARROW_MAX_FEATURES,
            fast_rel(d),
            labels,
            lower,
            drop,
            table.half_gap,
            costs,
            failed,
            bins,
            lo,
            scale,
            cells,
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
