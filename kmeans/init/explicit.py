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
    #: The seed is ignored, so restarts would all be identical: one run.
    n_init_auto = 1
    deterministic = True

    def check(self, k: int, n_features: int | None) -> None:
        """Refuse centers of the wrong shape before any pass (``n_features=None``: not known yet)."""
        if self.centers.ndim == 2 and self.centers.shape[0] != k:
            raise ValidationError(f"init has {self.centers.shape[0]} centers but n_clusters={k}")
        if n_features is not None and (self.centers.ndim != 2 or self.centers.shape[1] != n_features):
            raise ValidationError(
                f"init has shape {self.centers.shape}; expected ({k}, {n_features}) = (n_clusters, n_features)"
            )

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        centers = check_centers(self.centers, k, dataset.n_features)
        if centers.shape[0] != k:
            raise ValidationError(f"init has {centers.shape[0]} centers but n_clusters={k}")
        return centers.copy()
