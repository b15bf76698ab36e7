"""Exact cosine-similarity assignment (spherical k-means): BLAS tiles for dense rows, CSR loops for sparse.

The reference. Centers are first made unit vectors, ``ĉ = c / ||c||`` (norms in float64, in
feature order: :func:`unit_centers`). The similarity of row ``x`` to center ``j`` is
``s_j = sum_f x_f ĉ_jf``, summed in float64 in feature order; the label is the largest
``s_j`` (the lowest index on ties) and the cost ``max(0, 1 - s_label / ||x||)``. Dividing
every ``s_j`` by the same ``||x|| > 0`` changes no comparison, so rows are never rescaled:
the norms are computed once per block and a run keeps them.

Dense rows: tiles of rows x centers through BLAS, in the points' dtype, *propose*. With unit
roundoff ``u`` of that dtype, ``|s̃_j - s_j| <= E = eps·||x|| + abs`` where
``eps = 1.01·((d + 1)·u/(1 - (d + 1)·u)·(1 + u)² + (d + 1)·2⁻⁵³/(1 - (d + 1)·2⁻⁵³))``
(the dot product's error in any order and with or without FMA, ``|x·ĉ| <= ||x||·||ĉ||``,
the rounding of ``ĉ`` to the dtype, the float64 reference's own rounding) and ``abs``
covers products that underflow. So the best center is among ``{j : s̃_j >= max s̃ - 2E}``;
a row with one candidate takes it, otherwise the candidates' ``s_j`` are computed exactly
and compared. The chosen ``s`` is always the exact one: labels and costs are those of the
float64 brute-force reference, bit for bit. Blocks whose products could overflow the
dtype are computed exactly for every center.

Sparse rows (:class:`kmeans.sparse.SparseRows`): ``s_j`` over the stored values in index
order *is* the reference sum (the zeros add nothing), so every similarity is exact: one
loop over the non-zeros against the centers transposed to ``(d, k)``, ``O(nnz·k)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from kmeans._kernels._common import _JIT, _unit_or_array
from kmeans._kernels.bounds import center_shifts, largest_other
from kmeans._kernels.gemm import TILE_ELEMENTS, tile_rows
from kmeans._types import Float64Array, IntArray
from kmeans.errors import ValidationError
from kmeans.sparse import is_sparse


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _dot(x: Any, i: int, C: Any, c: int) -> float:  # pragma: no cover - compiled
    # The reference similarity: sum_f x_if * C_cf in float64, in feature order.
    s = 0.0
    for f in range(x.shape[1]):
        s += np.float64(x[i, f]) * C[c, f]
    return s


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _dense_norms(x: Any, out: Any) -> None:  # pragma: no cover - compiled
    # Four rows at a time: four independent chains, each in feature order (the same bits as one).
    n = x.shape[0]
    i = 0
    while i + 4 <= n:
        s0 = s1 = s2 = s3 = 0.0
        for f in range(x.shape[1]):
            v0, v1 = np.float64(x[i, f]), np.float64(x[i + 1, f])
            v2, v3 = np.float64(x[i + 2, f]), np.float64(x[i + 3, f])
            s0 += v0 * v0
            s1 += v1 * v1
            s2 += v2 * v2
            s3 += v3 * v3
        out[i], out[i + 1], out[i + 2], out[i + 3] = np.sqrt(s0), np.sqrt(s1), np.sqrt(s2), np.sqrt(s3)
        i += 4
    for r in range(i, n):
        s = 0.0
        for f in range(x.shape[1]):
            v = np.float64(x[r, f])
            s += v * v
        out[r] = np.sqrt(s)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sparse_norms(data: Any, indptr: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(indptr.shape[0] - 1):
        s = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            v = np.float64(data[p])
            s += v * v
        out[i] = np.sqrt(s)


def row_norms(points: Any) -> Float64Array:
    """``||x||`` of every row (dense or sparse), in float64, in feature order."""
    out = np.empty(points.shape[0], dtype=np.float64)
    if is_sparse(points):
        _sparse_norms(points.data, points.indptr, out)
    elif points.shape[0]:
        _dense_norms(np.asarray(points), out)
    return out


def check_no_zero_rows(points: Any, weights: Any = None, *, start: int = 0) -> Float64Array:
    """The row norms; a :class:`ValidationError` naming the first all-zero row (cosine is undefined there)."""
    norms = row_norms(points)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise ValidationError(
            f"distance='cosine' is undefined for all-zero rows: {zero.size} row(s) are zero (first at row "
            f"{start + int(zero[0])}); drop them before clustering"
        )
    return norms


def unit_centers(centers: Float64Array) -> Float64Array:
    """``c / ||c||`` for every center (norms in float64, feature order).

    A zero center (only a given start can be one, such as bisecting's one-center root) stays
    zero: its similarity to every row is 0 (cosine distance 1), and the first update moves it.
    """
    C = np.ascontiguousarray(centers, dtype=np.float64)
    norms = row_norms(C)
    out: Float64Array = C / np.where(norms > 0, norms, 1.0)[:, None]
    return out


def error_factor(d: int, dtype: np.dtype[Any]) -> tuple[float, float]:
    """``(eps, abs)``: ``|s̃ - s| <= eps·||x|| + abs`` for a BLAS similarity in ``dtype`` (module docstring)."""
    info = np.finfo(dtype)
    u = float(info.eps) / 2.0
    n = d + 1
    g = n * u / (1.0 - n * u)
    g64 = n * 2.0**-53 / (1.0 - n * 2.0**-53)
    eps = 1.01 * (g * (1.0 + u) ** 2 + u * (1.0 + u) + g64)
    return eps, 2.0 * n * (float(info.smallest_subnormal) + 2.0**-1074)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _dots(x: Any, C: Any, rows: Any, n_rows: int, labels: Any, sims: Any) -> None:  # pragma: no cover - compiled
    # sims[i] = _dot(x, i, C, labels[i]) for i in rows[:n_rows], eight rows at a time: each row's
    # sum is still one chain in feature order (the same bits), but eight independent chains
    # hide the float64 add latency that a single chain waits on (~4x faster at d=768).
    g = 0
    while g + 8 <= n_rows:
        i0, i1, i2, i3 = rows[g], rows[g + 1], rows[g + 2], rows[g + 3]
        i4, i5, i6, i7 = rows[g + 4], rows[g + 5], rows[g + 6], rows[g + 7]
        c0, c1, c2, c3 = labels[i0], labels[i1], labels[i2], labels[i3]
        c4, c5, c6, c7 = labels[i4], labels[i5], labels[i6], labels[i7]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for f in range(x.shape[1]):
            s0 += np.float64(x[i0, f]) * C[c0, f]
            s1 += np.float64(x[i1, f]) * C[c1, f]
            s2 += np.float64(x[i2, f]) * C[c2, f]
            s3 += np.float64(x[i3, f]) * C[c3, f]
            s4 += np.float64(x[i4, f]) * C[c4, f]
            s5 += np.float64(x[i5, f]) * C[c5, f]
            s6 += np.float64(x[i6, f]) * C[c6, f]
            s7 += np.float64(x[i7, f]) * C[c7, f]
        sims[i0], sims[i1], sims[i2], sims[i3] = s0, s1, s2, s3
        sims[i4], sims[i5], sims[i6], sims[i7] = s4, s5, s6, s7
        g += 8
    for r in range(g, n_rows):
        sims[rows[r]] = _dot(x, rows[r], C, labels[rows[r]])


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _scan_rows(
    dot: Any,
    idx: Any,
    x: Any,
    C: Any,
    nx: Any,
    eps: float,
    abs_err: float,
    labels: Any,
    sims: Any,
    upper: Any,
    clear: Any,
) -> None:  # pragma: no cover - compiled
    # Rows idx[r] of tile r: the candidate window of the BLAS similarities, exact ones for the
    # candidates; rows with one candidate are listed in ``clear`` and get their exact s in one
    # batch. Also upper[i] >= max_{j != label} s_j / ||x||: the largest other BLAS similarity
    # plus its error bound (the margin of the bounds' test covers the rest).
    k = dot.shape[1]
    n_clear = 0
    for r in range(dot.shape[0]):
        i = idx[r]
        m1 = -np.inf
        for c in range(k):
            m1 = max(m1, np.float64(dot[r, c]))
        err = eps * nx[i] + abs_err
        threshold = m1 - 2.0 * err
        nc = 0
        first = 0
        for c in range(k):
            if np.float64(dot[r, c]) >= threshold:
                if nc == 0:
                    first = c
                nc += 1
        best = first
        if nc == 1:
            clear[n_clear] = i
            n_clear += 1
        else:
            bs = -np.inf
            for c in range(first, k):
                if np.float64(dot[r, c]) >= threshold:
                    s = _dot(x, i, C, c)
                    if s > bs:
                        bs = s
                        best = c
            sims[i] = bs
        labels[i] = best
        second = -np.inf
        for c in range(k):
            if c != best:
                second = max(second, np.float64(dot[r, c]))
        upper[i] = (second + err) / nx[i]
    _dots(x, C, clear, n_clear, labels, sims)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _kept_rows(
    sims: Any, nx: Any, upper: Any, labels: Any, drop: Any, margin: float, start: int, stop: int, failed: Any
) -> int:  # pragma: no cover - compiled
    # Row i keeps its center a when its exact s_a exceeds ||x|| (U_i + drop_a + margin), U_i the
    # bound on every other center's cosine at the last pass and drop_a how far they moved since.
    nf = 0
    for i in range(start, stop):
        t = upper[i] + drop[labels[i]]
        upper[i] = t
        if not sims[i] > nx[i] * (t + margin):
            failed[nf] = i
            nf += 1
    return nf


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _dense_exact(x: Any, C: Any, labels: Any, sims: Any) -> None:  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        best = 0
        bs = _dot(x, i, C, 0)
        for c in range(1, C.shape[0]):
            s = _dot(x, i, C, c)
            if s > bs:
                bs = s
                best = c
        labels[i] = best
        sims[i] = bs


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sparse_sims(data: Any, indices: Any, indptr: Any, CT: Any, i: int, acc: Any) -> None:  # pragma: no cover
    # acc[c] = sum_p data_p * CT[indices_p, c] over row i's stored values, in index order (exact).
    k = CT.shape[1]
    for c in range(k):
        acc[c] = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        v = np.float64(data[p])
        row = indices[p]
        for c in range(k):
            acc[c] += v * CT[row, c]


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sparse_assign(data: Any, indices: Any, indptr: Any, CT: Any, labels: Any, sims: Any) -> None:  # pragma: no cover
    k = CT.shape[1]
    acc = np.empty(k, dtype=np.float64)
    for i in range(indptr.shape[0] - 1):
        _sparse_sims(data, indices, indptr, CT, i, acc)
        best = 0
        bs = acc[0]
        for c in range(1, k):
            if acc[c] > bs:
                bs = acc[c]
                best = c
        labels[i] = best
        sims[i] = bs


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sparse_all(data: Any, indices: Any, indptr: Any, CT: Any, out: Any) -> None:  # pragma: no cover - compiled
    k = CT.shape[1]
    acc = np.empty(k, dtype=np.float64)
    for i in range(indptr.shape[0] - 1):
        _sparse_sims(data, indices, indptr, CT, i, acc)
        for c in range(k):
            out[i, c] = acc[c]


def _blas_safe(norms: Float64Array, dtype: np.dtype[Any]) -> bool:
    """No product or partial sum of a BLAS similarity can overflow ``dtype`` (``|x·ĉ| <= ||x||``)."""
    return not norms.size or float(norms.max()) < float(np.finfo(dtype).max) / 4.0


class UnitCenters:
    """Unit centers (:func:`unit_centers`) and their transposes, made once per pass and shared by its blocks.

    ``transposed(dtype)`` is the ``(d, k)`` operand of the BLAS tiles (dense rows, in their
    dtype) or of the CSR loops (float64).
    """

    __slots__ = ("_t", "unit")

    def __init__(self, centers: Float64Array) -> None:
        self.unit = unit_centers(centers)
        self._t: dict[Any, Float64Array] = {}

    @classmethod
    def of_unit(cls, unit: Float64Array) -> UnitCenters:
        """Centers that are unit vectors already (not normalized again)."""
        out = cls.__new__(cls)
        out.unit, out._t = unit, {}
        return out

    def transposed(self, dtype: Any) -> Any:
        key = np.dtype(dtype)
        if key not in self._t:  # racing blocks may both make it: the same values
            self._t[key] = np.ascontiguousarray(self.unit.T.astype(key))
        return self._t[key]


#: Bytes of one tile of dense rows: it stays in L2 from its GEMM to the exact re-check and the sums.
TILE_BYTES = 1 << 20


def _tile_step(n: int, k: int, row_bytes: int, tile_elements: int) -> int:
    """Rows per tile: about ``tile_elements`` similarities and at most ``TILE_BYTES`` of rows (>= 64)."""
    return min(n, max(64, min(tile_rows(k, tile_elements), TILE_BYTES // max(1, row_bytes))))


def _dense_tiles(
    x: Any,
    centers: UnitCenters,
    norms: Float64Array,
    tile_elements: int,
    labels: IntArray,
    sims: Float64Array,
    after: Callable[[int, int], None] | None = None,
) -> None:
    """The BLAS path of :func:`similarities`, tile by tile in row order; ``after(start, rows)`` once a tile is done."""
    n, k = x.shape[0], centers.unit.shape[0]
    ct = centers.transposed(x.dtype)
    eps, abs_err = error_factor(x.shape[1], x.dtype)
    step = _tile_step(n, k, x.shape[1] * x.dtype.itemsize, tile_elements)
    dot = np.empty((step, k), dtype=x.dtype)
    clear = np.empty(step, dtype=np.intp)
    upper = np.empty(n, dtype=np.float64)  # unused here: bounds need it (bounded_assign_and_sum)
    for s in range(0, n, step):
        m = min(step, n - s)
        np.matmul(x[s : s + m], ct, out=dot[:m])
        _scan_rows(dot[:m], np.arange(s, s + m), x, centers.unit, norms, eps, abs_err, labels, sims, upper, clear)
        if after is not None:
            after(s, m)


def _blas_path(x: Any, k: int, norms: Float64Array) -> bool:
    return bool(x.shape[0]) and k > 1 and _blas_safe(norms, x.dtype)


def similarities(
    points: Any, unit: Float64Array | UnitCenters, norms: Float64Array, tile_elements: int = TILE_ELEMENTS
) -> tuple[IntArray, Float64Array]:
    """``(labels, s)``: the most similar unit center of every row and its exact similarity (module docstring)."""
    centers = unit if isinstance(unit, UnitCenters) else UnitCenters.of_unit(unit)
    n = points.shape[0]
    labels = np.empty(n, dtype=np.intp)
    sims = np.empty(n, dtype=np.float64)
    if n == 0:
        return labels, sims
    if is_sparse(points):
        _sparse_assign(points.data, points.indices, points.indptr, centers.transposed(np.float64), labels, sims)
        return labels, sims
    x = np.asarray(points)
    if _blas_path(x, centers.unit.shape[0], norms):
        _dense_tiles(x, centers, norms, tile_elements, labels, sims)
    else:
        _dense_exact(x, centers.unit, labels, sims)
    return labels, sims


def all_similarities(points: Any, unit: Float64Array) -> Float64Array:
    """``(n, k)`` similarities ``x·ĉ_j``: exact for sparse rows, BLAS in float64 for dense ones."""
    if is_sparse(points):
        out = np.empty((points.shape[0], unit.shape[0]), dtype=np.float64)
        _sparse_all(points.data, points.indices, points.indptr, np.ascontiguousarray(unit.T), out)
        return out
    x = np.asarray(points)
    res: Float64Array = x.astype(np.float64, copy=False) @ unit.T
    return res


def cosine_costs(sims: Float64Array, norms: Float64Array) -> Float64Array:
    """``max(0, 1 - s / ||x||)``: the cosine distance of each row to its center."""
    out: Float64Array = np.maximum(1.0 - sims / norms, 0.0)
    return out


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _dense_sums(
    x: Any, w: Any, unit_w: bool, nx: Any, labels: Any, costs: Any, sums: Any, wsum: Any, inertia: float
) -> float:  # pragma: no cover - compiled
    # sums[c] += (w_i / ||x_i||) x_i, wsum[c] += w_i, inertia += w_i cost_i; rows in order.
    for i in range(x.shape[0]):
        c = labels[i]
        wi = 1.0 if unit_w else w[i]
        wsum[c] += wi
        inertia += wi * costs[i]
        a = wi / nx[i]
        for f in range(x.shape[1]):
            sums[c, f] += a * np.float64(x[i, f])
    return inertia


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _sparse_sums(
    data: Any, indices: Any, indptr: Any, w: Any, unit_w: bool, nx: Any, labels: Any, costs: Any, sums: Any, wsum: Any
) -> float:  # pragma: no cover - compiled
    inertia = 0.0
    for i in range(indptr.shape[0] - 1):
        c = labels[i]
        wi = 1.0 if unit_w else w[i]
        wsum[c] += wi
        inertia += wi * costs[i]
        a = wi / nx[i]
        for p in range(indptr[i], indptr[i + 1]):
            sums[c, indices[p]] += a * np.float64(data[p])
    return inertia


def direction_sums(
    points: Any,
    weights: Float64Array,
    norms: Float64Array,
    labels: IntArray,
    costs: Float64Array,
    k: int,
) -> tuple[Float64Array, Float64Array, float]:
    """``(sum_{i in j} w_i x_i / ||x_i|| (k, d), sum_{i in j} w_i (k,), sum_i w_i cost_i)``, rows in order."""
    unit_w, w = _unit_or_array(weights)
    sums = np.zeros((k, points.shape[1]), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    if points.shape[0] == 0:
        return sums, wsum, 0.0
    if is_sparse(points):
        inertia = _sparse_sums(points.data, points.indices, points.indptr, w, unit_w, norms, labels, costs, sums, wsum)
    else:
        inertia = _dense_sums(np.asarray(points), w, unit_w, norms, labels, costs, sums, wsum, 0.0)
    return sums, wsum, float(inertia)


def assign_and_sum(
    points: Any, centers: UnitCenters, norms: Float64Array, weights: Float64Array, tile_elements: int = TILE_ELEMENTS
) -> tuple[IntArray, Float64Array, Float64Array, Float64Array, float]:
    """``(labels, costs, *direction_sums)`` in one read of the rows: the same values as the two calls.

    Dense rows on the BLAS path add each tile to the sums right after its scan, while the
    tile is still in cache; rows stay in order, so every sum is bit-identical.
    """
    x = points if is_sparse(points) else np.asarray(points)
    k = centers.unit.shape[0]
    if is_sparse(x) or not _blas_path(x, k, norms):
        labels, sims = similarities(x, centers, norms, tile_elements)
        costs = cosine_costs(sims, norms)
        return labels, costs, *direction_sums(x, weights, norms, labels, costs, k)
    n = x.shape[0]
    unit_w, w = _unit_or_array(weights)
    labels = np.empty(n, dtype=np.intp)
    sims = np.empty(n, dtype=np.float64)
    costs = np.empty(n, dtype=np.float64)
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    wsum = np.zeros(k, dtype=np.float64)
    inertia = [0.0]

    def after(s: int, m: int) -> None:
        rows = slice(s, s + m)
        costs[rows] = cosine_costs(sims[rows], norms[rows])
        tile_w = w if unit_w else w[rows]
        inertia[0] = _dense_sums(
            x[rows], tile_w, unit_w, norms[rows], labels[rows], costs[rows], sums, wsum, inertia[0]
        )

    _dense_tiles(x, centers, norms, tile_elements, labels, sims, after)
    return labels, costs, sums, wsum, float(inertia[0])


class CosineBounds:
    """Per-row memory of a block between spherical Lloyd passes (Hamerly's test on cosines).

    ``norms`` are the rows' norms, ``kept`` how many rows the last pass settled,
    ``labels[i]`` row i's most similar center among the unit ``centers`` of the last pass
    and ``upper[i]`` an upper bound on its cosine to every other one. For unit centers and
    any row, ``x·ĉ' - x·ĉ <= ||x|| ||ĉ' - ĉ||`` (Cauchy-Schwarz), so after the centers move
    by ``delta_j`` a row keeps ``a`` when ``s_a > ||x|| (U_i + max_{j != a} delta_j + margin)``;
    the margin (1e-9 plus a few ``d·2⁻⁵³``) covers every rounding of the float64 reference
    and of the bound itself, so the labels and costs are those of the full comparison, bit
    for bit.
    """

    __slots__ = ("centers", "kept", "labels", "norms", "sims", "sums", "upper", "wsum")

    def __init__(self, norms: Float64Array) -> None:
        self.norms = norms
        self.kept = 0  # rows the last pass settled by their bound
        self.centers: Float64Array | None = None
        self.labels = np.empty(0, dtype=np.intp)
        self.upper = np.empty(0, dtype=np.float64)
        self.sims = np.empty(0, dtype=np.float64)  # each row's exact similarity to its center
        self.sums: Float64Array | None = None  # the last pass's sums and weights per cluster
        self.wsum = np.empty(0, dtype=np.float64)


def _bound_margin(d: int) -> float:
    return 1e-9 + 8.0 * (d + 8) * 2.0**-53


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _dirty_sums(
    x: Any, w: Any, unit_w: bool, nx: Any, labels: Any, dirty: Any, costs: Any, sums: Any, wsum: Any
) -> float:  # pragma: no cover - compiled
    # _dense_sums for the rows of the dirty clusters only (the others' sums are reused), and
    # the inertia over every row: each in row order, so the bits are _dense_sums' own.
    inertia = 0.0
    for i in range(x.shape[0]):
        c = labels[i]
        wi = 1.0 if unit_w else w[i]
        inertia += wi * costs[i]
        if dirty[c]:
            wsum[c] += wi
            a = wi / nx[i]
            for f in range(x.shape[1]):
                sums[c, f] += a * np.float64(x[i, f])
    return inertia


#: A block keeps its clusters' sums for the next pass (to reuse those whose members did not
#: change) while they take at most this share of the block's bytes, or 1 MiB.
SUMS_SHARE = 0.25


def bounded_assign_and_sum(
    points: Any,
    centers: UnitCenters,
    bounds: CosineBounds,
    weights: Float64Array,
    tile_elements: int = TILE_ELEMENTS,
) -> tuple[IntArray, Float64Array, Float64Array, Float64Array, float]:
    """:func:`assign_and_sum` keeping ``bounds`` between passes: the same labels, costs, sums and inertia, bit for bit.

    A row whose bound holds costs one exact dot product, or none when its center did not
    move (its similarity is the last pass's); the rows that fail go through the BLAS tiles.
    A cluster whose members did not change keeps the last pass's sums (the same rows, in
    the same order). Falls back to :func:`assign_and_sum` where that takes no tiles.
    """
    x = points if is_sparse(points) else np.asarray(points)
    k = centers.unit.shape[0]
    norms = bounds.norms
    if is_sparse(x) or not _blas_path(x, k, norms):
        return assign_and_sum(x, centers, norms, weights, tile_elements)
    n, d = x.shape
    unit = centers.unit
    ct = centers.transposed(x.dtype)
    eps, abs_err = error_factor(d, x.dtype)
    unit_w, w = _unit_or_array(weights)
    old = bounds.centers
    fresh = old is None or old.shape != unit.shape or bounds.labels.shape[0] != n
    if old is None or fresh:
        bounds.labels = np.empty(n, dtype=np.intp)
        bounds.upper = np.empty(n, dtype=np.float64)
        bounds.sims = np.empty(n, dtype=np.float64)
        bounds.sums = None
        moved = np.ones(k, dtype=np.bool_)
        drop = np.zeros(k)
    else:
        moved = np.any(unit != old, axis=1)
        drop = largest_other(center_shifts(old, unit))
    bounds.centers = unit
    margin = _bound_margin(d)
    labels, upper, sims = bounds.labels, bounds.upper, bounds.sims
    dirty = np.zeros(k, dtype=np.bool_)
    # Chunks that stay in cache from the own-center dot products through the tiles of the rows
    # that fail their bound.
    step = _tile_step(n, k, d * x.dtype.itemsize, tile_elements)
    dot = np.empty((step, k), dtype=x.dtype)
    tile = np.empty((step, d), dtype=x.dtype)
    clear = np.empty(step, dtype=np.intp)
    failed = np.empty(step, dtype=np.intp)
    bounds.kept = 0
    for s in range(0, n, step):
        m = min(step, n - s)
        if fresh:
            np.matmul(x[s : s + m], ct, out=dot[:m])
            _scan_rows(dot[:m], np.arange(s, s + m), x, unit, norms, eps, abs_err, labels, sims, upper, clear)
            continue
        need = s + np.flatnonzero(moved[labels[s : s + m]])
        _dots(x, unit, need, need.shape[0], labels, sims)
        nf = _kept_rows(sims, norms, upper, labels, drop, margin, s, s + m, failed)
        bounds.kept += m - nf
        if nf:
            idx = failed[:nf]
            before = labels[idx]
            np.take(x, idx, axis=0, out=tile[:nf])
            np.matmul(tile[:nf], ct, out=dot[:nf])
            _scan_rows(dot[:nf], idx, x, unit, norms, eps, abs_err, labels, sims, upper, clear)
            changed = labels[idx] != before
            dirty[before[changed]] = True
            dirty[labels[idx][changed]] = True
    costs = cosine_costs(sims, norms)
    if bounds.sums is None:
        sums = np.zeros((k, d), dtype=np.float64)
        wsum = np.zeros(k, dtype=np.float64)
        inertia = _dense_sums(x, w, unit_w, norms, labels, costs, sums, wsum, 0.0)
    else:
        sums, wsum = bounds.sums.copy(), bounds.wsum.copy()
        sums[dirty] = 0.0
        wsum[dirty] = 0.0
        inertia = _dirty_sums(x, w, unit_w, norms, labels, dirty, costs, sums, wsum)
    if sums.nbytes <= max(1 << 20, SUMS_SHARE * x.nbytes):
        bounds.sums, bounds.wsum = sums.copy(), wsum.copy()
    return labels.copy(), costs, sums, wsum, float(inertia)


__all__ = [
    "CosineBounds",
    "all_similarities",
    "assign_and_sum",
    "bounded_assign_and_sum",
    "check_no_zero_rows",
    "cosine_costs",
    "direction_sums",
    "row_norms",
    "similarities",
    "unit_centers",
]
