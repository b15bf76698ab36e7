"""A pure-NumPy brute-force reference for K-means, written for clarity, not speed.

Everything here follows the documented rules literally (row by row, center by center),
so the library's vectorized, chunked, mergeable strategies can be checked against it:

- assignment: the full ``(n, k)`` cost matrix in float64, ``argmin`` (lowest index on ties);
- L2 update: weighted mean; L1 update: the *lower* weighted median per coordinate;
  cosine: the normalized weighted mean of the rows' directions (spherical k-means);
- empty clusters: the i-th empty cluster takes the i-th farthest distinct point (largest
  cost, equal costs in ascending lexicographic order of the values), and every row equal
  to it moves with all its weight (see ``kmeans.driver``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def sq_euclidean(points: Array, centers: Array) -> Array:
    """``(n, k)`` squared Euclidean distances, computed as ``sum((x - c)²)`` in float64."""
    diff = points.astype(np.float64)[:, None, :] - centers.astype(np.float64)[None, :, :]
    return np.asarray((diff * diff).sum(axis=2))


def manhattan(points: Array, centers: Array) -> Array:
    """``(n, k)`` Manhattan distances in float64."""
    diff = points.astype(np.float64)[:, None, :] - centers.astype(np.float64)[None, :, :]
    return np.asarray(np.abs(diff).sum(axis=2))


def cosine(points: Array, centers: Array) -> Array:
    """``(n, k)`` cosine distances ``1 - x·ĉ / ||x||`` (``ĉ = c / ||c||``), similarities summed in feature order."""
    x = points.astype(np.float64)
    c = centers.astype(np.float64)
    unit = c / np.sqrt((c * c).sum(axis=1))[:, None]
    sims = np.zeros((x.shape[0], c.shape[0]))
    for f in range(x.shape[1]):  # one feature at a time: the documented summation order
        sims += x[:, f, None] * unit[None, :, f]
    return np.asarray(np.maximum(1.0 - sims / np.sqrt((x * x).sum(axis=1))[:, None], 0.0))


COSTS = {"l2": sq_euclidean, "l1": manhattan, "cosine": cosine}


def assign(points: Array, centers: Array, distance: str = "l2") -> tuple[Array, Array]:
    """``(labels, costs)``: closest center per row, the lowest index winning ties."""
    cost = COSTS[distance](points, centers)
    labels = np.argmin(cost, axis=1)
    return labels, cost[np.arange(points.shape[0]), labels]


def lower_weighted_median(values: Array, weights: Array) -> float:
    """The smallest value ``m`` with ``sum(w[v <= m]) >= sum(w) / 2``, over positive weights."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    v, w = v[w > 0], w[w > 0]
    total = w.sum()
    for m in np.sort(np.unique(v)):
        if w[v <= m].sum() >= total / 2:
            return float(m)
    raise AssertionError("unreachable: the largest value always qualifies")


def update(points: Array, weights: Array, labels: Array, old: Array, distance: str = "l2") -> Array:
    """New centers: weighted mean (L2) or lower weighted median (L1); empty clusters keep ``old``."""
    new = old.astype(np.float64).copy()
    for j in range(old.shape[0]):
        members = labels == j
        if weights[members].sum() <= 0:
            continue
        if distance == "l2":
            w = weights[members]
            new[j] = (points[members].astype(np.float64) * w[:, None]).sum(axis=0) / w.sum()
        elif distance == "cosine":  # the normalized weighted mean of the member directions
            x = points[members].astype(np.float64)
            w = weights[members] / np.sqrt((x * x).sum(axis=1))
            mean = (x * w[:, None]).sum(axis=0) / weights[members].sum()
            norm = np.sqrt((mean * mean).sum())
            if norm > 0:  # directions that cancel keep the old center
                new[j] = mean / norm
        else:
            for f in range(points.shape[1]):
                new[j, f] = lower_weighted_median(points[members, f], weights[members])
    return new


def lloyd(
    points: Array, centers: Array, n_iter: int, weights: Array | None = None, distance: str = "l2"
) -> tuple[Array, Array, float]:
    """``n_iter`` Lloyd updates from ``centers``; returns ``(centers, labels, inertia)`` of the end state."""
    w = np.ones(points.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64).copy()
    for _ in range(n_iter):
        labels, costs = assign(points, c, distance)
        sizes = np.bincount(labels, weights=w, minlength=c.shape[0])
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            candidates = sorted(
                {tuple(points[i].tolist()): costs[i] for i in np.flatnonzero(w > 0)}.items(),
                key=lambda item: (-item[1], item[0]),
            )
            labels = labels.copy()
            for cluster, (point, _) in zip(empty, candidates, strict=False):
                labels[np.all(points == np.array(point), axis=1)] = cluster
        c = update(points, w, labels, c, distance)
    labels, costs = assign(points, c, distance)
    return c, labels, float(np.dot(w, costs))


def inertia(points: Array, centers: Array, weights: Array | None = None, distance: str = "l2") -> float:
    """``sum_i w_i cost(x_i, closest center)``."""
    _, costs = assign(points, centers, distance)
    return float(costs.sum() if weights is None else np.dot(weights, costs))


def compress(points: Array, weights: Array | None = None) -> tuple[Array, Array]:
    """Distinct rows in ascending lexicographic order with their summed weights (dict-based)."""
    w = np.ones(points.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    totals: dict[tuple[Any, ...], float] = {}
    for row, weight in zip(points.tolist(), w.tolist(), strict=True):
        key = tuple(row)
        totals[key] = totals.get(key, 0.0) + weight
    keys = sorted(totals)
    return np.array(keys, dtype=points.dtype).reshape(len(keys), points.shape[1]), np.array([totals[k] for k in keys])
