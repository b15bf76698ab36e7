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

import functools
import math
import warnings
from collections.abc import Callable

import attrs
import numpy as np

from kmeans._kernels._common import _unit_or_array
from kmeans._kernels.seeding import SeedingState, gaps_to_chosen, sq_to_center
from kmeans._ops import caller_stacklevel, weighted_sum
from kmeans._random import derive_seed, exponential_keys
from kmeans._types import Block, Float64Array, FloatArray
from kmeans.distance.l2 import SquaredEuclidean
from kmeans.errors import ValidationError
from kmeans.init._sampling import smallest_keys
from kmeans.protocols import AssignStep, Dataset, optional
from kmeans.sparse import is_sparse


def _exact_l2(assign: AssignStep) -> bool:
    # The built-in squared Euclidean cost (not a subclass that may redefine it).
    cls: type = type(assign)
    return cls is SquaredEuclidean


def _cost_to(assign: AssignStep, points: FloatArray, center: Float64Array) -> Float64Array:
    # the L2 kernels' exact distances, at any d (pairwise expands above 12 features); sparse rows: pairwise
    if _exact_l2(assign) and not is_sparse(points):
        return sq_to_center(points, center)
    return assign.pairwise(points, center[None, :])[:, 0]


@attrs.frozen
class KMeansPlusPlus:
    """Greedy weighted k-means++; ``n_local_trials=None`` means ``2 + floor(ln k)``."""

    name: str = "k-means++"
    n_init_auto = 1  # the seeding already spreads the centers: n_init="auto" runs once
    n_local_trials: int | None = None

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        trials = self.n_local_trials or 2 + int(math.log(k))
        local = optional(dataset, "local_blocks")
        blocks = local() if callable(local) else None
        if blocks is None and k > 1:
            warnings.warn(
                f"k-means++ on this engine costs {2 * (k - 1) + 1} passes over the data; "
                "init='k-means||' needs only a few",
                stacklevel=caller_stacklevel(),
            )
        if blocks is not None and _exact_l2(assign) and k > 1 and not any(is_sparse(b.points) for b in blocks):
            return self._compiled(dataset, blocks, k, trials, seed)
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

    def _compiled(self, dataset: Dataset, blocks: list[Block], k: int, trials: int, seed: int) -> Float64Array:
        """The same draws and choices for in-memory blocks and L2, with compiled, pruned passes.

        Per block the exact cost to the closest chosen center is kept and updated by one
        compiled pass per new center; each candidate's potential is one more compiled pass,
        and rows that the triangle inequality proves unaffected cost no distance
        (:mod:`kmeans._kernels.seeding`). ``O(n k L)`` distances in the worst case, far
        fewer when centers are spread out.
        """
        d = dataset.n_features
        chosen = np.empty((k, d), dtype=np.float64)
        states = {b.start: SeedingState(b.n_rows) for b in blocks}
        unit = {b.start: _unit_or_array(b.weights) for b in blocks}

        def draw_keys(block: Block, step_seed: int, gaps: Float64Array, n_chosen: int) -> Float64Array:
            is_unit, w = unit[block.start]
            return states[block.start].add_center(
                block.points, w, is_unit, chosen[n_chosen - 1], n_chosen - 1, gaps, step_seed, block.start, trials
            )

        def picked(step: int, key_fn: Callable[[Block], Float64Array], m: int) -> Float64Array:
            cand = smallest_keys(dataset, key_fn, m)
            if cand.points.shape[0] == 0:
                raise ValidationError(
                    f"k-means++ found only {step} distinct rows of positive weight; n_clusters={k} is too large"
                )
            return cand.points

        step0 = derive_seed(seed, 0)
        chosen[0] = picked(0, lambda b: exponential_keys(step0, b.row_indices(), b.weights), 1)[0]
        for step in range(1, k):
            step_seed = derive_seed(seed, step)
            gaps = gaps_to_chosen(chosen, step - 1, chosen[step - 1 : step])[0]
            cands = picked(step, functools.partial(draw_keys, step_seed=step_seed, gaps=gaps, n_chosen=step), trials)
            cand_gaps = gaps_to_chosen(chosen, step, cands)

            def pots(block: Block, cands: Float64Array = cands, cand_gaps: Float64Array = cand_gaps) -> Float64Array:
                is_unit, w = unit[block.start]
                return states[block.start].potentials(block.points, w, is_unit, cands, cand_gaps)

            totals = dataset.map_reduce(pots, lambda a, b: a + b)
            chosen[step] = cands[int(np.argmin(totals))]
        return chosen
