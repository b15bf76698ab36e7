"""Squared Euclidean assignment and the weighted-mean update (classic k-means).

Assignment uses the GEMM expansion ``||x - c||² = ||x||² - 2 x·c + ||c||²``: the argmin
over centers needs only ``||c||² - 2 x·c``, which one matrix product computes, chunk by
chunk so that the ``(rows, k)`` block stays in cache. Float32 points stay float32 in the
product. The reported cost of the chosen center is then recomputed directly as
``sum((x - c)²)`` in float64, which is exact up to rounding (no cancellation) and
never negative. Ties go to the lowest center index (``argmin`` returns the first).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from kmeans._ops import weighted_bincount
from kmeans._types import Block, Float64Array, FloatArray, IntArray
from kmeans.distance.base import Distance

#: Target number of entries of one ``(rows, k)`` distance chunk: about 1 MiB of float64.
CHUNK_ELEMENTS = 1 << 17


def chunk_rows(n_centers: int, chunk_elements: int = CHUNK_ELEMENTS) -> int:
    """Rows per chunk so that a ``(rows, n_centers)`` matrix has about ``chunk_elements``."""
    return max(256, chunk_elements // max(n_centers, 1))


def row_costs(points: FloatArray, centers: Float64Array, labels: IntArray) -> Float64Array:
    """``sum((x_i - c_{labels_i})²)`` per row, computed directly in float64."""
    diff = points - centers[labels]
    return np.einsum("ij,ij->i", diff, diff, dtype=np.float64)  # type: ignore[no-any-return]


@attrs.frozen
class SquaredEuclidean:
    """Squared Euclidean cost, ``||x - c||²``."""

    name: str = "sqeuclidean"
    chunk_elements: int = CHUNK_ELEMENTS

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        n, k = points.shape[0], centers.shape[0]
        labels = np.empty(n, dtype=np.intp)
        if k == 1:
            labels.fill(0)
            return labels, row_costs(points, centers, labels)
        c = centers.astype(points.dtype, copy=False)
        minus_2ct = np.ascontiguousarray(-2.0 * c.T)
        c_sq = np.einsum("ij,ij->i", c, c)
        step = chunk_rows(k, self.chunk_elements)
        buf = np.empty((min(step, n), k), dtype=points.dtype)
        for s in range(0, n, step):
            x = points[s : s + step]
            dist = np.matmul(x, minus_2ct, out=buf[: x.shape[0]])
            dist += c_sq
            np.argmin(dist, axis=1, out=labels[s : s + x.shape[0]])
        return labels, row_costs(points, centers, labels)

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        x = points.astype(np.float64, copy=False)
        d = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ centers.T) + np.einsum("ij,ij->i", centers, centers)
        out: Float64Array = np.maximum(d, 0.0, out=d)
        return out

    def shift(self, old: Float64Array, new: Float64Array) -> Float64Array:
        diff = new - old
        out: Float64Array = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return out


def weighted_label_sums(block: Block, labels: IntArray, k: int) -> tuple[Float64Array, Float64Array]:
    """``(sums, weights)``: per cluster, ``sum(w_i x_i)`` ``(k, d)`` and ``sum(w_i)`` ``(k,)``, float64."""
    points, weights = block.points, block.weights
    unit = weights.strides == (0,) and (weights.size == 0 or weights[0] == 1.0)
    d = points.shape[1]
    sums = np.empty((k, d), dtype=np.float64)
    for j in range(d):
        col = points[:, j] if unit else points[:, j] * weights
        sums[:, j] = np.bincount(labels, weights=col, minlength=k)
    return sums, weighted_bincount(labels, None if unit else weights, k)


@attrs.frozen
class WeightedMean:
    """Weighted mean update: ``c_j = sum_{i in j} w_i x_i / sum_{i in j} w_i``.

    The summary is ``(sums (k, d), weights (k,))`` in float64; ``merge`` adds them.
    """

    name: str = "mean"

    def plan(self, dataset: Any, k: int) -> None:
        return None

    def partial(self, block: Block, labels: IntArray, k: int, state: Any) -> tuple[Float64Array, Float64Array]:
        return weighted_label_sums(block, labels, k)

    def merge(
        self, a: tuple[Float64Array, Float64Array], b: tuple[Float64Array, Float64Array]
    ) -> tuple[Float64Array, Float64Array]:
        return a[0] + b[0], a[1] + b[1]

    def finalize(
        self, summary: tuple[Float64Array, Float64Array], old_centers: Float64Array, state: Any
    ) -> Float64Array:
        sums, weights = summary
        nonempty = weights > 0
        centers = old_centers.astype(np.float64, copy=True)
        centers[nonempty] = sums[nonempty] / weights[nonempty, None]
        return centers


L2 = Distance(name="l2", assign=SquaredEuclidean(), update=WeightedMean())
