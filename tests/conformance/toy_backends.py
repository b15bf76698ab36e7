"""A toy third-party backend written only against the public API, as docs/custom-strategies.md shows.

:class:`ThreadPoolBackend` keeps its rows in memory as a :class:`~kmeans.dataset.BlockDataset`
whose ``map_reduce`` runs the blocks on a thread pool (and merges in block order), validates
with :mod:`kmeans.validation` and fits with :func:`kmeans.driver.fit`. Its blocks are small
(50 rows) so that the conformance suite compares a layout unlike the ``numpy`` backend's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from kmeans import FitResult, FitSpec, ValidationError, driver
from kmeans.dataset import BlockDataset
from kmeans.validation import check_points, check_weights

T = TypeVar("T")


class ThreadPoolDataset(BlockDataset):
    """Blocks in memory; ``map_reduce`` on a 2-thread pool, partials merged in block order."""

    def map_reduce(self, fn: Callable[[Any], T], merge: Callable[[T, T], T]) -> T:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return functools.reduce(merge, list(pool.map(fn, self.blocks)))


class ThreadPoolBackend:
    """The toy engine: validate, cut into 50-row blocks, run the library's own fit."""

    name = "toy-threads"

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> ThreadPoolDataset:
        if features is not None:
            raise ValidationError("features= selects DataFrame columns; this backend takes arrays")
        arr = check_points(X)
        weights = check_weights(sample_weight, arr.shape[0])
        integer = arr.dtype.kind in "biu"
        points = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
        return ThreadPoolDataset.from_arrays(points, weights, integer_valued=integer, block_rows=50)

    def fit(self, dataset: ThreadPoolDataset, spec: FitSpec) -> FitResult:
        return driver.fit(dataset, spec)

    def predict(self, X: Any, centers: Any, assign: Any, *, features: Any = None) -> Any:
        return driver.labels(self.dataset(X, features=features), centers, assign)
