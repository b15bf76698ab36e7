"""Settings and helpers every compiled kernel shares."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from kmeans._types import Float64Array

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "fastmath": False, "error_model": "numpy"}


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _first_min(dist: Any) -> tuple[int, float]:  # pragma: no cover - compiled
    # (index, value) of the smallest entry; strict < so ties keep the lowest index.
    best = 0
    best_d = dist[0]
    for c in range(1, dist.shape[0]):
        if dist[c] < best_d:
            best_d = dist[c]
            best = c
    return best, best_d


def _unit_or_array(weights: Float64Array) -> tuple[bool, Float64Array]:
    unit = weights.strides == (0,) and (weights.size == 0 or float(weights[0]) == 1.0)
    return unit, (np.zeros(1) if unit else np.ascontiguousarray(weights, dtype=np.float64))
