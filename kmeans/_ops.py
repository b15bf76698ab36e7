"""Small NumPy helpers with precise types."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans._types import Float64Array


def weighted_bincount(labels: NDArray[Any], weights: NDArray[Any] | None, k: int) -> Float64Array:
    """``out[j] = sum(weights[labels == j])`` as float64 (counts when ``weights`` is None)."""
    out: Float64Array = np.bincount(labels, weights=weights, minlength=k).astype(np.float64, copy=False)
    return out
