"""The fused squared-Euclidean Lloyd pass: bounds, then the rows or the BLAS kernel.

``kernel="rows"`` computes every distance directly (:mod:`kmeans._kernels.bounds`);
``kernel="gemm"`` proposes labels through BLAS tiles and confirms them exactly
(:mod:`kmeans._kernels.gemm`). Both give bit-identical sums, weights and inertia.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kmeans._kernels import neighbors
from kmeans._kernels._common import _unit_or_array
from kmeans._kernels.bounds import (
    _MARGIN,
    RGB_MAX_CENTERS,
    Bounds,
    _bound_updates,
    _bounded_lloyd,
    _bounded_lloyd_3,
    center_shifts,
    largest_other,
)
from kmeans._kernels.gemm import (
    GROUPED_MAX_CENTERS,
    GROUPED_MIN_CENTERS,
    CentersCache,
    GemmCenters,
    _accumulate,
    center_gap_table,
    gemm_labels,
    gemm_lloyd,
    nearest_other,
)
from kmeans._kernels.neighbors import ball_phase, full_rows
from kmeans._types import Float64Array, FloatArray, IntArray

#: Above this many ``k² d`` operations the centers' pairwise gaps come from one BLAS
#: product (with its rounding bound subtracted) instead of the compiled double loop.
_GAPS_BY_GEMM = 1 << 21
#: Above this many centers, rows that fail Hamerly's test search the ball of centers
#: around their own (:mod:`kmeans._kernels.neighbors`) instead of comparing with all.
BALL_MIN_CENTERS = RGB_MAX_CENTERS
#: The first pass of a run also searches balls (from each row's predecessor's center) up
#: to this many features; above it the first pass compares every row with every center.
BALL_FRESH_MAX_FEATURES = 8
#: Above this share of rows left to the full comparison, the ball search pauses ...
BALL_MAX_MISSES = 0.5
#: ... and is tried again every this many passes.
BALL_RETRY = 4
#: Rows of a block sampled to predict the ball search's misses before its table is built.
BALL_SAMPLE = 64


def predicted_ball_misses(points: FloatArray, centers: Float64Array, labels: NDArray[np.int32], m: int) -> float:
    """The share of a sample of rows whose ball cannot fit in ``m`` listed neighbours.

    A row at distance ``u`` from its center ``a`` misses when ``m`` other centers lie
    within ``2u`` of ``a`` (the ball search reaches at least that far,
    :func:`kmeans._kernels.neighbors.ball_phase`), so this share is a lower estimate of the
    misses (up to the rounding of the expansion below: it only decides whether to try).
    Costs ``BALL_SAMPLE·k·d`` against the table's ``k²·d``.
    """
    n = points.shape[0]
    if n == 0:
        return 0.0
    rows = _sample_rows(n)
    reach = 4.0 * _distances_to_own(points, centers, labels, rows)  # (2u)²
    gaps = _sq_gaps_from(centers, labels[rows].astype(np.int64))
    inside = np.count_nonzero(gaps < reach[:, None], axis=1) - 1  # less the row's own center
    return float(np.count_nonzero(inside >= m)) / float(rows.shape[0])


def center_moves(old: Float64Array, new: Float64Array, drop: Float64Array) -> None:
    """``drop[a] = max_{j != a} ||new_j - old_j||``, rounded up."""
    drop[:] = largest_other(center_shifts(old, new))


_half_gaps = CentersCache()


def _half_gaps_of(centers: Float64Array) -> Float64Array:
    k, d = centers.shape
    if GROUPED_MIN_CENTERS <= k <= GROUPED_MAX_CENTERS:  # the grouped passes' table has them
        nearest = nearest_other(center_gap_table(centers))
    else:
        c = centers - centers.mean(axis=0)
        sq = np.einsum("ij,ij->i", c, c)
        radius = np.sqrt(sq)
        # |computed - exact| <= (d + 8) 2**-53 (|c_a| + |c_b|)² for the float64 expansion.
        err = (d + 8) * 2.0**-53 * 1.01 * (radius + radius.max()) ** 2
        nearest = np.empty(k)
        for s in range(0, k, 256):
            rows = np.arange(s, min(s + 256, k))
            g = c[rows] @ c.T
            g *= -2.0
            g += sq[None, :]
            g[np.arange(rows.shape[0]), rows] = np.inf
            nearest[rows] = g.min(axis=1) + sq[rows] - err[rows]
    gaps: Float64Array = 0.5 * np.sqrt(np.maximum(nearest, 0.0)) * (1.0 - _MARGIN)
    return gaps


def half_gaps(centers: Float64Array) -> Float64Array:
    """``min_{j != a} ||c_a - c_j|| / 2`` per center, rounded down, by BLAS in row chunks.

    Computed once per set of centers (the blocks of a pass share it); with as many centers
    as the grouped passes take, from their gap table (:func:`~kmeans._kernels.gemm.center_gap_table`).
    """
    gaps: Float64Array = _half_gaps.get(centers, _half_gaps_of)
    return gaps


def _sample_rows(n: int) -> NDArray[np.int64]:
    # At most BALL_SAMPLE rows spread evenly over n.
    return np.unique(np.linspace(0, n - 1, min(n, BALL_SAMPLE)).astype(np.int64))


def _distances_to_own(
    points: FloatArray, centers: Float64Array, labels: NDArray[np.int32], rows: IntArray
) -> Float64Array:
    # ||x_i - c_{labels[i]}||² for the sampled rows (float64; these only decide what to compute).
    diff = points[rows].astype(np.float64) - centers[labels[rows]]
    out: Float64Array = np.einsum("ij,ij->i", diff, diff)
    return out


def _sq_gaps_from(centers: Float64Array, which: IntArray) -> Float64Array:
    # ||c_a - c_j||² for a in ``which`` and every j, by the shifted expansion (up to its rounding).
    c = centers - centers.mean(axis=0)
    o = c[which]
    gaps: Float64Array = np.einsum("ij,ij->i", o, o)[:, None] - 2.0 * (o @ c.T) + np.einsum("ij,ij->i", c, c)[None, :]
    return gaps


def half_gaps_pay(
    points: FloatArray, centers: Float64Array, labels: NDArray[np.int32], lower: NDArray[np.float32], drop: Float64Array
) -> bool:
    """Whether Hamerly's half gaps would keep a sampled row that its moved lower bound does not.

    Row ``i`` of center ``a`` at distance ``u`` is kept by the half gap alone when
    ``lower_i - drop_a <= u < min_{j != a} ||c_a - c_j|| / 2``. With many centers per
    cluster no row is (the nearest center is far closer than the rows), and the ``k² d``
    gaps cost more than the pass they shorten: then they are skipped (zero, a valid bound).
    Judged on ``BALL_SAMPLE`` rows, whose centers' gaps cost ``BALL_SAMPLE·k·d``.
    """
    n = points.shape[0]
    if n == 0:
        return False
    rows = _sample_rows(n)
    own = labels[rows].astype(np.int64)
    u = np.sqrt(_distances_to_own(points, centers, labels, rows))
    gaps = _sq_gaps_from(centers, own)
    gaps[np.arange(rows.shape[0]), own] = np.inf
    half = 0.5 * np.sqrt(np.maximum(gaps.min(axis=1), 0.0))
    moved = lower[rows].astype(np.float64) - drop[own]
    return bool(np.any((u < half) & ~(u < moved)))


def bound_updates(
    old: Float64Array,
    new: Float64Array,
    drop: Float64Array,
    half_gap: Float64Array,
    sample: tuple[FloatArray, NDArray[np.int32], NDArray[np.float32]] | None = None,
) -> None:
    """Hamerly's per-center updates, on the safe side of rounding (moves up, gaps down).

    ``drop[a] = max_{j != a} ||new_j - old_j||`` and ``half_gap[a] = min_{j != a} ||new_a - new_j|| / 2``.
    With ``sample`` (a block's points, labels and lower bounds), the BLAS-sized gaps are
    only computed when :func:`half_gaps_pay` (else ``half_gap`` is zero).
    """
    k, d = new.shape
    if k * k * d <= _GAPS_BY_GEMM or k < 2:
        _bound_updates(old, new, drop, half_gap)
        return
    center_moves(old, new, drop)
    if sample is not None and not half_gaps_pay(sample[0], new, sample[1], sample[2], drop):
        half_gap[:] = 0.0
        return
    half_gap[:] = half_gaps(new)


def _ball_pass(
    points: FloatArray,
    w: Float64Array,
    unit: bool,
    centers: Float64Array,
    bounds: Bounds,
    moves: Float64Array,
    kernel: str,
    sums: Float64Array,
    wsum: Float64Array,
    fresh: bool,
) -> tuple[float, int]:
    # Bounds and ball search first; the rows they leave go through the kernel's full path;
    # then the sums in row order (so the result does not depend on which rows were settled).
    n = points.shape[0]
    costs = np.empty(n, dtype=np.float64)
    failed = np.empty(n, dtype=np.int64)
    nf = ball_phase(points, centers, bounds.labels, bounds.lower, moves, costs, failed, fresh)
    rest = failed[:nf]
    done = False
    if kernel == "gemm" and nf:
        gc = GemmCenters(centers, points.dtype)
        if gc.safe_for(points):
            gemm_labels(points, gc, bounds.labels, bounds.lower, costs, rest)
            done = True
    if not done:
        full_rows(points, centers, rest, bounds.labels, bounds.lower, costs)
    bounds.ball_misses = nf / n
    return float(_accumulate(points, w, unit, bounds.labels, costs, sums, wsum, 0.0)), n - nf


def bounded_lloyd_sqeuclidean(
    points: FloatArray, weights: Float64Array, centers: Float64Array, bounds: Bounds | None, kernel: str = "rows"
) -> tuple[Float64Array, Float64Array, float, Bounds]:
    """One fused Lloyd pass that skips rows whose closest center cannot have changed.

    Hamerly's rule (2010): after the centers move by ``delta_j``, a row assigned to ``a``
    keeps ``a`` when ``||x - c_a|| < max(l - max_{j != a} delta_j, min_{j != a} ||c_a - c_j|| / 2)``,
    ``l`` being the lower bound on its distance to the other centers at the previous
    pass (triangle inequality). Such a row costs one distance (still computed exactly: it
    feeds the inertia) instead of ``k``. Every bound is kept on the safe side of rounding
    by a relative margin of 1e-9 (far above the rounding of a distance over at most a few
    dozen features), a skip needs a strict inequality and a bound whose square is a normal
    float64 (no underflow to exact ties, no overflow), so a row is only
    skipped when the full comparison would pick the same center (ties included): sums,
    weights and inertia are bit-identical to :func:`lloyd_sqeuclidean`'s, with either
    ``kernel``. ``bounds`` of a previous pass over the same rows (any centers of the same
    shape) make the pass faster; ``None`` starts fresh. Returns the bounds for the next
    pass (updated in place).
    """
    k, d = centers.shape
    n = points.shape[0]
    unit, w = _unit_or_array(weights)
    sums = np.zeros((k, d), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    fresh = bounds is None or bounds.centers.shape != centers.shape or bounds.labels.shape[0] != n
    drop = np.zeros(k, dtype=np.float64)
    half_gap = np.zeros(k, dtype=np.float64)
    if bounds is None or fresh:
        bounds = Bounds(centers, np.empty(n, dtype=np.int32), np.empty(n, dtype=np.float32))
    bounds.passes += 1
    # The ball search pays while most rows' balls fit in the neighbour list; when the last
    # one left most rows to the full comparison (many centers per cluster in many
    # dimensions), only every BALL_RETRY-th pass tries it again.
    ball_pays = bounds.ball_misses <= BALL_MAX_MISSES or bounds.passes % BALL_RETRY == 0
    eligible = not fresh or (kernel == "rows" and d <= BALL_FRESH_MAX_FEATURES)
    m = neighbors.MAX_NEIGHBORS
    if n and k > BALL_MIN_CENTERS and eligible and ball_pays and not fresh and k - 1 > m:
        # Most balls would not fit (many centers per cluster): skip the table's build.
        predicted = predicted_ball_misses(points, centers, bounds.labels, m)
        if predicted > BALL_MAX_MISSES:
            bounds.ball_misses = predicted
            ball_pays = False
    if n and k > BALL_MIN_CENTERS and eligible and ball_pays:
        moves = center_shifts(bounds.centers, centers) if not fresh else np.zeros(k)
        bounds.centers = centers.copy()
        inertia, kept = _ball_pass(points, w, unit, centers, bounds, moves, kernel, sums, wsum, fresh)
        bounds.kept = kept
        return sums, wsum, inertia, bounds
    if not fresh:
        bound_updates(bounds.centers, centers, drop, half_gap, (points, bounds.labels, bounds.lower))
    bounds.centers = centers.copy()
    if n == 0:
        bounds.kept = 0
        return sums, wsum, 0.0, bounds
    out = None
    if kernel == "gemm":
        out = gemm_lloyd(points, w, unit, centers, bounds.labels, bounds.lower, drop, half_gap, fresh, sums, wsum)
    if out is None:
        if d == 3 and k <= RGB_MAX_CENTERS:
            rows_kernel, cc = _bounded_lloyd_3, centers
        else:
            rows_kernel, cc = _bounded_lloyd, np.ascontiguousarray(centers.T)
        out = rows_kernel(points, w, unit, cc, bounds.labels, bounds.lower, drop, half_gap, fresh, sums, wsum)
    inertia, kept = out
    bounds.kept = int(kept)
    return sums, wsum, float(inertia), bounds


def lloyd_sqeuclidean(
    points: FloatArray, weights: Float64Array, centers: Float64Array, kernel: str = "rows"
) -> tuple[Float64Array, Float64Array, float]:
    """One fused Lloyd pass for squared Euclidean cost: ``(sums (k, d), weights (k,), inertia)``.

    For every row, the closest center ``j`` (lowest index on ties) gets ``w_i x_i`` added to
    ``sums[j]`` and ``w_i`` to ``weights[j]``, and ``w_i ||x_i - c_j||²`` is added to the
    inertia: assignment, mean summary and cost in one read of the rows. Labels and costs
    are bit-identical to :func:`~kmeans._kernels.assign.assign_sqeuclidean`'s. (A pass
    without memory; see :func:`bounded_lloyd_sqeuclidean`.)
    """
    sums, wsum, inertia, _ = bounded_lloyd_sqeuclidean(points, weights, centers, None, kernel)
    return sums, wsum, inertia


def ball_assign(points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array] | None:
    """``(labels, costs)`` by the first-pass ball search, or ``None`` where it does not apply.

    For few features and many centers: each row starts from its predecessor's center and
    searches the ball around it (:func:`~kmeans._kernels.neighbors.ball_phase`); the same
    labels and costs as comparing every center.
    """
    n = points.shape[0]
    k, d = centers.shape
    if n == 0 or k <= BALL_MIN_CENTERS or d > BALL_FRESH_MAX_FEATURES:
        return None
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    labels = np.empty(n, dtype=np.int32)
    lower = np.empty(n, dtype=np.float32)
    costs = np.empty(n, dtype=np.float64)
    ball_phase(points, centers, labels, lower, np.zeros(k), costs, np.empty(0, dtype=np.int64), True)
    return labels.astype(np.intp), costs
