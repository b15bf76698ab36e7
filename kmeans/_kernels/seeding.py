"""k-means++ in memory: the cost update, the draw keys and the candidates' potentials, compiled.

Per row the state is ``D`` (the exact squared distance to the closest chosen center) and
``near`` (that center). The triangle inequality prunes: a center ``c`` with
``||c - c_near|| >= 2 sqrt(D)`` cannot come closer than ``sqrt(D)`` (a relative margin of
1e-9 keeps the test on the safe side of rounding), so the row's cost stays ``D`` without
computing its distance. The values are those of the unpruned computation: every distance
that can matter is computed exactly, ``sum_j (x_j - c_j)²`` in float64 in feature order.
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
def _gaps(chosen: Any, n_chosen: int, cands: Any, out: Any) -> None:  # pragma: no cover - compiled
    # out[l, a] = ||cands[l] - chosen[a]|| for the first n_chosen chosen centers.
    for q in range(cands.shape[0]):
        for a in range(n_chosen):
            s = 0.0
            for j in range(cands.shape[1]):
                t = cands[q, j] - chosen[a, j]
                s += t * t
            out[q, a] = np.sqrt(s)


def gaps_to_chosen(chosen: Float64Array, n_chosen: int, cands: Float64Array) -> Float64Array:
    """``(len(cands), n_chosen)`` distances from each candidate to each chosen center."""
    out = np.empty((cands.shape[0], max(n_chosen, 1)), dtype=np.float64)
    _gaps(chosen, n_chosen, np.ascontiguousarray(cands, dtype=np.float64), out)
    return out


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _add_center(
    x: Any, w: Any, unit: bool, D: Any, near: Any, c: Any, j: int, gaps: Any, seed: Any, start: int, m: int, keys: Any
) -> None:  # pragma: no cover - compiled
    # D = min(D, ||x - c||²) (near follows), then the draw keys -log(u) / (w D), the numbers of
    # kmeans._random.exponential_keys of w * D, for the rows that can be among the block's m
    # smallest; +inf for the others (and for w D = 0). -log(u) > 1 - u, so a row whose
    # (1 - u) / (w D) is past the m-th smallest key so far (with a margin for rounding) cannot
    # be: its logarithm is never taken.
    top = np.full(m, np.inf)  # the m smallest keys so far; top[worst] is the largest of them
    worst = 0
    for i in range(x.shape[0]):
        a = near[i]
        di = D[i]
        if a < 0 or gaps[a] < 2.0 * np.sqrt(di) * _PRUNE:
            d2 = _exact(x, i, c, 0)
            if d2 < di:
                di = d2
                D[i] = d2
                near[i] = j
        wd = (1.0 if unit else w[i]) * di
        keys[i] = np.inf
        if wd > 0.0:
            u = _splitmix_uniform(seed, start + i)
            if 1.0 - u < top[worst] * wd * _PRUNE:
                key = -np.log(u) / wd
                keys[i] = key
                if key < top[worst]:
                    top[worst] = key
                    for q in range(m):
                        if top[q] > top[worst]:
                            worst = q


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _potentials(
    x: Any, w: Any, unit: bool, D: Any, near: Any, cands: Any, gaps: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # out[l] = sum_i w_i min(D_i, ||x_i - cands_l||²), rows in order for every candidate.
    L = cands.shape[0]
    for i in range(x.shape[0]):
        a = near[i]
        di = D[i]
        wi = 1.0 if unit else w[i]
        r = 2.0 * np.sqrt(di) * _PRUNE
        for q in range(L):
            v = di
            if gaps[q, a] < r:
                v = min(di, _exact(x, i, cands, q))
            out[q] += wi * v


class SeedingState:
    """One block's k-means++ state: ``D`` and ``near`` per row (see the module docstring)."""

    __slots__ = ("D", "near")

    def __init__(self, n: int) -> None:
        self.D = np.full(n, np.inf)
        self.near = np.full(n, -1, dtype=np.int32)

    def add_center(
        self,
        points: FloatArray,
        w: Float64Array,
        unit: bool,
        center: Float64Array,
        j: int,
        gaps: Float64Array,
        seed: int,
        start: int,
        m: int,
    ) -> Float64Array:
        """Take chosen center ``j`` into ``D``; the keys of the next draw of ``m`` rows (``gaps`` to the chosen).

        Keys of rows that cannot be among this block's ``m`` smallest are ``+inf``.
        """
        keys = np.empty(points.shape[0], dtype=np.float64)
        _add_center(
            points,
            w,
            unit,
            self.D,
            self.near,
            np.ascontiguousarray(center, dtype=np.float64).reshape(1, -1),
            j,
            gaps,
            np.uint64(seed & ((1 << 64) - 1)),
            start,
            m,
            keys,
        )
        return keys

    def potentials(
        self, points: FloatArray, w: Float64Array, unit: bool, cands: Float64Array, gaps: Float64Array
    ) -> Float64Array:
        """``sum_i w_i min(D_i, ||x_i - cand||²)`` per candidate, over this block."""
        out = np.zeros(cands.shape[0], dtype=np.float64)
        _potentials(points, w, unit, self.D, self.near, np.ascontiguousarray(cands, dtype=np.float64), gaps, out)
        return out
