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


def weighted_sum(weights: NDArray[Any], values: NDArray[Any]) -> float:
    """``sum_i weights_i * values_i`` in float64, without BLAS.

    BLAS ``dot`` may wake its own thread pool for a single block, which costs far more
    than it saves when blocks already run on threads (measured: 30x slower per pass on a
    busy 2-core machine). Unit weights (a stride-0 broadcast) need no multiplication.
    """
    if weights.strides == (0,) and weights.size:
        return float(weights[0]) * float(np.sum(values, dtype=np.float64))
    return float(np.sum(weights * values, dtype=np.float64))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside this package.

    ``warnings.warn(..., stacklevel=caller_stacklevel())`` called anywhere in ``kmeans``
    names the user's line, however deep in the library the warning is raised.
    """
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
