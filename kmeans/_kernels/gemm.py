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
keys in the floats' order, so the scans over ``k`` centers vectorize. From
``CENTERS_MAJOR_MIN`` centers a tile is computed centers-major, ``(k, rows)``, and scanned
across rows on the floats themselves (the same order but for -0 = +0, which can only add a
candidate). Blocks whose values could overflow the dtype in the products go to the direct
kernel instead.

Rows whose Hamerly bounds (see :func:`kmeans._kernels.bounds.bounded_lloyd_sqeuclidean`) prove
they keep their center skip the tiles and cost one exact distance.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._kernels._common import _JIT
from kmeans._kernels.bounds import _MARGIN, _kept, _lower32
from kmeans._types import Float64Array, FloatArray, IntArray

#: Target entries of one ``(rows, k)`` tile of dot products: 512 KiB of float32 stays in L2.
TILE_ELEMENTS = 1 << 17
#: From this many centers a tile is computed centers-major, ``(k, rows) = ĉ · x̂ᵀ``: with few
#: features BLAS runs that product faster than ``(rows, k)``, and the scans vectorize across
#: rows (d=32, k=4096, one thread, products and scans: 57 vs 42 GFLOP/s) ...
CENTERS_MAJOR_MIN = 1024
#: ... with at least this many rows a tile (128-256 rows measured 10% faster than 64 there).
CENTERS_MAJOR_ROWS = 128
#: From this many centers (and :data:`GROUPED_ROWS_PER_CENTER` block rows per center) the
#: rows that fail their bounds go cluster by cluster against the centers within reach
#: (:func:`grouped_labels`): at d=32, k=4096 a cluster's ball holds ~224 centers, and one
#: pass over a 262,144-row block costs 0.5-0.8 s CPU instead of 1.5 s. The candidate lists
#: cost a scan of the pass's k x k gap table per block, hence the rows per center.
GROUPED_MIN_CENTERS = 1024
GROUPED_ROWS_PER_CENTER = 8
#: ... and up to this many centers: the pass keeps their k x k gap table (256 MiB of float32 here).
GROUPED_MAX_CENTERS = 8192
#: With fewer listed rows per cluster than this, a grouped pass compares them with their
#: cluster's candidates in a compiled loop instead of one BLAS tile per cluster (at d=32,
#: k=4096: 8 rows per cluster, the loop 8% faster; 16 rows, the tiles 14% faster).
TILE_ROWS_PER_CLUSTER = 12
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


#: The exact distance's terms summed in any order (so it vectorizes): the differences and
#: squares round identically, so ``|fast - exact| <= 2 (d - 1) u exact`` (nonnegative terms).
_fast_sq = njit(**{**_JIT, "fastmath": {"reassoc", "nsz", "nnan"}})(_exact.py_func)
#: From this many features candidates are first compared through :func:`_fast_sq`,
#: confirmed exactly only when close (the ball search and the grouped passes' loop).
FAST_MIN_FEATURES = 16


def fast_rel(d: int) -> float:
    """The relative error bound the candidate comparisons allow :func:`_fast_sq` over ``d`` features."""
    return (2 * d + 4) * 2.0**-53


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _kept_phase(
    x: Any, C: Any, labels: Any, lower: Any, drop: Any, half_gap: Any, costs: Any, failed: Any
) -> int:  # pragma: no cover - compiled
    # Rows whose bounds hold keep their label; the others are listed. Every row gets its exact
    # distance to its current center.
    nf = 0
    for i in range(x.shape[0]):
        a = labels[i]
        s = _exact(x, i, C, a)
        costs[i] = s  # for a listed row: its distance to its current center
        if not _kept(s, lower, i, a, drop, half_gap):
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


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _row_error(tile: Any, r: int, cmax: float, eps: float, abs_err: float) -> tuple[float, float]:  # pragma: no cover
    # (||x̂_r||² in float64, the expansion's error bound E for tile row r).
    xx = 0.0
    for j in range(tile.shape[1]):
        v = np.float64(tile[r, j])
        xx += v * v
    R = np.sqrt(xx) + cmax
    return xx, eps * R * R + abs_err


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _best_of(x: Any, i: int, C: Any, cand: Any, nc: int, second: float) -> tuple[int, float, float]:  # pragma: no cover
    # The candidates cand[:nc] compared exactly (lowest index on ties: cand ascends), and
    # the smallest of ``second`` and the losers' exact distances.
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
    return best, bd, second


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
    rechecked = 0
    for r in range(tile.shape[0]):
        i = rows[r]
        xx, err = _row_error(tile, r, cmax, eps, abs_err)
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
            best, bd, second = _best_of(x, i, C, cand, nc, second)
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(np.sqrt(max(second, 0.0)) * (1.0 - _MARGIN))
    return rechecked


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _scan_tile_t(
    dot: Any,
    cc: Any,
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
    fwork: Any,
    iwork: Any,
    cmap: Any,
    cap: Any,
) -> int:  # pragma: no cover - compiled
    # :func:`_expand` and :func:`_scan_tile` on a centers-major tile of products
    # (``dot[c, r]``, column r for tile row r): the same values, window and candidates, with
    # the loops over centers outside and over rows inside, so every step vectorizes across
    # rows. The comparisons run on the floats themselves (finite here: ``safe_for``); they
    # order like the integer keys except that -0 equals +0, which can only add a candidate.
    # ``fwork``: 3 x rows of the dtype, ``iwork``: 2 x rows of integers. Tile row c is center
    # cmap[c] (ascending); every center not in cmap is at least cap[r] from tile row r.
    k = dot.shape[0]
    m = dot.shape[1]
    mins = fwork[0]
    thrs = fwork[1]
    above = fwork[2]  # the smallest value above the window
    ncs = iwork[0]
    isum = iwork[1]
    for r in range(m):
        mins[r] = np.inf
    for c in range(k):
        v = cc[c]
        for r in range(m):
            e = v - (dot[c, r] + dot[c, r])
            dot[c, r] = e
            mins[r] = e if e < mins[r] else mins[r]
    xxs = np.empty(m, dtype=np.float64)
    errs = np.empty(m, dtype=np.float64)
    for r in range(m):
        xxs[r], errs[r] = _row_error(tile, r, cmax, eps, abs_err)
        err = errs[r]
        threshold = np.float64(mins[r]) + 2.0 * err
        fscratch[1] = threshold
        if np.float64(fscratch[1]) < threshold:  # the next float up
            scratch[1] = _key(_key(scratch[1], shift, mask) + 1, shift, mask)
        thrs[r] = fscratch[1]
        ncs[r] = 0
        isum[r] = 0
        above[r] = np.inf
    for c in range(k):
        for r in range(m):
            e = dot[c, r]
            inside = e <= thrs[r]
            ncs[r] += 1 if inside else 0
            isum[r] += c if inside else 0
            out = np.inf if inside else e
            above[r] = out if out < above[r] else above[r]
    rechecked = 0
    for r in range(m):
        i = rows[r]
        second = np.float64(above[r]) + xxs[r] - errs[r]  # inf when every center is inside
        if ncs[r] == 1:
            best = cmap[isum[r]]
            bd = _exact(x, i, C, best)
        else:
            rechecked += 1
            nc = 0
            thr = thrs[r]
            for c in range(k):
                if dot[c, r] <= thr:
                    cand[nc] = cmap[c]
                    nc += 1
            best, bd, second = _best_of(x, i, C, cand, nc, second)
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(min(np.sqrt(max(second, 0.0)), cap[r]) * (1.0 - _MARGIN))
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
    in the points' dtype as a ``(d, k)`` BLAS operand (``cs``: the same, ``(k, d)``), ``cc``
    their squared norms rounded to that dtype, ``cmax`` the largest norm, ``origin`` the shift in the points' dtype;
    ``key_shift`` / ``key_mask`` make the dtype's bits integer keys (:func:`_key`).
    """

    __slots__ = ("C", "abs_err", "cc", "cmax", "cs", "ct", "eps", "key_mask", "key_shift", "origin")

    def __init__(self, centers: Float64Array, dtype: np.dtype[Any]) -> None:
        self.C = np.ascontiguousarray(centers, dtype=np.float64)
        d = centers.shape[1]
        origin = self.C.mean(axis=0).astype(dtype)
        shifted = (self.C - origin).astype(dtype)
        self.origin = origin
        s64 = shifted.astype(np.float64)
        cc = np.einsum("ij,ij->i", s64, s64)
        self.ct = np.ascontiguousarray(shifted.T)
        self.cs = np.ascontiguousarray(shifted)
        with np.errstate(over="ignore"):  # inf when the block is unsafe anyway (safe_for)
            self.cc = cc.astype(dtype)
        self.cmax = float(np.sqrt(cc.max())) if cc.size else 0.0
        self.eps, self.abs_err = error_factor(d, np.dtype(dtype))
        ints = np.dtype(f"i{np.dtype(dtype).itemsize}").type
        self.key_shift = ints(8 * np.dtype(dtype).itemsize - 1)
        self.key_mask = ints(np.iinfo(ints).max)

    def scan_t(
        self,
        dot: NDArray[Any],
        cc: NDArray[Any],
        tile: NDArray[Any],
        idx: NDArray[np.int64],
        points: FloatArray,
        labels: NDArray[Any],
        lower: NDArray[np.float32],
        costs: Float64Array,
        cand: NDArray[np.int64],
        fwork: NDArray[Any],
        iwork: NDArray[Any],
        cmap: NDArray[np.int64],
        cap: Float64Array,
    ) -> int:
        """:func:`_scan_tile_t` of a centers-major tile ``dot`` (centers ``cmap``, norms ``cc``) with these centers."""
        scratch = np.empty(2, dtype=self.key_mask.dtype)
        return int(
            _scan_tile_t(
                dot,
                cc,
                tile,
                idx,
                points,
                self.C,
                self.key_shift,
                self.key_mask,
                scratch,
                scratch.view(points.dtype),
                self.cmax,
                self.eps,
                self.abs_err,
                labels,
                lower,
                costs,
                cand,
                fwork,
                iwork,
                cmap,
                cap,
            )
        )

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
    centers_major: bool | None = None,
) -> int:
    """Label ``rows`` of ``points`` (all rows when ``None``) through BLAS tiles.

    Writes ``labels``, exact ``costs`` and the lower bounds ``lower`` of those rows;
    returns how many rows needed an exact re-check of several candidates.
    ``centers_major``: the tile layout (``None``: from ``k >= CENTERS_MAJOR_MIN``); both
    layouts give the same labels and costs.
    """
    n_sel = points.shape[0] if rows is None else rows.shape[0]
    if n_sel == 0:
        return 0
    k, d = gc.C.shape
    if centers_major is None:
        centers_major = k >= CENTERS_MAJOR_MIN
    step = tile_rows(k, tile_elements)
    step = min(max(step, CENTERS_MAJOR_ROWS) if centers_major else step, n_sel)
    tile = np.empty((step, d), dtype=points.dtype)
    buf = np.empty(step * k, dtype=points.dtype)
    scratch = np.empty(2, dtype=gc.key_mask.dtype)
    fwork = np.empty((3, step), dtype=points.dtype)
    iwork = np.empty((2, step), dtype=gc.key_mask.dtype)
    cmap = np.arange(k, dtype=np.int64)
    cap = np.full(step, np.inf)
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
        if centers_major:
            dot = buf[: k * m].reshape(k, m)
            np.matmul(gc.cs, tile[:m].T, out=dot)
            rechecked += gc.scan_t(
                dot, gc.cc, tile[:m], idx, points, labels, lower, costs, cand, fwork, iwork, cmap, cap
            )
            continue
        dot = buf[: m * k].reshape(m, k)
        np.matmul(tile[:m], gc.ct, out=dot)
        _expand(dot, gc.cc)
        rechecked += _scan_tile(
            dot.view(gc.key_mask.dtype),
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


#: Rows of centers per BLAS product when :func:`center_gap_table` computes the gaps.
_GAP_ROWS = 256


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _lower_gaps(g: Any, a0: int, sq: Any, radius: Any, c_err: float, out: Any) -> None:  # pragma: no cover
    # out[r, b] <= ||c_{a0+r} - c_b||² as float32 from the products g = c[a0:] @ c.T: the
    # expansion less its rounding bound, then rounded down (2^-22 relative covers float32's
    # rounding in its normal range, 1e-44 its subnormals).
    for r in range(g.shape[0]):
        a = a0 + r
        for b in range(g.shape[1]):
            v = (sq[a] + sq[b]) - 2.0 * g[r, b]
            v -= c_err * (radius[a] + radius[b]) ** 2
            out[r, b] = np.float32(v - abs(v) * 2.0**-22 - 1e-44)
        out[r, a] = 0.0


class CentersCache:
    """One value per set of centers, made by the first caller and shared by the blocks of a pass.

    ``get(centers, make)`` returns the value for these exact centers, calling ``make(centers)``
    under the lock when the last one was for others (a pass's blocks wait for one build).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[Float64Array, Any]] = []

    def get(self, centers: Float64Array, make: Any) -> Any:
        with self._lock:
            for cached, value in self._held:
                if cached.shape == centers.shape and np.array_equal(cached, centers):
                    return value
            value = make(centers)
            self._held[:] = [(centers.copy(), value)]
            return value


_tables = CentersCache()


def _gap_table(centers: Float64Array) -> NDArray[np.float32]:
    k, d = centers.shape
    c = centers - centers.mean(axis=0)
    sq = np.einsum("ij,ij->i", c, c)
    radius = np.sqrt(sq)
    table = np.empty((k, k), dtype=np.float32)
    for s in range(0, k, _GAP_ROWS):
        e = min(s + _GAP_ROWS, k)
        _lower_gaps(c[s:e] @ c.T, s, sq, radius, (d + 8) * 2.0**-53 * 1.01, table[s:e])
    return table


def center_gap_table(centers: Float64Array) -> NDArray[np.float32]:
    """``(k, k)`` float32 lower bounds on ``||c_a - c_b||²``, made once per set of centers (blocks share it).

    From a float64 BLAS product about the centers' mean with its rounding bound,
    ``(d + 8) 2⁻⁵³ (|c_a| + |c_b|)²``, taken off, then rounded down to float32.
    """
    table: NDArray[np.float32] = _tables.get(centers, _gap_table)
    return table


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _nearest_other(table: Any, out: Any) -> None:  # pragma: no cover - compiled
    for a in range(table.shape[0]):
        low = np.inf
        for b in range(table.shape[1]):
            v = np.float64(table[a, b])
            low = v if b != a and v < low else low
        out[a] = low


def nearest_other(table: NDArray[np.float32]) -> Float64Array:
    """``min_{b != a} table[a, b]`` per row of a gap table (``inf`` for a single center)."""
    out = np.empty(table.shape[0], dtype=np.float64)
    _nearest_other(table, out)
    return out


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _ball_lists(table: Any, r2: Any, indptr: Any, indices: Any, reach: Any, fill: bool) -> None:  # pragma: no cover
    # Pass 1 (fill False): indptr[a + 1] = how many b have table[a, b] <= r2[a] (a itself always).
    # Pass 2: those b in ascending order, and reach[a] from the smallest bound past them.
    k = table.shape[0]
    for a in range(k):
        t = indptr[a] if fill else 0
        low = np.inf
        for b in range(k):
            v = np.float64(table[a, b])
            if v <= r2[a] or b == a:
                if fill:
                    indices[t] = b
                t += 1
            else:
                low = min(low, v)
        if fill:
            reach[a] = np.sqrt(max(low, 0.0)) * (1.0 - _MARGIN)
        else:
            indptr[a + 1] = t


def ball_candidates(
    centers: Float64Array, rho: Float64Array
) -> tuple[NDArray[np.int64], NDArray[np.int64], Float64Array]:
    """``(indptr, indices, reach)``: for each center ``a``, every center within ``rho[a]`` of it.

    ``indices[indptr[a]:indptr[a + 1]]`` ascending, ``a`` included; every other center is
    more than ``rho[a]`` and at least ``reach[a]`` from ``c_a`` (``inf`` when there is
    none). The gaps are :func:`center_gap_table`'s lower bounds, so no center within
    ``rho[a]`` is missed.
    """
    k = centers.shape[0]
    table = center_gap_table(centers)
    r2 = rho * rho * (1.0 + _MARGIN)
    indptr = np.zeros(k + 1, dtype=np.int64)
    reach = np.empty(k, dtype=np.float64)
    _ball_lists(table, r2, indptr, np.empty(0, dtype=np.int64), reach, False)
    np.cumsum(indptr, out=indptr)
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    _ball_lists(table, r2, indptr, indices, reach, True)
    return indptr, indices, reach


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _listed_rows(
    x: Any,
    C: Any,
    rows: Any,
    labels: Any,
    costs: Any,
    lower: Any,
    indptr: Any,
    indices: Any,
    reach: Any,
    fast: bool,
    rel: float,
) -> None:  # pragma: no cover - compiled
    # Row i (label a, exact cost u²) against the centers listed for a, which hold every center
    # within 2u of c_a; the ball search's comparisons (the vectorized distance decides only
    # when it is clear by 4 rel, the rest exactly, lower index on ties). Every center not
    # listed is at least reach[a] - u away. (The comparisons are written out here and in
    # neighbors._ball_phase: sharing them through an inlined helper made the ball search 1.6x
    # slower, measured at d=64.)
    for r in range(rows.shape[0]):
        i = rows[r]
        a = labels[i]
        bd = costs[i]
        ua = np.sqrt(bd) * (1.0 + _MARGIN)
        best = a
        exact = True  # bd is the exact distance of best (else within rel of it)
        second = np.inf
        for t in range(indptr[a], indptr[a + 1]):
            c = indices[t]
            if c == a:
                continue
            if fast:
                s = _fast_sq(x, i, C, c)
                if s < bd * (1.0 - 4.0 * rel):  # certainly closer than best
                    second = min(second, bd)
                    bd = s
                    best = c
                    exact = False
                    continue
                if s > bd * (1.0 + 4.0 * rel):  # certainly farther
                    second = min(second, s)
                    continue
                if not exact:
                    bd = _exact(x, i, C, best)
                    exact = True
            s = _exact(x, i, C, c)
            if s < bd or (s == bd and c < best):
                second = min(second, bd)
                bd = s
                best = c
            else:
                second = min(second, s)
        if not exact:
            bd = _exact(x, i, C, best)
        second *= 1.0 - 2.0 * rel
        labels[i] = best
        costs[i] = bd
        lower[i] = _lower32(min(np.sqrt(second), reach[a] - ua) * (1.0 - _MARGIN))


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _ball_radii(labels: Any, costs: Any, rows: Any, rho: Any) -> None:  # pragma: no cover - compiled
    # rho[a] = 2 max ||x_i - c_a|| over the listed rows of a, rounded up.
    for r in range(rows.shape[0]):
        i = rows[r]
        a = labels[i]
        rho[a] = max(rho[a], 2.0 * np.sqrt(costs[i]) * (1.0 + _MARGIN))


def grouped_labels(
    points: FloatArray,
    gc: GemmCenters,
    labels: NDArray[Any],
    lower: NDArray[np.float32],
    costs: Float64Array,
    rows: NDArray[np.int64],
    tile_elements: int = TILE_ELEMENTS,
    tiles: bool | None = None,
) -> None:
    """Label ``rows`` cluster by cluster, each against the centers near its own.

    Each listed row ``i`` holds its current label ``a`` and, in ``costs[i]``, its exact
    distance ``u_i²`` to ``c_a``. A center closer to ``x_i`` than ``c_a`` is within
    ``2 u_i`` of ``c_a`` (triangle inequality), so the rows of ``a`` only need the
    centers within ``rho_a = 2 max_i u_i`` of ``c_a`` (:func:`ball_candidates`). With
    ``tiles`` (``None``: from :data:`TILE_ROWS_PER_CLUSTER` rows per cluster), one
    centers-major BLAS tile per cluster (its rows x its candidates) labels them exactly like
    :func:`gemm_labels`; else a compiled loop compares each row with its cluster's candidates
    as the ball search does. Both give the same labels and costs; their lower bounds also
    cover the centers past the ball (``reach_a - u_i``).
    """
    if rows.shape[0] == 0:
        return
    k = gc.C.shape[0]
    rho = np.zeros(k)
    _ball_radii(labels, costs, rows, rho)
    indptr, indices, reach = ball_candidates(gc.C, rho)
    lab = labels[rows]
    order = np.argsort(lab, kind="stable")  # a cluster's rows together: its listed centers stay in cache
    if tiles is None:
        tiles = rows.shape[0] >= TILE_ROWS_PER_CLUSTER * np.count_nonzero(rho)
    if not tiles:
        d = gc.C.shape[1]
        _listed_rows(
            points, gc.C, rows[order], labels, costs, lower, indptr, indices, reach, d >= FAST_MIN_FEATURES, fast_rel(d)
        )
        return
    sorted_rows = rows[order]
    starts = np.searchsorted(lab[order], np.arange(k + 1))
    cap = reach[lab[order]] - np.sqrt(costs[sorted_rows]) * (1.0 + _MARGIN)
    cand = np.empty(k, dtype=np.int64)
    for a in np.flatnonzero(starts[1:] > starts[:-1]):
        members = indices[indptr[a] : indptr[a + 1]]
        cs = gc.cs[members]
        cc = gc.cc[members]
        step = max(64, tile_elements // members.shape[0])
        for s in range(starts[a], starts[a + 1], step):
            e = min(s + step, starts[a + 1])
            idx = sorted_rows[s:e]
            tile = points[idx] - gc.origin
            fwork = np.empty((3, e - s), dtype=points.dtype)
            iwork = np.empty((2, e - s), dtype=gc.key_mask.dtype)
            gc.scan_t(cs @ tile.T, cc, tile, idx, points, labels, lower, costs, cand, fwork, iwork, members, cap[s:e])


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
    grouped: bool | None = None,
) -> tuple[float, int] | None:
    """One bounded Lloyd pass through BLAS tiles, adding into ``sums`` / ``wsum``: ``(inertia, kept)``.

    The contract of the rows kernels in :mod:`kmeans._kernels.bounds` (``labels`` and
    ``lower`` are the block's bounds, updated in place; ``drop`` / ``half_gap`` the bound
    updates; ``fresh`` when there are none yet). ``None`` (nothing written) when the
    block could overflow the products. ``grouped``: rows that fail their bounds go
    cluster by cluster against the centers near their own (:func:`grouped_labels`);
    the same results (``None``: from :data:`GROUPED_MIN_CENTERS` centers and
    :data:`GROUPED_ROWS_PER_CENTER` rows per center).
    """
    gc = GemmCenters(centers, points.dtype)
    if not gc.safe_for(points):
        return None
    n, d = points.shape
    costs = np.empty(n, dtype=np.float64)
    k = centers.shape[0]
    if grouped is None:
        grouped = GROUPED_MIN_CENTERS <= k <= GROUPED_MAX_CENTERS and n >= GROUPED_ROWS_PER_CENTER * k
    if grouped and not fresh and n:
        failed = np.empty(n, dtype=np.int64)
        nf = _kept_phase(points, gc.C, labels, lower, drop, half_gap, costs, failed)
        grouped_labels(points, gc, labels, lower, costs, failed[:nf], tile_elements)
        return float(_accumulate(points, w, unit, labels, costs, sums, wsum, 0.0)), n - nf
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
