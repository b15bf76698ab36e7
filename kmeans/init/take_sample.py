"""``init="take-sample"``: Spark's ``RDD.takeSample(False, k, seed)``, as the paper did.

Kept to reproduce the paper. The draw is uniform over rows (weights are ignored; on
compressed data each distinct row counts once) and, as in Spark, it depends on the
partitioning: the same seed on a differently partitioned dataset picks different rows.
``takeSample`` runs a count and a sampling pass over per-row Python objects, which is
what made the paper's initialization slow. Spark datasets only; ``"random"`` is the
engine-independent, weighted equivalent.
"""

from __future__ import annotations

import attrs
import numpy as np

from kmeans._types import Float64Array
from kmeans.errors import ValidationError
from kmeans.init._sampling import first_distinct
from kmeans.protocols import AssignStep, Dataset, optional

#: Sample-size multipliers tried when the sample holds fewer than ``k`` distinct rows.
_GROWTH = (1, 4, 16, 64)


@attrs.frozen
class TakeSample:
    """The first ``k`` distinct rows of ``takeSample(False, m, seed)`` (``m = k``, grown if needed)."""

    name: str = "take-sample"

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        take = optional(dataset, "take_sample")
        if take is None:
            raise ValidationError(
                f"init='take-sample' uses Spark's RDD.takeSample and needs a Spark dataset (backend='spark-rdd'), "
                f"not {type(dataset).__name__}; use init='random' for the same kind of draw on any engine"
            )
        found = np.empty((0, dataset.n_features))
        for attempt, grow in enumerate(_GROWTH):
            sample = np.asarray(take(k * grow, seed + attempt), dtype=np.float64)
            found = sample[first_distinct(sample, k)] if sample.shape[0] else found
            if found.shape[0] >= k:
                return found
        raise ValidationError(
            f"takeSample found only {found.shape[0]} distinct rows of positive weight; n_clusters={k}"
        )
