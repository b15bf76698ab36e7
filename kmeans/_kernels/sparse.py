"""Squared Euclidean distances of sparse rows (:class:`kmeans.sparse.SparseRows`) to dense centers.

The reference is the dense kernels' ``D = sum_f (x_f - c_f)²`` over all ``d`` features,
in float64 in feature order; computing it costs ``O(d)`` per row and center, which sparse
data cannot afford. Over a row's support ``S`` (its stored values) the kernel computes, in
``O(|S|)`` per center and without cancellation in the first term,

    ``D̃ = sum_{f in S} (x_f - c_f)² + max(0, ||c||² - sum_{f in S} c_f²)``

(the second term is the centers' mass off the support; it is exact when the center is a
row of the data, as seeded centers are). With ``eps = 2.02·(d + 4)·2⁻⁵³ / (1 - (d + 4)·2⁻⁵³)``,
both ``D̃`` and the reference are within ``E = eps·(D̃ + 2||c||²) + abs`` of the real value,
so the closest center is among ``{j : D̃_j - E_j <= min_l (D̃_l + E_l)}``; a row with one
candidate takes it (cost ``D̃``), otherwise the candidates' reference distances are computed
in ``O(d)`` each and compared (the lowest index on ties). Labels therefore equal the dense
kernels' labels; costs equal theirs up to rounding (``E``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from kmeans._kernels._common import _JIT, _unit_or_array
from kmeans._types import Float64Array, IntArray


def error_factor(d: int) -> tuple[float, float]:
    """``(eps, abs)`` of the module docstring's bound."""
    n = d + 4
    return 2.02 * n * 2.0**-53 / (1.0 - n * 2.0**-53), 4.0 * n * 2.0**-1074


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _center_sq(C: Any, out: Any) -> None:  # pragma: no cover - compiled
    for c in range(C.shape[0]):
        s = 0.0
        for f in range(C.shape[1]):
            s += C[c, f] * C[c, f]
        out[c] = s


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _support(
    data: Any, indices: Any, s: int, e: int, CT: Any, cc: Any, a: Any, b: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # out[c] = sum_S (x_f - c_f)² + max(0, ||c||² - sum_S c_f²), stored values in index order.
    k = CT.shape[1]
    for c in range(k):
        a[c] = 0.0
        b[c] = 0.0
    for p in range(s, e):
        v = np.float64(data[p])
        row = indices[p]
        for c in range(k):
            t = v - CT[row, c]
            a[c] += t * t
            b[c] += CT[row, c] * CT[row, c]
    for c in range(k):
        out[c] = a[c] + max(0.0, cc[c] - b[c])


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _reference(data: Any, indices: Any, s: int, e: int, C: Any, c: int) -> float:  # pragma: no cover - compiled
    # sum_f (x_f - c_f)² over all features in feature order, as the dense kernels compute it.
    total = 0.0
    p = s
    for f in range(C.shape[1]):
        x = 0.0
        if p < e and indices[p] == f:
            x = np.float64(data[p])
            p += 1
        t = x - C[c, f]
        total += t * t
    return total


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _assign(
    data: Any, indices: Any, indptr: Any, C: Any, CT: Any, cc: Any, eps: float, abs_err: float, labels: Any, costs: Any
) -> int:  # pragma: no cover - compiled
    k = C.shape[0]
    a = np.empty(k)
    b = np.empty(k)
    dist = np.empty(k)
    rechecked = 0
    for i in range(indptr.shape[0] - 1):
        s, e = indptr[i], indptr[i + 1]
        _support(data, indices, s, e, CT, cc, a, b, dist)
        upper = np.inf
        for c in range(k):
            upper = min(upper, dist[c] + eps * (dist[c] + 2.0 * cc[c]) + abs_err)
        nc = 0
        first = 0
        for c in range(k):
            if dist[c] - eps * (dist[c] + 2.0 * cc[c]) - abs_err <= upper:
                if nc == 0:
                    first = c
                nc += 1
        best = first
        bd = dist[first]
        if nc > 1:
            rechecked += 1
            bd = np.inf
            for c in range(first, k):
                if dist[c] - eps * (dist[c] + 2.0 * cc[c]) - abs_err <= upper:
                    r = _reference(data, indices, s, e, C, c)
                    if r < bd:
                        bd = r
                        best = c
        labels[i] = best
        costs[i] = bd
    return rechecked


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _pairwise(data: Any, indices: Any, indptr: Any, CT: Any, cc: Any, out: Any) -> None:  # pragma: no cover
    k = CT.shape[1]
    a = np.empty(k)
    b = np.empty(k)
    for i in range(indptr.shape[0] - 1):
        _support(data, indices, indptr[i], indptr[i + 1], CT, cc, a, b, out[i])


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sums(
    data: Any, indices: Any, indptr: Any, w: Any, unit: bool, labels: Any, sums: Any, wsum: Any
) -> None:  # pragma: no cover - compiled
    for i in range(indptr.shape[0] - 1):
        c = labels[i]
        wi = 1.0 if unit else w[i]
        wsum[c] += wi
        for p in range(indptr[i], indptr[i + 1]):
            sums[c, indices[p]] += wi * np.float64(data[p])


def _prepared(centers: Float64Array) -> tuple[Float64Array, Float64Array, Float64Array]:
    C = np.ascontiguousarray(centers, dtype=np.float64)
    cc = np.empty(C.shape[0], dtype=np.float64)
    _center_sq(C, cc)
    return C, np.ascontiguousarray(C.T), cc


def sparse_sq_assign(rows: Any, centers: Float64Array) -> tuple[IntArray, Float64Array]:
    """``(labels, costs)`` of sparse ``rows`` against dense ``centers`` (module docstring)."""
    n = rows.shape[0]
    labels = np.empty(n, dtype=np.intp)
    costs = np.empty(n, dtype=np.float64)
    C, CT, cc = _prepared(centers)
    eps, abs_err = error_factor(C.shape[1])
    if n:
        _assign(rows.data, rows.indices, rows.indptr, C, CT, cc, eps, abs_err, labels, costs)
    return labels, costs


def sparse_sq_pairwise(rows: Any, centers: Float64Array) -> Float64Array:
    """``(n, k)`` squared distances ``D̃`` of sparse ``rows`` to ``centers`` (module docstring)."""
    _, CT, cc = _prepared(centers)
    out = np.empty((rows.shape[0], cc.shape[0]), dtype=np.float64)
    if rows.shape[0]:
        _pairwise(rows.data, rows.indices, rows.indptr, CT, cc, out)
    return out


def sparse_weighted_sums(
    rows: Any, weights: Float64Array, labels: IntArray, k: int
) -> tuple[Float64Array, Float64Array]:
    """``(sum_{i in j} w_i x_i (k, d), sum_{i in j} w_i (k,))`` over sparse ``rows``, in row order."""
    unit, w = _unit_or_array(weights)
    sums = np.zeros((k, rows.shape[1]), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    if rows.shape[0]:
        _sums(rows.data, rows.indices, rows.indptr, w, unit, labels, sums, wsum)
    return sums, wsum
