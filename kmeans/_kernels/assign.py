"""Direct assignment kernels: every distance of a row computed as ``sum_j (x_j - c_j)²`` or ``|x_j - c_j|``."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from kmeans._kernels._common import _JIT, _first_min, _unit_or_array
from kmeans._types import Float64Array, FloatArray, IntArray


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


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _closest_and_second(x: Any, i: int, ct: Any, dist: Any) -> tuple[int, float, float]:  # pragma: no cover
    # Row i against every center: (closest, its distance, the smallest distance of the others).
    best, best_d = _closest_sqeuclidean(x, i, ct, dist)
    second = np.inf
    for c in range(ct.shape[1]):
        if c != best:
            second = min(second, dist[c])
    return best, best_d, second


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
