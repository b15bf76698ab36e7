"""``init="k-means||"``: scalable k-means++ (Bahmani, Moseley, Vattani, Kumar & Vassilvitskii 2012).

With ``D(x)`` the cost from ``x`` to its closest candidate (squared distance for L2) and
``φ = sum_x w_x D(x)``:

1. the first candidate is one row drawn with probability ∝ ``w`` (one pass);
2. each of ``rounds`` rounds (two passes: ``φ``, then the draw) adds every row ``x``
   independently with probability ``min(1, ℓ w_x D(x) / φ)``, ``ℓ = oversampling · k``;
3. each candidate is weighted by the total weight of the rows closest to it (one pass),
   and weighted greedy k-means++ on the driver reduces the candidates to ``k``
   (:mod:`kmeans.init._candidates`).

``2 · rounds + 2`` passes in all, whatever ``k`` (k-means++ needs ``2k - 1`` on an engine
without local blocks). Every random draw is ``uniform(derive_seed(seed, round), row)``:
a function of the seed, the round and the *global* row index only, so the candidates, and
the centers, are the same on every engine and any partitioning. Spark MLlib's
``initKMeansParallel`` instead seeds a generator per partition and so depends on the
layout; it also returns fewer than ``k`` centers when there are few candidates, where this
one tops up (extra rounds, then ``init="random"`` rows). Defaults follow MLlib:
``rounds=2`` (MLlib's ``initSteps``), ``oversampling=2`` (``ℓ = 2k``).
"""

from __future__ import annotations

import attrs
import numpy as np

from kmeans._random import derive_seed, exponential_keys, uniform
from kmeans._types import Block, Float64Array
from kmeans.driver import evaluate
from kmeans.errors import ValidationError
from kmeans.init._candidates import candidate_weights, fold_candidates, reduce_to_k
from kmeans.init._sampling import smallest_keys
from kmeans.protocols import AssignStep, Dataset

#: Extra rounds tried when the regular rounds found fewer than ``k`` distinct candidates.
MAX_EXTRA_ROUNDS = 10


def _positive(x: int, name: str) -> int:
    if x < 1:
        raise ValidationError(f"{name} must be >= 1, got {x}")
    return x


@attrs.frozen
class KMeansParallel:
    """k-means|| with ``rounds`` oversampling rounds of ``oversampling · k`` expected draws each."""

    name: str = "k-means||"
    n_init_auto = 1  # the seeding already spreads the centers: n_init="auto" runs once
    rounds: int = attrs.field(default=2, validator=lambda _, a, v: _positive(v, a.name))
    oversampling: float = 2.0

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        if not self.oversampling > 0:
            raise ValidationError(f"oversampling must be > 0, got {self.oversampling}")
        first_seed = derive_seed(seed, 0)
        first = smallest_keys(dataset, lambda b: exponential_keys(first_seed, b.row_indices(), b.weights), 1)
        candidates = first.points
        ell = self.oversampling * k
        r = 0
        while r < self.rounds or (candidates.shape[0] < k and r < self.rounds + MAX_EXTRA_ROUNDS):
            phi = evaluate(dataset, candidates, assign)[0]
            if phi <= 0:  # every row sits on a candidate: nothing left to draw
                break
            drawn = self._draw(dataset, candidates, assign, derive_seed(seed, r + 1), ell / phi)
            candidates, _ = fold_candidates(
                np.concatenate([candidates, drawn]), np.ones(candidates.shape[0] + drawn.shape[0])
            )
            r += 1
        if candidates.shape[0] <= k:
            return reduce_to_k(dataset, candidates, np.ones(candidates.shape[0]), k, assign, derive_seed(seed, r + 1))
        weights = candidate_weights(dataset, candidates, assign)
        return reduce_to_k(dataset, candidates, weights, k, assign, derive_seed(seed, r + 1))

    @staticmethod
    def _draw(
        dataset: Dataset, centers: Float64Array, assign: AssignStep, round_seed: int, scale: float
    ) -> Float64Array:
        """Rows with ``u < scale · w · D``, ``u`` keyed on ``(round_seed, global row)``."""

        def fn(block: Block) -> Float64Array:
            costs = np.min(assign.pairwise(block.points, centers), axis=1)
            u = uniform(round_seed, block.row_indices())
            chosen = u < scale * np.asarray(block.weights) * costs
            return np.asarray(block.points[chosen], dtype=np.float64)

        return dataset.map_reduce(fn, lambda a, b: np.concatenate([a, b]))
