"""k-means++ in memory: the cost update, the draw keys and the candidates' gains, compiled.

Per row the state is ``D`` (the exact squared distance to the closest chosen center) and
``near`` (that center). Rows are grouped by ``near``: group ``a`` is a segment of ``pool``
(row indices) with ``gmax[a] = max D`` over its rows, exact (recomputed whenever a step
takes rows from the group). The triangle inequality prunes: a point ``c`` with
``||c - c_a||² >= 4 D`` (a relative margin of 2e-9 keeps the test on the safe side of
rounding) cannot come closer than ``sqrt(D)``, so the row's cost stays ``D`` without
computing its distance, and a group with ``||c - c_a||² >= 4 gmax[a]`` is skipped whole: a
step touches only the rows of the groups near the new point. The values are those of the
unpruned computation: every distance that can matter is computed exactly,
``sum_j (x_j - c_j)²`` in float64 in feature order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from kmeans._kernels._common import _JIT
from kmeans._kernels.gemm import _exact
from kmeans._random import _splitmix_uniform
from kmeans._types import Float64Array, FloatArray

_PRUNE = 1.0 + 1e-9
_PRUNE2 = 4.0 * _PRUNE * _PRUNE  # the test ||c - c_a|| < 2 sqrt(D) PRUNE, squared

#: Components an exact sum of nonnegative float64 terms can need (nonoverlapping, each at
#: least one bit of the 2098 from 2^-1074 to 2^1024), with room to spare.
EXACT_PARTS = 2112


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sq_to_center(x: Any, c: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        out[i] = _exact(x, i, c, 0)


def sq_to_center(points: FloatArray, center: Float64Array) -> Float64Array:
    """``||x_i - c||²`` for every row, exactly as the L2 kernels compute it."""
    out = np.empty(points.shape[0], dtype=np.float64)
    _sq_to_center(points, np.ascontiguousarray(center, dtype=np.float64).reshape(1, -1), out)
    return out


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sq_gaps(chosen: Any, n_chosen: int, pts: Any, out: Any) -> None:  # pragma: no cover - compiled
    # out[a, q] = ||pts[q] - chosen[a]||² for the first n_chosen chosen centers.
    for a in range(n_chosen):
        for q in range(pts.shape[0]):
            s = 0.0
            for j in range(pts.shape[1]):
                t = pts[q, j] - chosen[a, j]
                s += t * t
            out[a, q] = s


def sq_gaps(chosen: Float64Array, n_chosen: int, pts: Float64Array) -> Float64Array:
    """``(n_chosen, len(pts))`` squared distances from each chosen center to each point."""
    out = np.empty((n_chosen, pts.shape[0]), dtype=np.float64)
    _sq_gaps(chosen, n_chosen, np.ascontiguousarray(pts, dtype=np.float64), out)
    return out


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _first(
    x: Any, D: Any, near: Any, pool: Any, gstart: Any, gcount: Any, gmax: Any, c: Any
) -> None:  # pragma: no cover - compiled
    mx = 0.0
    for i in range(x.shape[0]):
        d2 = _exact(x, i, c, 0)
        D[i] = d2
        near[i] = 0
        pool[i] = i
        mx = max(mx, d2)
    gstart[0] = 0
    gcount[0] = x.shape[0]
    gmax[0] = mx


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _compact(pool: Any, gstart: Any, gcount: Any, n_groups: int) -> int:  # pragma: no cover - compiled
    # The groups' segments moved to the front of pool, in group order; returns the fill.
    tmp = np.empty_like(pool)
    fill = 0
    for a in range(n_groups):
        s = gstart[a]
        for p in range(gcount[a]):
            tmp[fill + p] = pool[s + p]
        gstart[a] = fill
        fill += gcount[a]
    pool[:fill] = tmp[:fill]
    return fill


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _join(
    x: Any, D: Any, near: Any, pool: Any, gstart: Any, gcount: Any, gmax: Any, c: Any, j: int, gap2: Any, fill: int
) -> int:  # pragma: no cover - compiled
    # Center j takes the rows it is strictly closer to (ties keep the older center); they form
    # group j at pool[fill:], the groups they leave are compacted in place. Returns the new fill.
    # The rows of the groups within reach bound the movers: without room for them, the live
    # segments move to the front of pool first (amortized: pool holds twice the rows).
    reach = 0
    for a in range(j):
        if gcount[a] > 0 and gap2[a] < _PRUNE2 * gmax[a]:
            reach += gcount[a]
    if fill + reach > pool.shape[0]:
        fill = _compact(pool, gstart, gcount, j)
    m = fill
    for a in range(j):
        g = gap2[a]
        if gcount[a] == 0 or not g < _PRUNE2 * gmax[a]:
            continue
        s = gstart[a]
        keep = s
        mx = 0.0
        for p in range(s, s + gcount[a]):
            i = pool[p]
            di = D[i]
            if g < _PRUNE2 * di:
                d2 = _exact(x, i, c, 0)
                if d2 < di:
                    D[i] = d2
                    near[i] = j
                    pool[m] = i
                    m += 1
                    continue
            pool[keep] = i
            keep += 1
            mx = max(mx, di)
        gcount[a] = keep - s
        gmax[a] = mx
    mx = 0.0
    for p in range(fill, m):
        mx = max(mx, D[pool[p]])
    gstart[j] = fill
    gcount[j] = m - fill
    gmax[j] = mx
    return m


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _keys(
    w: Any, unit: bool, D: Any, seed: Any, start: int, m: int, rows: Any, keys: Any
) -> int:  # pragma: no cover - compiled
    # The draw keys -log(u) / (w D), the numbers of kmeans._random.exponential_keys of w * D,
    # of the rows that can be among the block's m smallest (and w D > 0), as (rows, keys); the
    # count is returned. -log(u) > 1 - u, so a row whose (1 - u) / (w D) is past the m-th
    # smallest key so far (with a margin for rounding) cannot be: its logarithm is never taken.
    top = np.full(m, np.inf)  # the m smallest keys so far; top[worst] is the largest of them
    worst = 0
    thr = np.inf  # top[worst]
    nk = 0
    for i in range(D.shape[0]):
        wd = (1.0 if unit else w[i]) * D[i]
        if wd > 0.0:
            u = _splitmix_uniform(seed, start + i)
            if 1.0 - u < thr * wd * _PRUNE:
                key = -np.log(u) / wd
                rows[nk] = i
                keys[nk] = key
                nk += 1
                if key < thr:
                    top[worst] = key
                    for q in range(m):
                        if top[q] > top[worst]:
                            worst = q
                    thr = top[worst]
    return nk


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _grow(parts: Any, n: int, x: float) -> int:  # pragma: no cover - compiled
    # parts[:n] + x as nonoverlapping components, smallest first (Shewchuk 1997, Python's msum).
    i = 0
    for p in range(n):
        y = parts[p]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            parts[i] = lo
            i += 1
        x = hi
    parts[i] = x
    return i + 1


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _exact_parts(terms: Any, parts: Any) -> int:  # pragma: no cover - compiled
    n = 0
    for t in range(terms.shape[0]):
        if terms[t] != 0.0:
            n = _grow(parts, n, terms[t])
    return n


def exact_parts(terms: Float64Array) -> Float64Array:
    """Float64 components whose exact sum is exactly ``sum(terms)`` (terms nonnegative, finite)."""
    parts = np.empty(EXACT_PARTS, dtype=np.float64)
    return parts[: _exact_parts(np.ascontiguousarray(terms, dtype=np.float64), parts)].copy()


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _gains(
    x: Any,
    w: Any,
    unit: bool,
    D: Any,
    pool: Any,
    gstart: Any,
    gcount: Any,
    gmax: Any,
    cands: Any,
    cgap2: Any,
    exact: bool,
    out: Any,
    parts: Any,
    nparts: Any,
) -> None:  # pragma: no cover - compiled
    # Per candidate q the terms w_i (D_i - d_iq) of the rows it is strictly closer to: summed
    # into out[q] in pool order, or (exact) into the components parts[q, :nparts[q]].
    # cgap2[a, q] = ||cands_q - chosen_a||²; groups and rows that no candidate can reach are skipped.
    L = cands.shape[0]
    touch = np.empty(L, dtype=np.int64)
    for a in range(cgap2.shape[0]):
        if gcount[a] == 0:
            continue
        lim = _PRUNE2 * gmax[a]
        nt = 0
        for q in range(L):
            if cgap2[a, q] < lim:
                touch[nt] = q
                nt += 1
        if nt == 0:
            continue
        s = gstart[a]
        for p in range(s, s + gcount[a]):
            i = pool[p]
            di = D[i]
            li = _PRUNE2 * di
            for t in range(nt):
                q = touch[t]
                if cgap2[a, q] < li:
                    d2 = _exact(x, i, cands, q)
                    if d2 < di:
                        term = (1.0 if unit else w[i]) * (di - d2)
                        if exact:
                            nparts[q] = _grow(parts[q], nparts[q], term)
                        else:
                            out[q] += term


class SeedingState:
    """One block's k-means++ state (see the module docstring), for up to ``k`` chosen centers."""

    __slots__ = ("D", "fill", "gcount", "gmax", "gstart", "n_groups", "near", "pool")

    def __init__(self, n: int, k: int) -> None:
        self.D = np.full(n, np.inf)
        self.near = np.full(n, -1, dtype=np.int32)
        self.pool = np.empty(2 * n + 1, dtype=np.int32)  # room for the live segments and n movers
        self.gstart = np.zeros(max(k, 1), dtype=np.int64)
        self.gcount = np.zeros(max(k, 1), dtype=np.int64)
        self.gmax = np.zeros(max(k, 1), dtype=np.float64)
        self.fill = 0
        self.n_groups = 0

    def add_center(self, points: FloatArray, center: Float64Array, gap2: Float64Array) -> None:
        """Take the next chosen center into ``D`` (``gap2[a]`` its squared distance to chosen center ``a``)."""
        c = np.ascontiguousarray(center, dtype=np.float64).reshape(1, -1)
        j = self.n_groups
        n = points.shape[0]
        if j == 0:
            _first(points, self.D, self.near, self.pool, self.gstart, self.gcount, self.gmax, c)
            self.fill = n
        else:
            args = (self.pool, self.gstart, self.gcount, self.gmax, c, j, gap2, self.fill)
            self.fill = _join(points, self.D, self.near, *args)
        self.n_groups = j + 1

    def draw_keys(
        self, w: Float64Array, unit: bool, seed: int, start: int, m: int
    ) -> tuple[np.ndarray[Any, np.dtype[np.int64]], Float64Array]:
        """``(rows, keys)``: a superset of the block's ``m`` smallest draw keys (the others are ``+inf``)."""
        n = self.D.shape[0]
        rows = np.empty(n, dtype=np.int64)
        keys = np.empty(n, dtype=np.float64)
        nk = _keys(w, unit, self.D, np.uint64(seed & ((1 << 64) - 1)), start, m, rows, keys)
        return rows[:nk], keys[:nk]

    def gains(
        self, points: FloatArray, w: Float64Array, unit: bool, cands: Float64Array, cgap2: Float64Array
    ) -> Float64Array:
        """``sum_i w_i (D_i - min(D_i, ||x_i - cand||²))`` per candidate over this block (pool order)."""
        out = np.zeros(cands.shape[0], dtype=np.float64)
        dummy = np.zeros((1, 1), dtype=np.float64)
        self._gains(points, w, unit, cands, cgap2, False, out, dummy, np.zeros(1, dtype=np.int64))
        return out

    def exact_gains(
        self, points: FloatArray, w: Float64Array, unit: bool, cands: Float64Array, cgap2: Float64Array
    ) -> list[Float64Array]:
        """Per candidate, components whose exact sum is the exact sum of its gain terms over this block."""
        L = cands.shape[0]
        parts = np.empty((L, EXACT_PARTS), dtype=np.float64)
        nparts = np.zeros(L, dtype=np.int64)
        self._gains(points, w, unit, cands, cgap2, True, np.zeros(L), parts, nparts)
        return [parts[q, : nparts[q]].copy() for q in range(L)]

    def _gains(
        self, points: FloatArray, w: Float64Array, unit: bool, cands: Float64Array, cgap2: Float64Array, *rest: Any
    ) -> None:
        cands = np.ascontiguousarray(cands, dtype=np.float64)
        groups = (self.pool, self.gstart, self.gcount, self.gmax)
        _gains(points, w, unit, self.D, *groups, cands, np.ascontiguousarray(cgap2), *rest)
