"""Settings and helpers every compiled kernel shares."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from numba import njit

from kmeans._types import Float64Array


def _probe_blas_without_scipy() -> None:
    """Load Numba's array lowering with a BLAS probe that finds SciPy instead of importing it.

    On its first compile or cache load, Numba imports ``numba.np.arraymath``, whose
    module-level probe imports ``scipy.linalg`` (0.3-0.8 s, most of a small image's
    start-up) only to learn whether ``np.dot`` may call BLAS. No kernel here calls BLAS;
    the probe's answer is the same (SciPy installed or not), and Numba's own check runs
    unchanged when a jitted ``np.dot`` is typed.
    """
    import numba.np.linalg as nplinalg

    probe = nplinalg.ensure_blas

    def found() -> None:
        if importlib.util.find_spec("scipy") is None:
            raise ImportError("scipy 0.16+ is required for linear algebra")

    nplinalg.ensure_blas = found
    try:
        import numba.np.arraymath  # noqa: F401  # computes its _HAVE_BLAS once, with found()
    finally:
        nplinalg.ensure_blas = probe


_probe_blas_without_scipy()

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
