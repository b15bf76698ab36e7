"""K-means clustering on the engine that fits the data, with every step a swappable strategy.

>>> import numpy as np
>>> from kmeans import KMeans
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
>>> model = KMeans(n_clusters=2, seed=0).fit(X)
>>> sorted(model.cluster_centers_.tolist())
[[0.0, 0.5], [10.0, 10.5]]
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from kmeans._types import Block, FitResult, FitSpec, IterationRecord
from kmeans.distance.base import Distance
from kmeans.errors import (
    ConvergenceWarning,
    KMeansError,
    MissingDependencyError,
    ModelFormatError,
    NotFittedError,
    UnknownStrategyError,
    ValidationError,
)
from kmeans.protocols import AssignStep, Backend, Dataset, Initializer, Refine, UpdateStep
from kmeans.registry import register_backend, register_distance, register_initializer

if TYPE_CHECKING:
    from kmeans.bisecting import BisectingKMeans
    from kmeans.driver import lloyd
    from kmeans.estimator import KMeans
    from kmeans.io import load_model
    from kmeans.sweep import SweepResult, sweep

#: Names whose modules load the compiled kernels (Numba, ~1 s): imported on first use, so
#: that ``import kmeans`` and code that needs none of them (a small image's quantization)
#: start fast.
_LAZY = {
    "BisectingKMeans": "kmeans.bisecting",
    "KMeans": "kmeans.estimator",
    "SweepResult": "kmeans.sweep",
    "lloyd": "kmeans.driver",
    "load_model": "kmeans.io",
    "sweep": "kmeans.sweep",
}


def __getattr__(name: str) -> Any:
    """A lazy name of :data:`_LAZY`, or a submodule (``kmeans.estimator``) not imported yet."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    # Importing the submodule kmeans.sweep binds it as an attribute of kmeans; the
    # function of that name stays what kmeans.sweep means.
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "sweep" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__version__ = "0.1.0"

__all__ = [
    "AssignStep",
    "Backend",
    "BisectingKMeans",
    "Block",
    "ConvergenceWarning",
    "Dataset",
    "Distance",
    "FitResult",
    "FitSpec",
    "Initializer",
    "IterationRecord",
    "KMeans",
    "KMeansError",
    "MissingDependencyError",
    "ModelFormatError",
    "NotFittedError",
    "Refine",
    "SweepResult",
    "UnknownStrategyError",
    "UpdateStep",
    "ValidationError",
    "lloyd",
    "load_model",
    "register_backend",
    "register_distance",
    "register_initializer",
    "sweep",
]
