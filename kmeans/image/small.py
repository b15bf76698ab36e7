"""Small images without Numba: the palette fit in vectorized NumPy, bit for bit the compiled fit's.

Importing Numba and loading the first compiled kernel costs about 0.8 s, far longer than
a small image takes to quantize. For at most :data:`SMALL_COLORS` distinct colors (one
block of the numpy backend) and ``colors x k`` at most :data:`SMALL_WORK`,
:func:`fit_small` computes what ``KMeans(k, init="k-means++", seed=s, tol=t,
max_iter=n).fit(x, sample_weight=w)`` computes on the numpy backend, with the same
float64 operations in the same order, so the centers, labels and iteration records are
identical:

- seeds: SplitMix64 of :mod:`kmeans._random` (``derive_seed``, one uniform per row);
- greedy k-means++: draw keys ``-log(u) / (w D)`` (the C library's ``log``, as the
  kernels call it), the ``2 + floor(ln k)`` smallest by ``(key, row)``, the candidate of
  largest exact gain (:mod:`kmeans.init._choice`, NumPy only);
- Lloyd: ``||x - c||² = ((x_0 - c_0)² + (x_1 - c_1)²) + ...``, the lowest index on ties,
  sums, weights and inertia accumulated in row order (``bincount`` and ``cumsum`` are
  sequential), stop when no center moved more than ``tol`` or none moved at all.

It declines (``None``) where the compiled fit would take another road: an empty cluster
(relocated by the driver's farthest-point rule), fewer distinct rows than ``k``.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Any, Final

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._types import IterationRecord
from kmeans.init._choice import best_gain, exact_total

Float64Array = NDArray[np.float64]

#: At most this many rows: the numpy backend's fit then runs on one block (``default_block_rows``).
SMALL_COLORS: Final = 4096
#: At most this many ``rows x k`` distances per Lloyd pass (a few ms in NumPy).
SMALL_WORK: Final = 1 << 18

_MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)


def _mix_int(z: int) -> int:
    # SplitMix64's finalizer on a Python int (kmeans._random._mix).
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def derive_seed(seed: int, *path: int) -> int:
    """:func:`kmeans._random.derive_seed` without the compiled mixer."""
    state = _mix_int(seed & _MASK64)
    for part in path:
        state = _mix_int(state ^ _mix_int((part + 0x632BE59BD9B4E019) & _MASK64))
    return state


def uniform(seed: int, rows: NDArray[np.int64]) -> Float64Array:
    """:func:`kmeans._random.uniform`: one draw in (0, 1) per global row index."""
    z = np.uint64(seed & _MASK64) + rows.astype(np.uint64) * _GOLDEN  # wraps modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    out: Float64Array = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return out


def smallest_keys(seed: int, weights: Float64Array, m: int) -> NDArray[np.intp]:
    """The rows of the ``m`` smallest keys ``-log(u_i) / w_i`` (``u`` = :func:`uniform`), by ``(key, row)``.

    Rows of weight 0 are never drawn. NumPy's vectorized ``log`` may differ from the C
    library's in the last bit, so it only shortlists: every row within a relative 1e-12 of
    the ``m``-th smallest gets its key from ``math.log``, as the compiled kernels compute it.
    """
    rows = np.flatnonzero(weights > 0)
    if rows.size == 0:
        return rows
    u = uniform(seed, rows.astype(np.int64))
    approx = -np.log(u) / weights[rows]
    if rows.size > m:
        bound = np.partition(approx, m - 1)[m - 1] * (1.0 + 1e-12)
        near = approx <= bound
        rows, u = rows[near], u[near]
    keys = np.array([-math.log(v) for v in u.tolist()]) / weights[rows]
    return rows[np.lexsort((rows, keys))[:m]]


def sq_distances(x: Float64Array, c: Float64Array) -> Float64Array:
    """``(n, k)`` squared distances summed in feature order, as every L2 kernel computes them."""
    t = x[:, None, 0] - c[None, :, 0]
    s = t * t
    for j in range(1, x.shape[1]):
        t = x[:, None, j] - c[None, :, j]
        s += t * t
    return s


def row_order_sum(values: Float64Array) -> float:
    """``((v_0 + v_1) + v_2) + ...``: the compiled loops' running sum (NumPy's ``sum`` is pairwise)."""
    return float(np.cumsum(values)[-1]) if values.size else 0.0


def kmeans_plus_plus(x: Float64Array, w: Float64Array, k: int, seed: int) -> Float64Array | None:
    """The centers of :class:`kmeans.init.kmeans_plus_plus.KMeansPlusPlus` (greedy, weighted) for ``seed``."""
    trials = 2 + int(math.log(k))
    first = smallest_keys(derive_seed(seed, 0), w, 1)
    if first.size == 0:
        return None
    chosen = [x[first[0]]]
    D = np.full(x.shape[0], np.inf)
    for step in range(1, k):
        np.minimum(D, sq_distances(x, chosen[-1][None, :])[:, 0], out=D)
        rows = smallest_keys(derive_seed(seed, step), w * D, trials)
        if rows.size == 0:
            return None
        cands = x[rows]
        terms = w[:, None] * (D[:, None] - np.minimum(D[:, None], sq_distances(x, cands)))
        sums = np.sum(terms, axis=0)

        def exact(which: list[int], terms: Float64Array = terms) -> list[Fraction]:
            return [exact_total(terms[:, q].tolist()) for q in which]

        chosen.append(cands[best_gain(sums, x.shape[0], cands, exact)])
    return np.array(chosen, dtype=np.float64)


@attrs.frozen(eq=False)
class SmallFit:
    """What :func:`fit_small` found: ``centers``, ``n_iter``, and the ``history`` the callbacks saw."""

    centers: Float64Array
    n_iter: int
    history: tuple[IterationRecord, ...]


def fits_small(n_rows: int, k: int) -> bool:
    """Whether :func:`fit_small` takes ``n_rows`` colors and ``k`` clusters (see :data:`SMALL_WORK`)."""
    return n_rows <= SMALL_COLORS and n_rows * k <= SMALL_WORK


def fit_small(
    x: Float64Array,
    w: Float64Array,
    k: int,
    *,
    seed: int,
    tol: float,
    max_iter: int,
) -> SmallFit | None:
    """The compiled fit's centers for ``(x, w)`` (distinct rows, weights > 0), or ``None`` where it differs in kind."""
    t0 = time.perf_counter()
    if k < 1 or k > x.shape[0] or (k > 1 and np.unique(x, axis=0).shape[0] < k):
        return None
    centers = kmeans_plus_plus(x, w, k, derive_seed(seed, 0))  # restart 0 of n_init=1
    if centers is None:
        return None
    history: list[IterationRecord] = []
    for it in range(max_iter):
        d = sq_distances(x, centers)
        labels = np.argmin(d, axis=1)
        weights = np.bincount(labels, weights=w, minlength=k)
        if not np.all(weights > 0):
            return None  # the driver relocates empty clusters: the compiled path does that
        inertia = row_order_sum(w * d[np.arange(x.shape[0]), labels])
        sums = np.stack([np.bincount(labels, weights=w * x[:, j], minlength=k) for j in range(x.shape[1])], axis=1)
        new = sums / weights[:, None]
        diff = new - centers
        shift = float(np.max(np.sqrt(np.einsum("ij,ij->i", diff, diff))))  # SquaredEuclidean.shift
        fixed = np.array_equal(new, centers)
        centers = new
        record = IterationRecord(
            iteration=it + 1, inertia=inertia, center_shift=shift, elapsed=time.perf_counter() - t0, n_empty=0
        )
        history.append(record)
        if fixed or (tol > 0 and shift <= tol):
            break
    return SmallFit(centers, len(history), tuple(history))


def nearest(x: Float64Array, centers: Float64Array) -> NDArray[np.intp]:
    """The closest center of every row (the lowest index on ties), as ``KMeans.predict`` finds it."""
    found: NDArray[np.intp] = np.argmin(sq_distances(x, centers), axis=1).astype(np.intp)
    return found


def check_numbers(seed: Any, tol: Any, max_iter: Any) -> bool:
    """Whether these are values :class:`~kmeans.KMeans` accepts as they are (else it raises: let it)."""
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (seed, max_iter))
    real = isinstance(tol, (int, float, np.integer, np.floating)) and not isinstance(tol, bool)
    return ints and real and max_iter >= 0 and math.isfinite(float(tol)) and tol >= 0
