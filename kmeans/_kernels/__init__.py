"""Compiled row kernels (Numba) for the hot loops of assignment, update and compression.

Why compiled: with few features (pixels have 3) a BLAS product cannot amortize its
overhead, and NumPy needs several passes over an ``(n, k)`` matrix per iteration. These
kernels make one pass over the rows, keep the ``k`` distances of a row in registers or
L1 cache, and compute squared distances directly as ``sum_j (x_j - c_j)²`` in float64:
no cancellation, no negative costs, and the same bits on every machine whatever the
block layout, so ties are decided identically everywhere. With many features or centers
:mod:`kmeans._kernels.gemm` proposes labels through BLAS and confirms them with the same
float64 distances. Rows are read in their own dtype (float32 input is never copied to
float64). The kernels release the GIL, so the NumPy backend runs blocks on threads.

By concept: :mod:`~kmeans._kernels.assign` (direct distances), :mod:`~kmeans._kernels.bounds`
(Hamerly's bounds, fused Lloyd passes), :mod:`~kmeans._kernels.gemm` (BLAS tiles),
:mod:`~kmeans._kernels.packing` (row keys for ``compress``).
"""

from kmeans._kernels.assign import assign_manhattan, assign_sqeuclidean, weighted_sums
from kmeans._kernels.bounds import RGB_MAX_CENTERS, Bounds
from kmeans._kernels.gemm import gemm_assign
from kmeans._kernels.lloyd import ball_assign, bounded_lloyd_sqeuclidean, lloyd_sqeuclidean
from kmeans._kernels.packing import pack_rows, small_int_ranges, unique_small_keys

__all__ = [
    "RGB_MAX_CENTERS",
    "Bounds",
    "assign_manhattan",
    "assign_sqeuclidean",
    "ball_assign",
    "bounded_lloyd_sqeuclidean",
    "gemm_assign",
    "lloyd_sqeuclidean",
    "pack_rows",
    "small_int_ranges",
    "unique_small_keys",
    "weighted_sums",
]
