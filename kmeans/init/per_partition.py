"""``init="per-partition"``: every block draws its own candidates in one pass.

The paper's proposed fix for its slow initialization. In a single pass each block
draws ``m = ceil(oversampling · k)`` of its rows without replacement with probability ∝
``w`` (keys from ``(seed, global row index)``), and weights each of them by the total
weight of the block's rows closest to it among the block's candidates. The driver folds
all candidates and reduces them to ``k`` with weighted greedy k-means++
(:mod:`kmeans.init._candidates`).

One pass over the data whatever ``k``; the price is that the candidate set depends on how
rows are split into blocks (partitions on Spark, chunks on NumPy), so the same seed gives
the same centers only for the same layout. Use ``"k-means||"`` when results must not
depend on partitioning.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from kmeans._ops import weighted_bincount
from kmeans._random import derive_seed, exponential_keys
from kmeans._types import Block, Float64Array
from kmeans.errors import ValidationError
from kmeans.init._candidates import reduce_to_k
from kmeans.protocols import AssignStep, Dataset


@attrs.frozen
class PerPartition:
    """Per-block weighted candidates (``oversampling · k`` each), reduced to ``k`` by k-means++."""

    name: str = "per-partition"
    oversampling: float = 2.0

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        if not self.oversampling > 0:
            raise ValidationError(f"oversampling must be > 0, got {self.oversampling}")
        m = max(1, math.ceil(self.oversampling * k))
        draw_seed = derive_seed(seed, 0)

        def fn(block: Block) -> tuple[Float64Array, Float64Array]:
            keys = exponential_keys(draw_seed, block.row_indices(), block.weights)
            finite = np.flatnonzero(np.isfinite(keys))
            if finite.size == 0:
                return np.empty((0, block.points.shape[1])), np.empty(0)
            order = finite[np.lexsort((finite, keys[finite]))][:m]
            cands = np.asarray(block.points[order], dtype=np.float64)
            labels = assign.assign(block.points, cands)[0]
            return cands, weighted_bincount(labels, np.asarray(block.weights), cands.shape[0])

        def merge(
            a: tuple[Float64Array, Float64Array], b: tuple[Float64Array, Float64Array]
        ) -> tuple[Float64Array, Float64Array]:
            return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])

        points, weights = dataset.map_reduce(fn, merge)
        return reduce_to_k(dataset, points, weights, k, assign, derive_seed(seed, 1))
