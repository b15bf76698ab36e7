"""Reducing a weighted candidate set to ``k`` centers on the driver (k-means||, per-partition).

Candidates are folded (identical rows merged, weights summed) and sorted
lexicographically first, so the result does not depend on the order in which an engine
collected them. More than ``k`` candidates: greedy weighted k-means++ over them (in
memory). Exactly ``k``: all of them. Fewer: all of them plus rows from ``init="random"``
that are not candidates yet, so every initializer always returns ``k`` distinct centers.
"""

from __future__ import annotations

import numpy as np

from kmeans._random import derive_seed
from kmeans._types import Float64Array
from kmeans.dataset import BlockDataset, compress_rows
from kmeans.init.kmeans_plus_plus import KMeansPlusPlus
from kmeans.init.random import Random
from kmeans.protocols import AssignStep, Dataset


def fold_candidates(points: Float64Array, weights: Float64Array) -> tuple[Float64Array, Float64Array]:
    """Distinct candidate rows in ascending lexicographic order with summed weights (weight 0 dropped)."""
    if points.shape[0] == 0:
        return points, weights
    rows, w, _ = compress_rows(np.asarray(points, dtype=np.float64), np.asarray(weights, dtype=np.float64))
    keep = w > 0
    return np.asarray(rows[keep], dtype=np.float64), w[keep]


def reduce_to_k(
    dataset: Dataset, points: Float64Array, weights: Float64Array, k: int, assign: AssignStep, seed: int
) -> Float64Array:
    """``k`` distinct centers from weighted candidates (see the module docstring)."""
    pts, w = fold_candidates(points, weights)
    if pts.shape[0] > k:
        local = BlockDataset.from_arrays(pts, w, distinct=True)
        return KMeansPlusPlus().init(local, k, assign, derive_seed(seed, 0))
    if pts.shape[0] == k:
        return pts
    extra = Random().init(dataset, k, assign, derive_seed(seed, 1))
    known = {row.tobytes() for row in pts}
    fresh = np.array([row for row in extra if row.tobytes() not in known]).reshape(-1, dataset.n_features)
    return np.concatenate([pts, fresh[: k - pts.shape[0]]]).astype(np.float64)


def candidate_weights(dataset: Dataset, candidates: Float64Array, assign: AssignStep) -> Float64Array:
    """Total weight of the rows closest to each candidate (one pass)."""
    from kmeans.driver import evaluate

    return evaluate(dataset, candidates, assign)[1]
