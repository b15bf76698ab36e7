"""Squared Euclidean assignment and the weighted-mean update (classic k-means).

Two exact kernels, chosen by shape (``kernel="auto"``) or by name:

- ``"rows"``: a compiled kernel computes ``sum_j (x_j - c_j)²`` directly for every center,
  one pass over the rows (:mod:`kmeans._kernels`); best for few features (pixels).
- ``"gemm"``: tiles of rows x centers through BLAS propose the closest center with the
  expansion ``||x||² - 2 x·c + ||c||²``; every row whose runner-up is within the
  expansion's rigorous error bound is re-checked exactly (:mod:`kmeans._kernels.gemm`).
  Best for many features.

Either way the chosen center's cost is computed directly in float64 (never negative, no
cancellation), ties go to the lowest center index, and labels, costs, sums and inertia
are bit-identical between the two kernels. Sparse rows (:class:`kmeans.sparse.SparseRows`)
go through :mod:`kmeans._kernels.sparse`: the same labels, costs equal up to rounding.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from kmeans._kernels import (
    assign_sqeuclidean,
    ball_assign,
    bounded_lloyd_sqeuclidean,
    gemm_assign,
    lloyd_sqeuclidean,
    weighted_sums,
)
from kmeans._kernels.sparse import sparse_sq_assign, sparse_sq_pairwise, sparse_weighted_sums
from kmeans._types import Block, Float64Array, FloatArray, IntArray, RunMemory
from kmeans.distance.base import Distance
from kmeans.sparse import is_sparse

#: Target number of entries of one ``(rows, k)`` tile of the BLAS kernel: 1 MiB of float32.
CHUNK_ELEMENTS = 1 << 18

KERNELS = ("auto", "rows", "gemm")


@attrs.frozen
class SquaredEuclidean:
    """Squared Euclidean cost, ``||x - c||²``.

    ``kernel``: ``"auto"`` (``"rows"`` up to ``direct_max_features`` features, ``"gemm"``
    above), ``"rows"`` or ``"gemm"``; all give the same bits. ``chunk_elements`` sizes the
    BLAS tiles.
    """

    sparse = True  # reads SparseRows (scipy.sparse input)
    name: str = "sqeuclidean"
    chunk_elements: int = CHUNK_ELEMENTS
    #: With ``kernel="auto"``, up to this many features the rows kernel runs, above it BLAS.
    direct_max_features: int = 12
    kernel: str = attrs.field(default="auto", validator=attrs.validators.in_(KERNELS))

    def kernel_for(self, d: int, k: int) -> str:
        """The kernel that runs for ``d`` features and ``k`` centers: ``"rows"`` or ``"gemm"``."""
        if self.kernel != "auto":
            return self.kernel
        return "rows" if d <= self.direct_max_features else "gemm"

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        if is_sparse(points):  # CSR rows against dense centers; the same labels (kmeans._kernels.sparse)
            return sparse_sq_assign(points, centers)
        if self.kernel_for(points.shape[1], centers.shape[0]) == "gemm":
            out = gemm_assign(points, np.asarray(centers, dtype=np.float64), self.chunk_elements)
        else:  # many centers, few features: the ball search around each row's predecessor's center
            out = ball_assign(points, np.asarray(centers, dtype=np.float64))
        if out is not None:
            return out
        return assign_sqeuclidean(points, centers)

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        if is_sparse(points):
            return sparse_sq_pairwise(points, centers)
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

    def distances(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        """Euclidean distances ``(n, k)``, the square root of :meth:`pairwise` (``KMeans.transform``)."""
        return np.sqrt(self.pairwise(points, centers))

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
        if is_sparse(block.points):
            return sparse_weighted_sums(block.points, block.weights, labels, k)
        return weighted_sums(block.points, block.weights, labels, k)

    def fused_partial(
        self, assign: Any, block: Block, centers: Float64Array, state: Any, memory: RunMemory | None = None
    ) -> tuple[tuple[Float64Array, Float64Array], float, Float64Array] | None:
        """Assignment, summary and cost in one compiled pass, with the assign step's kernel.

        Same labels and costs as :meth:`SquaredEuclidean.assign`. With ``memory`` (one
        Lloyd run), each block keeps Hamerly's distance bounds between passes, so rows
        whose closest center provably did not change cost one distance instead of ``k``
        (:func:`~kmeans._kernels.bounded_lloyd_sqeuclidean`; the results are
        bit-identical). They cost 8 bytes per row while the run lasts. Declines
        (``None``) for an assign step other than :class:`SquaredEuclidean` itself.
        """
        # Exact type: a subclass may override ``assign``, which this pass would bypass.
        if type(assign) is not SquaredEuclidean or is_sparse(block.points):
            return None
        kernel = assign.kernel_for(block.points.shape[1], centers.shape[0])
        if memory is None:
            sums, weights, inertia = lloyd_sqeuclidean(block.points, block.weights, centers, kernel)
        else:
            sums, weights, inertia, memory[block.start] = bounded_lloyd_sqeuclidean(
                block.points, block.weights, centers, memory.get(block.start), kernel
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


L2 = Distance(name="l2", assign=SquaredEuclidean(), update=WeightedMean(), cost_power=2, squares=True)
