"""K-means clustering on the engine that fits the data, with every step a swappable strategy.

>>> import numpy as np
>>> from kmeans import KMeans
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
>>> model = KMeans(n_clusters=2, seed=0).fit(X)
>>> sorted(model.cluster_centers_.tolist())
[[0.0, 0.5], [10.0, 10.5]]
"""

from __future__ import annotations

from kmeans._types import Block, FitResult, FitSpec, IterationRecord
from kmeans.bisecting import BisectingKMeans
from kmeans.distance.base import Distance
from kmeans.driver import lloyd
from kmeans.errors import (
    ConvergenceWarning,
    KMeansError,
    MissingDependencyError,
    ModelFormatError,
    NotFittedError,
    UnknownStrategyError,
    ValidationError,
)
from kmeans.estimator import KMeans
from kmeans.io import load_model
from kmeans.protocols import AssignStep, Backend, Dataset, Initializer, Refine, UpdateStep
from kmeans.registry import register_backend, register_distance, register_initializer
from kmeans.sweep import SweepResult, sweep  # the function shadows its module as an attribute of kmeans

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
