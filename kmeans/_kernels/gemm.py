"""Exact squared-Euclidean assignment through BLAS: tiles of rows x centers, fused scans.

For many features (or many centers) most of the work of an assignment is the dot
products ``x·c``; BLAS computes them at the machine's GEMM rate. The expansion
``||x - c||² = ||x||² - 2 x·c + ||c||²`` loses digits, so it only *proposes*: for row
``x`` with approximate distances ``D̃_j`` and a rigorous bound ``|D̃_j - D_j| <= E``
(below), the closest center is among the candidates ``{j : D̃_j <= min D̃ + 2E}``. A row
with one candidate takes it; otherwise the candidates' distances are computed exactly,
and the smallest wins (the lowest index on ties). The chosen center's distance is always
computed exactly, ``sum_j (x_j - c_j)²`` in float64 in feature order: labels, costs, sums
and inertia are bit-identical to the direct kernels of :mod:`kmeans._kernels`.

The bound. The products run on ``x̂ = fl(x - o)`` and ``ĉ = fl(c - o)`` in the points'
dtype (``o`` is the centers' mean, so the terms are at the scale of the spread, not the
offset), with unit roundoff ``u``, and give ``ṽ = fl(fl(||ĉ||²) - 2 fl(x̂·ĉ))`` in that
dtype. With ``R = ||x̂|| + max_j ||ĉ_j||``: the dot product is off by at most
``d·u·||x̂||·||ĉ||`` (any summation order, FMA or not), so ``2 x̂·ĉ`` by ``d·u·R²/2``;
rounding ``||ĉ||²`` and the subtraction add ``2u·R²``; the two roundings of the shift move ``||x - c||`` by
at most ``u·R`` (``2u·R²`` on the square) and the float64 terms add a few ``2⁻⁵³``. The
kernels use ``E = ((2d + 8)·u·1.01 + (d + 8)·2⁻⁵³)·R² + 4d·tiny``, ``tiny`` the smallest
subnormal of the dtype (products that underflow), which covers all of these. The window
``min ṽ + 2E`` is rounded up to the dtype and compared with the raw ``ṽ``: as integer
keys in the floats' order, so the scans over ``k`` centers vectorize. Blocks whose values
could overflow the dtype in the products go to the direct kernel instead.

Rows whose Hamerly bounds (see :func:`kmeans._kernels.bounds.bounded_lloyd_sqeuclidean`) prove
they keep their center skip the tiles and cost one exact distance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._kernels._common import _JIT
from kmeans._kernels.bounds import _MARGIN, _kept, _lower32
from kmeans._types import Float64Array, FloatArray, IntArray

#: Target entries of one ``(rows, k)`` tile of dot products: 512 KiB of float32 stays in L2.
TILE_ELEMENTS = 1 << 17
#: Rows of one sub-block: its three phases (bounds, tiles, sums) run while it is in cache.
SUB_BLOCK_BYTES = 1 << 20


def tile_rows(k: int, tile_elements: int = TILE_ELEMENTS) -> int:
    """Rows per tile so that a ``(rows, k)`` tile has about ``tile_elements`` entries (>= 64)."""
    return max(64, tile_elements // max(k, 1))


def error_factor(d: int, dtype: np.dtype[Any]) -> tuple[float, float]:
    """``(eps, abs)``: ``|D̃ - D| <= eps·R² + abs`` for the expansion in ``dtype`` (module docstring)."""
    info = np.finfo(dtype)
    u = float(info.eps) / 2.0
    eps = (2 * d + 8) * u * 1.01 + (d + 8) * 2.0**-53
    return eps, 4.0 * d * float(info.smallest_subnormal)


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _exact(x: Any, i: int, C: Any, c: int) -> float:  # pragma: no cover - compiled
    # The reference distance: sum_j (x_ij - c_j)² in float64, in feature order.
    if x.shape[1] == 3:  # pixels, unrolled: the same sums in the same order (0 + t² = t²)
        t0 = np.float64(x[i, 0]) - C[c, 0]
        t1 = np.float64(x[i, 1]) - C[c, 1]
        t2 = np.float64(x[i, 2]) - C[c, 2]
        return float(t0 * t0 + t1 * t1 + t2 * t2)
    s = 0.0
    for j in range(x.shape[1]):
        t = np.float64(x[i, j]) - C[c, j]
        s += t * t
    return s


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _kept_phase(
    x: Any, C: Any, labels: Any, lower: Any, drop: Any, half_gap: Any, costs: Any, failed: Any
) -> int:  # pragma: no cover - compiled
    # Rows whose bounds hold keep their label and get their exact cost; the others are listed.
    nf = 0
    for i in range(x.shape[0]):
        a = labels[i]
        s = _exact(x, i, C, a)
        if _kept(s, lower, i, a, drop, half_gap):
            costs[i] = s
        else:
            failed[nf] = i
            nf += 1
    return nf


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _key(b: Any, shift: Any, mask: Any) -> Any:  # pragma: no cover - compiled
    # The bits of a float as an integer in the floats' order (consecutive floats, consecutive
    # integers; -0 just below +0); its own inverse. Integer min and compare vectorize.
    return b ^ ((b >> shift) & mask)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _expand(dot: Any, cc: Any) -> None:  # pragma: no cover - compiled
    # dot[r, c] = fl(||ĉ_c||² - 2 x̂_r·ĉ_c), in place (one rounding; vectorizes).
    for r in range(dot.shape[0]):
        for c in range(dot.shape[1]):
            dot[r, c] = cc[c] - (dot[r, c] + dot[r, c])


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _row_min(bits: Any, r: int, shift: Any, mask: Any) -> Any:  # pragma: no cover - compiled
    m = mask
    for c in range(bits.shape[1]):
        key = _key(bits[r, c], shift, mask)
        m = key if key < m else m
    return m


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _row_window(bits: Any, r: int, thr: Any, shift: Any, mask: Any) -> tuple[int, int, Any]:  # pragma: no cover
    # (how many keys are <= thr, the sum of their indices, the smallest key above thr or mask).
    nc = 0
    isum = 0
    second = mask
    for c in range(bits.shape[1]):
        key = _key(bits[r, c], shift, mask)
        inside = key <= thr
        nc += 1 if inside else 0
        isum += c if inside else 0
        out = mask if inside else key
        second = out if out < second else second
    return nc, isum, second


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _scan_tile(
    bits: Any,
    tile: Any,
    rows: Any,
    x: Any,
    C: Any,
    shift: Any,
    mask: Any,
    scratch: Any,
    fscratch: Any,
    cmax: float,
    eps: float,
    abs_err: float,
    labels: Any,
    lower: Any,
    costs: Any,
    cand: Any,
) -> int:  # pragma: no cover - compiled
    # For tile row r (block row rows[r]), ``bits`` holds the approximate ||c||² - 2 x·c of
    # every center as the integer keys of :func:`_key` (the row's ||x||² changes no
    # comparison): the smallest, the candidate window (its bound rounded up to the dtype),
    # exact distances of the candidates, the label, its exact cost and a lower bound on the
    # exact distance to every other center. ``fscratch`` is ``scratch`` viewed as floats
    # (bits <-> values). Returns how many rows needed a re-check of several candidates.
    k = bits.shape[1]
    d = tile.shape[1]
    rechecked = 0
    for r in range(tile.shape[0]):
        i = rows[r]
        xx = 0.0
        for j in range(d):
            v = np.float64(tile[r, j])
            xx += v * v
        R = np.sqrt(xx) + cmax
        err = eps * R * R + abs_err
        scratch[0] = _key(_row_min(bits, r, shift, mask), shift, mask)
        threshold = np.float64(fscratch[0]) + 2.0 * err
        fscratch[1] = threshold
        thr = _key(scratch[1], shift, mask)
        if np.float64(fscratch[1]) < threshold:
            thr += 1  # the next float up
        nc, isum, above = _row_window(bits, r, thr, shift, mask)  # isum: the index when nc == 1
        second = np.inf
        if above != mask:
            scratch[0] = _key(above, shift, mask)
            second = np.float64(fscratch[0]) + xx - err
        if nc == 1:
            best = isum
            bd = _exact(x, i, C, best)
        else:
            rechecked += 1
            nc = 0
            for c in range(k):
                if _key(bits[r, c], shift, mask) <= thr:
                    cand[nc] = c
                    nc += 1
            best = cand[0]
            bd = _exact(x, i, C, best)
            for t in range(1, nc):
                c = cand[t]
                s = _exact(x, i, C, c)
                if s < bd:
                    second = min(second, bd)
                    bd = s
                    best = c
                else:
                    second = min(second, s)
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(np.sqrt(max(second, 0.0)) * (1.0 - _MARGIN))
    return rechecked


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _accumulate(
    x: Any, w: Any, unit: bool, labels: Any, costs: Any, sums: Any, wsum: Any, inertia: float
) -> float:  # pragma: no cover - compiled
    # Sums, weights and the running inertia in row order (the order of the direct kernels).
    for i in range(x.shape[0]):
        c = labels[i]
        wi = 1.0 if unit else w[i]
        wsum[c] += wi
        inertia += wi * costs[i]
        for j in range(x.shape[1]):
            sums[c, j] += wi * np.float64(x[i, j])
    return inertia


class GemmCenters:
    """The per-pass view of the centers that every tile of a pass reads.

    ``C`` float64 ``(k, d)`` (exact distances), ``ct`` the shifted centers ``ĉ = fl(c - o)``
    in the points' dtype as a ``(d, k)`` BLAS operand, ``cc`` their squared norms rounded to
    that dtype, ``cmax`` the largest norm, ``origin`` the shift in the points' dtype;
    ``key_shift`` / ``key_mask`` make the dtype's bits integer keys (:func:`_key`).
    """

    __slots__ = ("C", "abs_err", "cc", "cmax", "ct", "eps", "key_mask", "key_shift", "origin")

    def __init__(self, centers: Float64Array, dtype: np.dtype[Any]) -> None:
        self.C = np.ascontiguousarray(centers, dtype=np.float64)
        d = centers.shape[1]
        origin = self.C.mean(axis=0).astype(dtype)
        shifted = (self.C - origin).astype(dtype)
        self.origin = origin
        s64 = shifted.astype(np.float64)
        cc = np.einsum("ij,ij->i", s64, s64)
        self.ct = np.ascontiguousarray(shifted.T)
        with np.errstate(over="ignore"):  # inf when the block is unsafe anyway (safe_for)
            self.cc = cc.astype(dtype)
        self.cmax = float(np.sqrt(cc.max())) if cc.size else 0.0
        self.eps, self.abs_err = error_factor(d, np.dtype(dtype))
        ints = np.dtype(f"i{np.dtype(dtype).itemsize}").type
        self.key_shift = ints(8 * np.dtype(dtype).itemsize - 1)
        self.key_mask = ints(np.iinfo(ints).max)

    def safe_for(self, points: FloatArray) -> bool:
        """False when the products could overflow ``points``' dtype (the direct kernel then runs)."""
        if points.shape[0] == 0:
            return True
        big = float(np.finfo(points.dtype).max) / (8.0 * max(points.shape[1], 1))
        hi = max(abs(float(points.max())), abs(float(points.min())))
        radius = hi + float(np.abs(self.origin.astype(np.float64)).max(initial=0.0)) + self.cmax
        return math.isfinite(radius) and radius * radius < big


def gemm_labels(
    points: FloatArray,
    gc: GemmCenters,
    labels: NDArray[Any],
    lower: NDArray[np.float32],
    costs: Float64Array,
    rows: IntArray | None,
    tile_elements: int = TILE_ELEMENTS,
) -> int:
    """Label ``rows`` of ``points`` (all rows when ``None``) through BLAS tiles.

    Writes ``labels``, exact ``costs`` and the lower bounds ``lower`` of those rows;
    returns how many rows needed an exact re-check of several candidates.
    """
    n_sel = points.shape[0] if rows is None else rows.shape[0]
    if n_sel == 0:
        return 0
    k, d = gc.C.shape
    step = min(tile_rows(k, tile_elements), n_sel)
    tile = np.empty((step, d), dtype=points.dtype)
    dot = np.empty((step, k), dtype=points.dtype)
    bits = dot.view(gc.key_mask.dtype)
    scratch = np.empty(2, dtype=gc.key_mask.dtype)
    cand = np.empty(k, dtype=np.int64)
    rechecked = 0
    for s in range(0, n_sel, step):
        if rows is None:
            idx = np.arange(s, min(s + step, n_sel), dtype=np.int64)
            m = idx.shape[0]
            np.subtract(points[s : s + m], gc.origin, out=tile[:m])
        else:
            idx = rows[s : s + step]
            m = idx.shape[0]
            np.take(points, idx, axis=0, out=tile[:m])
            np.subtract(tile[:m], gc.origin, out=tile[:m])
        np.matmul(tile[:m], gc.ct, out=dot[:m])
        _expand(dot[:m], gc.cc)
        rechecked += _scan_tile(
            bits[:m],
            tile[:m],
            idx,
            points,
            gc.C,
            gc.key_shift,
            gc.key_mask,
            scratch,
            scratch.view(points.dtype),
            gc.cmax,
            gc.eps,
            gc.abs_err,
            labels,
            lower,
            costs,
            cand,
        )
    return int(rechecked)


def gemm_assign(
    points: FloatArray, centers: Float64Array, tile_elements: int = TILE_ELEMENTS
) -> tuple[IntArray, Float64Array] | None:
    """``(labels, costs)`` through BLAS tiles, or ``None`` when the block could overflow them."""
    gc = GemmCenters(centers, points.dtype)
    if not gc.safe_for(points):
        return None
    n = points.shape[0]
    labels = np.empty(n, dtype=np.intp)
    costs = np.empty(n, dtype=np.float64)
    lower = np.empty(n, dtype=np.float32)
    gemm_labels(points, gc, labels, lower, costs, None, tile_elements)
    return labels, costs


def gemm_lloyd(
    points: FloatArray,
    w: Float64Array,
    unit: bool,
    centers: Float64Array,
    labels: NDArray[np.int32],
    lower: NDArray[np.float32],
    drop: Float64Array,
    half_gap: Float64Array,
    fresh: bool,
    sums: Float64Array,
    wsum: Float64Array,
    tile_elements: int = TILE_ELEMENTS,
) -> tuple[float, int] | None:
    """One bounded Lloyd pass through BLAS tiles, adding into ``sums`` / ``wsum``: ``(inertia, kept)``.

    The contract of the rows kernels in :mod:`kmeans._kernels.bounds` (``labels`` and
    ``lower`` are the block's bounds, updated in place; ``drop`` / ``half_gap`` the bound
    updates; ``fresh`` when there are none yet). ``None`` (nothing written) when the
    block could overflow the products.
    """
    gc = GemmCenters(centers, points.dtype)
    if not gc.safe_for(points):
        return None
    n, d = points.shape
    costs = np.empty(n, dtype=np.float64)
    sub = max(1024, SUB_BLOCK_BYTES // max(1, d * points.dtype.itemsize))
    failed = np.empty(min(sub, n), dtype=np.int64)
    inertia = 0.0
    kept = 0
    for s in range(0, n, sub):
        x = points[s : s + sub]
        m = x.shape[0]
        lab = labels[s : s + m]
        low = lower[s : s + m]
        cst = costs[s : s + m]
        if fresh:
            gemm_labels(x, gc, lab, low, cst, None, tile_elements)
        else:
            nf = _kept_phase(x, gc.C, lab, low, drop, half_gap, cst, failed)
            kept += m - nf
            gemm_labels(x, gc, lab, low, cst, failed[:nf], tile_elements)
        inertia = _accumulate(x, w if unit else w[s : s + m], unit, lab, cst, sums, wsum, inertia)
    return float(inertia), kept
