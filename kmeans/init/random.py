"""``init="random"``: k distinct rows drawn with probability proportional to weight."""

from __future__ import annotations

import attrs
import numpy as np

from kmeans._random import exponential_keys
from kmeans._types import Block, Float64Array
from kmeans.errors import ValidationError
from kmeans.init._sampling import first_distinct, smallest_keys
from kmeans.protocols import AssignStep, Dataset


@attrs.frozen
class Random:
    """k distinct rows, sampled without replacement with probability ∝ ``sample_weight``.

    Each row ``i`` gets the key ``-log(u_i) / w_i`` with ``u_i`` a uniform draw that depends
    only on ``(seed, i)``; the centers are the first ``k`` pairwise-distinct rows in
    ascending key order (Efraimidis & Spirakis weighted sampling). The choice therefore
    depends on the seed and the rows' global order, never on the engine or partitioning.
    One pass when the sample has ``k`` distinct rows (the usual case); a larger sample
    is drawn when duplicates crowd it.
    """

    name: str = "random"

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        m = k

        def keys(block: Block) -> Float64Array:
            return exponential_keys(seed, block.row_indices(), block.weights)

        while True:
            cand = smallest_keys(dataset, keys, m)
            chosen = first_distinct(cand.points, k)
            if chosen.size >= k:
                return np.asarray(cand.points[chosen], dtype=np.float64)
            if cand.rows.size < m:
                raise ValidationError(
                    f"n_clusters={k} is larger than the number of distinct rows of positive weight ({chosen.size})"
                )
            m *= 4
