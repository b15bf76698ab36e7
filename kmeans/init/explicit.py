"""Explicit initial centers: ``KMeans(init=array)``."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from kmeans._types import Float64Array
from kmeans._validation import check_centers
from kmeans.errors import ValidationError
from kmeans.protocols import AssignStep, Dataset


def _as_float64(centers: Any) -> Float64Array:
    try:
        return np.array(centers, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"init could not be read as a numeric (k, d) array ({exc})") from exc


@attrs.frozen(eq=False)
class ExplicitCenters:
    """Start from the given ``(k, d)`` centers; ``seed`` is ignored."""

    centers: Float64Array = attrs.field(converter=_as_float64)
    name: str = "explicit"

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        centers = check_centers(self.centers, k, dataset.n_features)
        if centers.shape[0] != k:
            raise ValidationError(f"init has {centers.shape[0]} centers but n_clusters={k}")
        return centers.copy()
