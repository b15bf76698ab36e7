"""Cosine assignment and the normalized weighted-mean update: spherical k-means (Dhillon & Modha 2001).

Only directions matter: row ``x`` and ``a·x`` (``a > 0``) are the same point. Centers are
unit vectors. With ``ĉ_j = c_j / ||c_j||`` and ``cos(x, c) = x·ĉ / ||x||``:

- **assignment**: the center of largest cosine similarity (the lowest index on ties),
  exactly as a float64 brute-force reference computes it (:mod:`kmeans._kernels.cosine`:
  BLAS tiles propose, near-ties are re-checked in float64; sparse rows are exact);
- **cost**: the cosine distance ``1 - cos(x, c)`` (at least 0), so the inertia is
  ``sum_i w_i (1 - cos(x_i, c_i))``; ``KMeans.transform`` gives these distances;
- **update**: ``c_j = m_j / ||m_j||`` with ``m_j = sum_{i in j} w_i x_i / ||x_i|| / sum_{i in j} w_i``,
  the weighted mean of the member *directions*, normalized. **Zero mean rule**: when the
  directions of a non-empty cluster cancel exactly (``m_j = 0``, e.g. two opposite rows of
  equal weight) the cluster keeps its previous center, on every backend;
- **zero rows** have no direction: a fit refuses them before any pass
  (:meth:`Cosine.check_dataset`), and ``predict``/``transform``/``score`` refuse them too.

This is Spark MLlib's ``CosineDistanceMeasure`` (``distanceMeasure="cosine"``: the same
distance, the cluster sum of ``w x / ||x||``, the centroid normalized), so
``backend="spark-ml"`` hands ``distance="cosine"`` to MLlib; ``numpy`` and ``spark-rdd`` run
this strategy. Convergence (``tol``) compares the Euclidean distance between the old and
new unit centers. Rows may be dense or sparse (:class:`kmeans.sparse.SparseRows`); the row
norms are computed once per block and kept for the whole Lloyd run.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from kmeans._kernels.cosine import (
    CosineBounds,
    UnitCenters,
    all_similarities,
    assign_and_sum,
    bounded_assign_and_sum,
    check_no_zero_rows,
    cosine_costs,
    direction_sums,
    row_norms,
    similarities,
    unit_centers,
)
from kmeans._kernels.gemm import TILE_ELEMENTS
from kmeans._types import Block, Float64Array, FloatArray, IntArray, RunMemory
from kmeans.distance.base import Distance
from kmeans.distance.l2 import WeightedMean
from kmeans.errors import ValidationError
from kmeans.protocols import optional


def zero_rows(dataset: Any) -> tuple[int, int]:
    """``(count, first global index)`` of all-zero rows (``(0, -1)`` when none), in one pass.

    Uses the dataset's own ``zero_rows()`` when it has one (a DataFrame answers it in SQL).
    """
    own = optional(dataset, "zero_rows")
    if own is not None:
        found: tuple[int, int] = own()
        return found

    def fn(block: Block) -> tuple[int, int]:
        zero = np.flatnonzero(row_norms(block.points) == 0.0)
        return int(zero.size), (block.start + int(zero[0])) if zero.size else -1

    def merge(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        firsts = [f for f in (a[1], b[1]) if f >= 0]
        return a[0] + b[0], min(firsts) if firsts else -1

    return dataset.map_reduce(fn, merge)  # type: ignore[no-any-return]


@attrs.frozen
class Cosine:
    """Cosine distance ``1 - x·c / (||x|| ||c||)``; assignment by the largest cosine similarity.

    ``chunk_elements`` sizes the BLAS tiles of dense rows (entries of one rows x centers tile).
    """

    sparse = True  # reads SparseRows (scipy.sparse input)
    name: str = "cosine"
    chunk_elements: int = TILE_ELEMENTS

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        norms = check_no_zero_rows(points)
        labels, sims = similarities(points, unit_centers(centers), norms, self.chunk_elements)
        return labels, cosine_costs(sims, norms)

    def assign_with_norms(
        self, points: Any, centers: Float64Array | UnitCenters, norms: Float64Array
    ) -> tuple[IntArray, Float64Array]:
        """:meth:`assign` for rows whose norms are known (and non-zero); ``centers`` may be prepared."""
        unit = centers if isinstance(centers, UnitCenters) else UnitCenters(centers)
        labels, sims = similarities(points, unit, norms, self.chunk_elements)
        return labels, cosine_costs(sims, norms)

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        """``(n, k)`` cosine distances ``max(0, 1 - cos)`` (initializers, ``KMeans.transform``)."""
        norms = check_no_zero_rows(points)
        out: Float64Array = np.maximum(1.0 - all_similarities(points, unit_centers(centers)) / norms[:, None], 0.0)
        return out

    def canonical(self, points: Float64Array) -> Float64Array:
        """The unit rows ``x / ||x||``: rows with the same one are the same point (direction) to this metric."""
        out: Float64Array = points / check_no_zero_rows(points)[:, None]
        return out

    def shift(self, old: Float64Array, new: Float64Array) -> Float64Array:
        """Euclidean distance between the old and new unit centers, ``sqrt(2 (1 - cos))``."""
        diff = unit_centers(new) - unit_centers(old)
        out: Float64Array = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return out

    def check_dataset(self, dataset: Any) -> None:
        """Refuse all-zero rows (they have no direction): one pass, before any fitting work."""
        count, first = zero_rows(dataset)
        if count:
            where = f" (first at row {first})" if first >= 0 else ""
            raise ValidationError(
                f"distance='cosine' is undefined for all-zero rows: {count} row(s) are zero{where}; "
                "drop them before clustering"
            )


def _bounds(block: Block, memory: RunMemory) -> CosineBounds:
    """The block's row norms and cosine bounds, kept in ``memory`` for the run (norms computed once per block)."""
    bounds = memory.get(block.start)
    if not isinstance(bounds, CosineBounds) or bounds.norms.shape[0] != block.n_rows:
        bounds = CosineBounds(check_no_zero_rows(block.points, start=block.start))
    return bounds


#: The ``memory`` key of the pass's prepared centers: one entry that every block of a pass
#: reads (blocks racing to make it make the same values), beside the per-block row norms.
_CENTERS_KEY = "cosine-unit-centers"


def _unit(centers: Float64Array, memory: RunMemory | None) -> UnitCenters:
    """The pass's :class:`UnitCenters`, made by the first block and reused by the others (same ``centers``)."""
    if memory is None:
        return UnitCenters(centers)
    held = memory.get(_CENTERS_KEY)
    if held is None or held[0] is not centers:
        held = memory[_CENTERS_KEY] = (centers, UnitCenters(centers))
    return held[1]  # type: ignore[no-any-return]


@attrs.frozen
class SphericalMean(WeightedMean):
    """Normalized weighted mean of the member directions (see the module docstring).

    The summary is ``(sum w x / ||x|| (k, d), sum w (k,))`` in float64; ``merge`` adds them
    (:class:`~kmeans.distance.l2.WeightedMean`'s).
    """

    name: str = "spherical-mean"

    def partial(self, block: Block, labels: IntArray, k: int, state: Any) -> tuple[Float64Array, Float64Array]:
        norms = check_no_zero_rows(block.points, start=block.start)
        sums, weights, _ = direction_sums(block.points, block.weights, norms, labels, np.zeros(block.n_rows), k)
        return sums, weights

    def fused_partial(
        self, assign: Any, block: Block, centers: Float64Array, state: Any, memory: RunMemory | None = None
    ) -> tuple[tuple[Float64Array, Float64Array], float, Float64Array] | None:
        """Assignment, summary and cost in one read of the block; the row norms kept in ``memory``.

        Same labels and costs as :meth:`Cosine.assign`. With ``memory`` (one Lloyd run), each
        block keeps its row norms and Hamerly-style bounds on its rows' cosines between passes
        (:class:`~kmeans._kernels.cosine.CosineBounds`; 24 bytes per row beside the norms while the run lasts),
        so rows that provably keep their center cost one dot product instead of ``k``; the
        results are bit-identical. Declines (``None``) for an assign step other than
        :class:`Cosine` itself.
        """
        if type(assign) is not Cosine:
            return None
        if memory is None:
            norms = check_no_zero_rows(block.points, start=block.start)
            _, _, sums, weights, inertia = assign_and_sum(
                block.points, _unit(centers, memory), norms, block.weights, assign.chunk_elements
            )
            return (sums, weights), inertia, weights
        bounds = _bounds(block, memory)
        _, _, sums, weights, inertia = bounded_assign_and_sum(
            block.points, _unit(centers, memory), bounds, block.weights, assign.chunk_elements
        )
        memory[block.start] = bounds
        return (sums, weights), inertia, weights

    def finalize(
        self, summary: tuple[Float64Array, Float64Array], old_centers: Float64Array, state: Any
    ) -> Float64Array:
        sums, weights = summary
        centers = old_centers.astype(np.float64, copy=True)
        old_norms = row_norms(centers)
        kept = old_norms > 0  # unit vectors also for clusters that keep their center (a zero one stays zero)
        centers[kept] /= old_norms[kept, None]
        nonempty = weights > 0
        mean = sums[nonempty] / weights[nonempty, None]
        norms = row_norms(mean)
        keep = norms > 0  # the zero mean rule: directions that cancel keep the old center
        rows = np.flatnonzero(nonempty)[keep]
        centers[rows] = mean[keep] / norms[keep, None]
        return centers


COSINE = Distance(name="cosine", assign=Cosine(), update=SphericalMean(), cost_power=0, squares=True)
