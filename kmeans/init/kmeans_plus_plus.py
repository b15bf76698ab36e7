"""``init="k-means++"``: greedy k-means++ (Arthur & Vassilvitskii 2007), weighted.

Let ``D(x)`` be the cost from ``x`` to its closest chosen center (squared distance for
L2). The first center is one row drawn with probability ∝ ``w``. Each next center: draw
``L = 2 + floor(ln k)`` candidate rows without replacement with probability
∝ ``w · D(x)`` and keep the candidate whose addition gives the lowest total cost
``sum_x w · min(D(x), cost(x, candidate))`` (the greedy variant scikit-learn uses).
Draws are keyed on ``(seed, step, global row index)``, so every engine picks the same
rows. In memory (NumPy) ``D`` is cached per block: ``O(n · k · L)`` work. On an engine
without local blocks it is recomputed: two passes per center, ``O(n · k² / 2)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import attrs
import numpy as np

from kmeans._ops import weighted_sum
from kmeans._random import derive_seed, exponential_keys
from kmeans._types import Block, Float64Array, FloatArray
from kmeans.errors import ValidationError
from kmeans.init._sampling import smallest_keys
from kmeans.protocols import AssignStep, Dataset


def _cost_to(assign: AssignStep, points: FloatArray, center: Float64Array) -> Float64Array:
    return assign.pairwise(points, center[None, :])[:, 0]


@attrs.frozen
class KMeansPlusPlus:
    """Greedy weighted k-means++; ``n_local_trials=None`` means ``2 + floor(ln k)``."""

    name: str = "k-means++"
    n_init_auto = 1  # the seeding already spreads the centers: n_init="auto" runs once
    n_local_trials: int | None = None

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        trials = self.n_local_trials or 2 + int(math.log(k))
        local = getattr(dataset, "local_blocks", None)
        blocks = local() if callable(local) else None
        if blocks is None and k > 1:
            warnings.warn(
                f"k-means++ on this engine costs {2 * (k - 1) + 1} passes over the data; "
                "init='k-means||' needs only a few",
                stacklevel=3,
            )
        centers: list[Float64Array] = []
        cache: dict[int, Float64Array] = {}

        def min_cost(block: Block) -> Float64Array:
            if blocks is not None and block.start in cache:
                return cache[block.start]
            d = np.full(block.n_rows, np.inf)
            for c in centers:
                np.minimum(d, _cost_to(assign, block.points, c), out=d)
            return d

        def draw(step: int, m: int, weight_fn: Callable[[Block], Float64Array]) -> Float64Array:
            step_seed = derive_seed(seed, step)
            cand = smallest_keys(dataset, lambda b: exponential_keys(step_seed, b.row_indices(), weight_fn(b)), m)
            if cand.points.shape[0] == 0:
                raise ValidationError(
                    f"k-means++ found only {len(centers)} distinct rows of positive weight; n_clusters={k} is too large"
                )
            return cand.points

        first = draw(0, 1, lambda b: b.weights)[0]
        centers.append(first)
        for step in range(1, k):
            if blocks is not None:
                for b in blocks:
                    cache[b.start] = (
                        min_cost(b)
                        if b.start not in cache
                        else np.minimum(cache[b.start], _cost_to(assign, b.points, centers[-1]))
                    )
            cands = draw(step, trials, lambda b: b.weights * min_cost(b))

            def pots(block: Block, cands: Float64Array = cands) -> Float64Array:
                d = min_cost(block)
                return np.array(
                    [weighted_sum(block.weights, np.minimum(d, _cost_to(assign, block.points, c))) for c in cands]
                )

            totals = dataset.map_reduce(pots, lambda a, b: a + b)
            centers.append(cands[int(np.argmin(totals))])
        return np.array(centers, dtype=np.float64)
