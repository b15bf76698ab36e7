"""Squared Euclidean assignment and the weighted-mean update (classic k-means).

With few features (up to ``direct_max_features``, e.g. RGB pixels) a compiled kernel
computes ``sum_j (x_j - c_j)²`` directly in one pass over the rows (see
:mod:`kmeans._kernels`). With many features the GEMM expansion
``||x - c||² = ||x||² - 2 x·c + ||c||²`` wins: the argmin needs only ``||c||² - 2 x·c``,
one matrix product per chunk of rows sized so the ``(rows, k)`` block stays in cache;
float32 points stay float32 in the product, and the cost of the chosen center is then
recomputed directly in float64 (no cancellation, never negative). Either way ties go to
the lowest center index.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from kmeans._kernels import assign_sqeuclidean, bounded_lloyd_sqeuclidean, lloyd_sqeuclidean, weighted_sums
from kmeans._types import Block, Float64Array, FloatArray, IntArray
from kmeans.distance.base import Distance

#: Target number of entries of one ``(rows, k)`` distance chunk: about 2 MiB of float64
#: (measured on the raccoon: fewer rows per chunk pay Python overhead, more spill the cache).
CHUNK_ELEMENTS = 1 << 18


def chunk_rows(n_centers: int, chunk_elements: int = CHUNK_ELEMENTS) -> int:
    """Rows per chunk so that a ``(rows, n_centers)`` matrix has about ``chunk_elements``."""
    return max(256, chunk_elements // max(n_centers, 1))


def _exact_costs(x: FloatArray, center_cols: Float64Array, labels: IntArray, out: Float64Array) -> None:
    """``out_i = sum_j (x_ij - c_{labels_i, j})²``, column by column in float64 (chunk stays in cache)."""
    out.fill(0.0)
    for j in range(x.shape[1]):
        diff = x[:, j] - center_cols[j].take(labels)
        diff *= diff
        out += diff


@attrs.frozen
class SquaredEuclidean:
    """Squared Euclidean cost, ``||x - c||²``."""

    name: str = "sqeuclidean"
    chunk_elements: int = CHUNK_ELEMENTS
    #: Up to this many features, distances are computed directly by a compiled kernel;
    #: above it the GEMM expansion wins (measured: equal at 16 features, GEMM 2x at 64).
    direct_max_features: int = 12

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        if points.shape[1] <= self.direct_max_features:
            return assign_sqeuclidean(points, centers)
        n, k = points.shape[0], centers.shape[0]
        labels = np.empty(n, dtype=np.intp)
        costs = np.empty(n, dtype=np.float64)
        # The expansion is shift-invariant; taking it about the centers' mean keeps its
        # terms at the scale of the spread, not of the offset from the origin (data far from
        # 0, e.g. float32 embeddings, otherwise cancel to wrong labels). x - origin is exact
        # when x is within a factor 2 of it (Sterbenz).
        origin = centers.mean(axis=0).astype(points.dtype)
        c = (centers - origin).astype(points.dtype, copy=False)
        minus_2ct = np.ascontiguousarray(-2.0 * c.T)
        c_sq = np.einsum("ij,ij->i", c, c)
        center_cols = np.ascontiguousarray(centers.T)  # (d, k) float64, for the exact costs
        step = chunk_rows(k, self.chunk_elements)
        buf = np.empty((min(step, n), k), dtype=points.dtype)
        xbuf = np.empty((min(step, n), points.shape[1]), dtype=points.dtype)
        for s in range(0, n, step):
            x = points[s : s + step]
            m = x.shape[0]
            lab = labels[s : s + m]
            if k == 1:
                lab.fill(0)
            else:
                dist = np.matmul(np.subtract(x, origin, out=xbuf[:m]), minus_2ct, out=buf[:m])
                dist += c_sq
                np.argmin(dist, axis=1, out=lab)
            _exact_costs(x, center_cols, lab, costs[s : s + m])
        return labels, costs

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        if points.shape[1] <= self.direct_max_features:
            direct: Float64Array = np.zeros((points.shape[0], centers.shape[0]))
            for j in range(points.shape[1]):
                diff = points[:, j, None] - centers[None, :, j]
                diff *= diff
                direct += diff
            return direct
        origin = centers.mean(axis=0)  # shift-invariant; avoids cancellation far from 0 (see assign)
        x = points - origin
        c = centers - origin
        d = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ c.T) + np.einsum("ij,ij->i", c, c)
        out: Float64Array = np.maximum(d, 0.0, out=d)
        return out

    def shift(self, old: Float64Array, new: Float64Array) -> Float64Array:
        diff = new - old
        out: Float64Array = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return out


@attrs.frozen
class WeightedMean:
    """Weighted mean update: ``c_j = sum_{i in j} w_i x_i / sum_{i in j} w_i``.

    The summary is ``(sums (k, d), weights (k,))`` in float64; ``merge`` adds them.
    """

    name: str = "mean"

    def plan(self, dataset: Any, k: int) -> None:
        return None

    def partial(self, block: Block, labels: IntArray, k: int, state: Any) -> tuple[Float64Array, Float64Array]:
        return weighted_sums(block.points, block.weights, labels, k)

    def fused_partial(
        self, assign: Any, block: Block, centers: Float64Array, state: Any, memory: dict[Any, Any] | None = None
    ) -> tuple[tuple[Float64Array, Float64Array], float, Float64Array] | None:
        """Assignment, summary and cost in one compiled pass, for the direct L2 kernel's cases.

        Same labels as :meth:`SquaredEuclidean.assign` (below ``direct_max_features`` it
        computes the same float64 distances); above it the GEMM assignment is used, so
        this declines (``None``) and the driver takes the generic path. With ``memory``
        (one Lloyd run), each block keeps Hamerly's distance bounds between passes, so
        rows whose closest center provably did not change cost one distance instead of
        ``k`` (:func:`~kmeans._kernels.bounded_lloyd_sqeuclidean`; the results are
        bit-identical). They cost 8 bytes per row while the run lasts.
        """
        # Exact type: a subclass may override ``assign``, which this pass would bypass.
        if type(assign) is not SquaredEuclidean or block.points.shape[1] > assign.direct_max_features:
            return None
        if memory is None:
            sums, weights, inertia = lloyd_sqeuclidean(block.points, block.weights, centers)
        else:
            sums, weights, inertia, memory[block.start] = bounded_lloyd_sqeuclidean(
                block.points, block.weights, centers, memory.get(block.start)
            )
        return (sums, weights), inertia, weights

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
