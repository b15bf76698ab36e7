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

from kmeans._types import Float64Array, FloatArray, IntArray

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "fastmath": False, "error_model": "numpy"}


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _assign_sqeuclidean(x: Any, ct: Any, labels: Any, costs: Any) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    k = ct.shape[1]
    dist = np.empty(k, dtype=np.float64)
    for i in range(n):
        for c in range(k):
            dist[c] = 0.0
        for j in range(d):
            xj = np.float64(x[i, j])
            for c in range(k):
                diff = xj - ct[j, c]
                dist[c] += diff * diff
        best = 0
        best_d = dist[0]
        for c in range(1, k):
            if dist[c] < best_d:  # strict: ties keep the lowest center index
                best_d = dist[c]
                best = c
        labels[i] = best
        costs[i] = best_d


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
        best = 0
        best_d = dist[0]
        for c in range(1, k):
            if dist[c] < best_d:
                best_d = dist[c]
                best = c
        labels[i] = best
        costs[i] = best_d


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _weighted_sums(x: Any, w: Any, unit: bool, labels: Any, sums: Any, wsum: Any) -> None:  # pragma: no cover
    n, d = x.shape
    for i in range(n):
        c = labels[i]
        wi = 1.0 if unit else w[i]
        wsum[c] += wi
        for j in range(d):
            sums[c, j] += wi * np.float64(x[i, j])


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
    unit = weights.strides == (0,) and (weights.size == 0 or float(weights[0]) == 1.0)
    sums = np.zeros((k, points.shape[1]), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    w = np.zeros(1) if unit else np.ascontiguousarray(weights, dtype=np.float64)
    _weighted_sums(points, w, unit, labels, sums, wsum)
    return sums, wsum


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
