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
from fractions import Fraction

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._kernels._common import _unit_or_array
from kmeans._kernels.seeding import SeedingState, exact_parts, sq_gaps, sq_to_center
from kmeans._ops import caller_stacklevel
from kmeans._random import derive_seed, exponential_keys
from kmeans._types import Block, Float64Array, FloatArray
from kmeans.distance.l2 import SquaredEuclidean
from kmeans.errors import ValidationError
from kmeans.init._choice import best_gain, exact_total
from kmeans.init._sampling import Candidates, smallest_keys, smallest_of
from kmeans.protocols import AssignStep, Dataset, optional
from kmeans.sparse import is_sparse

IntArray64 = NDArray[np.int64]


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

            def terms(block: Block, cand: Float64Array) -> Float64Array:
                d = min_cost(block)
                return np.asarray(block.weights, dtype=np.float64) * (
                    d - np.minimum(d, _cost_to(assign, block.points, cand))
                )

            def fast(block: Block, cands: Float64Array = cands) -> Float64Array:
                return np.array([float(np.sum(terms(block, c))) for c in cands])

            def exact(block: Block, which: list[int], cands: Float64Array = cands) -> list[Float64Array]:
                return [exact_parts(terms(block, cands[q])) for q in which]

            centers.append(cands[best_candidate(dataset, cands, fast, exact)])
        return np.array(centers, dtype=np.float64)

    def _compiled(self, dataset: Dataset, blocks: list[Block], k: int, trials: int, seed: int) -> Float64Array:
        """The same draws and choices for in-memory blocks and L2, with compiled, pruned passes.

        Per block the exact cost to the closest chosen center is kept, with the rows grouped
        by that center (:mod:`kmeans._kernels.seeding`): a new center and each candidate
        visit only the groups within twice their radius, and compute a distance only for
        the rows the triangle inequality cannot rule out. The draw keys are one pass over
        the block's costs, without distances.
        """
        d = dataset.n_features
        chosen = np.empty((k, d), dtype=np.float64)
        states = {b.start: SeedingState(b.n_rows, k) for b in blocks}
        unit = {b.start: _unit_or_array(b.weights) for b in blocks}

        def picked(step: int, cand: Candidates) -> Float64Array:
            if cand.points.shape[0] == 0:
                raise ValidationError(
                    f"k-means++ found only {step} distinct rows of positive weight; n_clusters={k} is too large"
                )
            return cand.points

        step0 = derive_seed(seed, 0)
        chosen[0] = picked(0, smallest_keys(dataset, lambda b: exponential_keys(step0, b.row_indices(), b.weights), 1))[
            0
        ]
        for step in range(1, k):
            step_seed = derive_seed(seed, step)
            gap2 = sq_gaps(chosen, step - 1, chosen[step - 1 : step])[:, 0]

            def draw_keys(
                block: Block, step: int = step, step_seed: int = step_seed, gap2: Float64Array = gap2
            ) -> tuple[IntArray64, Float64Array]:
                state = states[block.start]
                state.add_center(block.points, chosen[step - 1], gap2)
                is_unit, w = unit[block.start]
                return state.draw_keys(w, is_unit, step_seed, block.start, trials)

            cands = picked(step, smallest_of(dataset, draw_keys, trials))
            cgap2 = sq_gaps(chosen, step, cands)

            def fast(block: Block, cands: Float64Array = cands, cgap2: Float64Array = cgap2) -> Float64Array:
                is_unit, w = unit[block.start]
                return states[block.start].gains(block.points, w, is_unit, cands, cgap2)

            def exact(
                block: Block, which: list[int], cands: Float64Array = cands, cgap2: Float64Array = cgap2
            ) -> list[Float64Array]:
                is_unit, w = unit[block.start]
                return states[block.start].exact_gains(block.points, w, is_unit, cands[which], cgap2[:, which])

            chosen[step] = cands[best_candidate(dataset, cands, fast, exact)]
        return chosen


def best_candidate(
    dataset: Dataset,
    cands: Float64Array,
    fast: Callable[[Block], Float64Array],
    exact: Callable[[Block, list[int]], list[Float64Array]],
) -> int:
    """The candidate of largest exact gain, equal gains to the lowest index (:mod:`kmeans.init._choice`).

    ``fast(block)`` sums a block's gain terms per candidate in any order; ``exact(block, which)``
    gives, per listed candidate, components whose exact sum is its exact block sum
    (:func:`kmeans._kernels.seeding.exact_parts`).
    """
    sums, count = dataset.map_reduce(lambda b: (fast(b), b.n_rows), lambda a, b: (a[0] + b[0], a[1] + b[1]))

    def merge(a: list[Float64Array], b: list[Float64Array]) -> list[Float64Array]:
        return [np.concatenate([x, y]) for x, y in zip(a, b, strict=True)]

    def totals(close: list[int]) -> list[Fraction]:
        return [exact_total(p.tolist()) for p in dataset.map_reduce(lambda b: exact(b, close), merge)]

    return best_gain(sums, count, cands, totals)
