"""Mini-batch k-means (Sculley 2010) as a fit algorithm: ``KMeans(algorithm="minibatch")``.

One **step** takes a batch of rows ``B`` with weights ``w``, assigns each row to its closest
center (the metric's own kernel: BLAS tiles for many features, exact as every assignment)
and moves every center that received rows to the running weighted mean of all rows it
ever received::

    v_j' = v_j + sum_{i in B_j} w_i
    c_j' = (v_j c_j + sum_{i in B_j} w_i x_i) / v_j'

``v_j`` is the center's count (the weight it has seen), so ``1 / v_j`` is Sculley's per-center
learning rate; a center that got no row keeps its place. This is scikit-learn's
``MiniBatchKMeans`` step, with its other rules:

- **reassignment**: before a step, when some count is 0 or ``10 k`` rows went by since the
  last reassignment, every center whose count is below ``reassignment_ratio * max(v)``
  (at most half the batch) moves onto a row of the batch (drawn without replacement, in
  proportion to the rows' weights) and its count becomes the smallest of the others;
- **early stopping**: the batch cost per unit of weight is smoothed,
  ``ewa = (1 - a) ewa + a cost`` with ``a = min(1, 2 b / (n + 1))``, from the second step on;
  the fit stops after ``max_no_improvement`` steps without a new minimum, or (``tol > 0``)
  when no center moved more than ``tol`` in a step (the driver's rule, in data units);
- ``max_iter`` counts **epochs**: ``max_iter * n // batch_size`` steps at most (at least 1);
  ``n_iter_`` is the epochs begun, ``ceil(steps * b / n)``, and ``n_steps_`` the steps.

**Batches.** Step ``t`` of a run draws slots ``t b .. t b + b - 1`` of that run's stream;
slot ``s`` is the global row ``floor(u(seed, s) * n)`` (:func:`kmeans._random.uniform`), with
replacement, rows in proportion to their weight (scikit-learn draws weighted rows so too);
the rows then count with unit weight. With unequal weights the draw inverts the integer
prefix sums of weights quantized to multiples of ``2**-s`` (``s`` chosen from the largest
weight and the row count, so every sum is below ``2**62``): integer sums are exact in any
order, so every engine and every partitioning draws the same rows. Rows of weight
``< 2**-s`` (below ``2**-60`` of the total) are never drawn. So weighted rows and
``compress()`` are honest: a row of weight 3 is drawn as often as three copies of it.

**Initialization.** Restart ``r`` (seed ``s_r = derive_seed(seed, r)``) runs the
initializer on the first ``init_size`` slots of its stream (default ``3 b``, at least
``3 k``; the whole data when that is not smaller, or when the sample has fewer than ``k``
distinct rows), as unit-weight rows; with several restarts, the one whose centers cost
least on a validation sample of ``init_size`` rows wins, and only it runs the steps.

**Engines.** The steps run in this process on the rows of the batches, so the centers are
the same bits on every engine. Rows are gathered ``gather_rows`` at a time (several
batches, since the draws do not depend on the centers): blocks in this process are read
directly, any other dataset through one ``map_reduce`` (one Spark job) per gather. One
last full pass computes ``inertia_`` and cluster sizes exactly for the final centers (and
the labels in the same pass when the blocks are in this process).

:class:`MiniBatchState` is what :meth:`KMeans.partial_fit` keeps between chunks: each
chunk is one step with its own weights, so ``partial_fit`` over the batches of a fit
gives the fit's centers.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._blas import single_threaded_blas
from kmeans._kernels import weighted_sums
from kmeans._ops import weighted_bincount, weighted_sum
from kmeans._random import derive_seed, exponential_keys, uniform
from kmeans._types import Block, FitResult, FitSpec, Float64Array, FloatArray, IterationRecord
from kmeans._validation import check_initial_centers
from kmeans.dataset import BlockDataset, unit_weights
from kmeans.errors import ValidationError
from kmeans.protocols import AssignStep, Dataset, optional

#: Sub-stream tags under a run's seed.
_STREAM, _REASSIGN, _VALIDATION = 1, 2, 3

#: Quantized weights (see the module docstring) sum below ``2**_Q_BITS``.
_Q_BITS = 61


@attrs.define(eq=False)
class MiniBatchState:
    """What a mini-batch run carries from one step to the next (and ``partial_fit`` between calls).

    ``counts`` ``(k,)`` float64: the weight each center has absorbed (its inverse is the
    learning rate); ``n_steps``: steps done; ``since_reassign``: rows seen since the last
    reassignment check fired; ``seed``: the run's seed (reassignment draws use
    ``derive_seed(seed, 2, step)``).
    """

    counts: Float64Array
    n_steps: int = 0
    since_reassign: int = 0
    seed: int = 0


@attrs.frozen
class StepResult:
    """One step: the batch cost before the update, the largest center move, how many centers moved to rows."""

    inertia: float
    weight: float
    shift: float
    n_reassigned: int


#: Rows of one piece of a step's batch. Pieces run on threads and are merged in order; the
#: cut depends on the batch alone, so the sums have the same bits on every machine.
PIECE_ROWS = 2048


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return ThreadPoolExecutor(max_workers=max(1, min(4, cores)), thread_name_prefix="kmeans-minibatch")


def _piece_summary(
    distance: Any, points: FloatArray, weights: Float64Array, centers: Float64Array
) -> tuple[Float64Array, Float64Array, float]:
    """``(sums, weights, cost)`` per center of one piece: the update's fused pass when it has one."""
    fused = optional(distance.update, "fused_partial")
    out = None if fused is None else fused(distance.assign, Block(points, weights), centers, None, memory=None)
    if out is not None:
        (sums, got), cost, _ = out
        return sums, got, float(cost)
    labels, costs = distance.assign.assign(points, centers)
    sums, got = weighted_sums(points, weights, labels, centers.shape[0])
    return sums, got, weighted_sum(weights, costs)


def _batch_summary(
    distance: Any, points: FloatArray, weights: Float64Array, centers: Float64Array
) -> tuple[Float64Array, Float64Array, float]:
    """:func:`_piece_summary` of the whole batch, its :data:`PIECE_ROWS` pieces on threads, merged in order."""
    starts = range(0, points.shape[0], PIECE_ROWS)
    if len(starts) <= 1:
        return _piece_summary(distance, points, weights, centers)

    def piece(s: int) -> tuple[Float64Array, Float64Array, float]:
        return _piece_summary(distance, points[s : s + PIECE_ROWS], weights[s : s + PIECE_ROWS], centers)

    with single_threaded_blas():
        futures = [_pool().submit(piece, s) for s in starts[1:]]
        try:
            parts = [piece(starts[0])]
        finally:  # never leave while other pieces still run
            wait(futures)
    parts += [f.result() for f in futures]
    sums, got, cost = parts[0]
    for more in parts[1:]:
        sums, got, cost = sums + more[0], got + more[1], cost + more[2]
    return sums, got, cost


def minibatch_step(
    state: MiniBatchState,
    centers: Float64Array,
    points: FloatArray,
    weights: Float64Array,
    distance: Any,
    reassignment_ratio: float,
) -> tuple[Float64Array, StepResult]:
    """One Sculley step on ``points`` (module docstring): the new centers; ``state`` is updated in place.

    ``distance`` pairs the assign step with the weighted-mean update; the update's
    ``fused_partial`` (one compiled pass: closest centers, sums, cost) runs when it has one.
    """
    k = centers.shape[0]
    b = int(points.shape[0])
    state.since_reassign += b
    reassign = bool((state.counts == 0).any()) or state.since_reassign >= 10 * k
    if reassign:
        state.since_reassign = 0
    sums, got, batch_cost = _batch_summary(distance, points, weights, centers)
    hit = got > 0
    new = centers.copy()
    counts = state.counts.copy()
    total = counts[hit] + got[hit]
    new[hit] = (centers[hit] * counts[hit, None] + sums[hit]) / total[:, None]
    counts[hit] = total
    n_reassigned = 0
    if reassign and reassignment_ratio > 0:
        low = counts < reassignment_ratio * counts.max()
        if low.sum() > 0.5 * b:  # at most half a batch of new centers, the lowest counts first
            low[np.argsort(counts, kind="stable")[int(0.5 * b) :]] = False
        if low.any():
            keys = exponential_keys(derive_seed(state.seed, _REASSIGN, state.n_steps), np.arange(b), weights)
            order = np.argsort(keys, kind="stable")[: int(low.sum())]
            order = order[np.isfinite(keys[order])]
            targets = np.flatnonzero(low)[: order.shape[0]]
            if targets.size and targets.size < k:
                new[targets] = points[order]
                rest = np.ones(k, dtype=bool)
                rest[targets] = False
                counts[targets] = counts[rest].min()
                n_reassigned = int(targets.size)
    state.counts = counts
    state.n_steps += 1
    shift = float(np.max(distance.assign.shift(centers, new))) if k else 0.0
    return new, StepResult(batch_cost, float(np.sum(weights)), shift, n_reassigned)


# -- drawing rows by global index ---------------------------------------------------------


@attrs.frozen(eq=False)
class _Extent:
    start: int
    n_rows: int
    wmax: float
    wmin: float


def _extents(block: Block) -> list[_Extent]:
    if block.n_rows == 0:
        return []
    w = block.weights
    return [_Extent(block.start, block.n_rows, float(np.max(w)), float(np.min(w)))]


def _concat(a: list[Any], b: list[Any]) -> list[Any]:
    return a + b


def quantized(weights: Float64Array, shift: int) -> NDArray[np.int64]:
    """Weights as integer multiples of ``2**-shift``, rounded down (exact: a power-of-two scale, then floor)."""
    out: NDArray[np.int64] = np.floor(np.ldexp(np.asarray(weights, dtype=np.float64), shift)).astype(np.int64)
    return out


def _qsum(shift: int) -> Callable[[Block], list[tuple[int, int]]]:
    def fn(block: Block) -> list[tuple[int, int]]:
        if block.n_rows == 0:
            return []
        return [(block.start, int(quantized(block.weights, shift).sum()))]

    return fn


#: Rows of one gather per block start: (positions in the gather, local row or local weight target).
_Wanted = dict[int, tuple[NDArray[np.int64], NDArray[np.int64]]]


def _pick(wanted: _Wanted, shift: int | None) -> Callable[[Block], list[tuple[NDArray[np.int64], FloatArray]]]:
    """``fn(block)``: the block's wanted rows; ``shift``: the targets are quantized weights to invert."""

    def fn(block: Block) -> list[tuple[NDArray[np.int64], FloatArray]]:
        got = wanted.get(block.start)
        if got is None or block.n_rows == 0:
            return []
        positions, local = got
        if shift is not None:
            local = np.searchsorted(np.cumsum(quantized(block.weights, shift)), local, side="right")
        return [(positions, np.asarray(block.points[local]))]

    return fn


class RowSampler:
    """Draws rows of ``dataset`` by slot, from ``(seed, slot)`` alone (see the module docstring).

    Reads the blocks' extents (and, for unequal weights, their quantized weight totals)
    once; :meth:`rows` gathers the rows of a range of slots.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        local = optional(dataset, "local_blocks")
        self._blocks: dict[int, Block] | None = None
        if local is not None:
            self._blocks = {b.start: b for b in local() if b.n_rows}
            extents = [e for b in self._blocks.values() for e in _extents(b)]
        else:
            extents = dataset.map_reduce(_extents, _concat)
        extents.sort(key=lambda e: e.start)
        self.n_rows = sum(e.n_rows for e in extents)
        self.starts = np.array([e.start for e in extents], dtype=np.int64)
        wmax = max(e.wmax for e in extents)
        wmin = min(e.wmin for e in extents)
        self.shift: int | None = None
        if wmax != wmin:
            self.shift = _Q_BITS - math.frexp(float(self.n_rows) * wmax)[1]
            totals = dict(self._map(_qsum(self.shift), _concat))
            self.qsums = np.array([totals[e.start] for e in extents], dtype=np.int64)
            self.qends = np.cumsum(self.qsums)

    def _map(self, fn: Callable[[Block], list[Any]], merge: Callable[[list[Any], list[Any]], list[Any]]) -> list[Any]:
        if self._blocks is not None:
            out: list[Any] = []
            for block in self._blocks.values():
                out += fn(block)
            return out
        found: list[Any] = self.dataset.map_reduce(fn, merge)
        return found

    def targets(self, seed: int, first: int, count: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(block index, local target)`` of slots ``first .. first + count - 1``: a row, or a weight offset."""
        u = uniform(seed, np.arange(first, first + count, dtype=np.int64))
        if self.shift is None:
            rows = np.minimum((u * self.n_rows).astype(np.int64), self.n_rows - 1)
            block = np.searchsorted(self.starts, rows, side="right") - 1
            return block, rows - self.starts[block]
        total = int(self.qends[-1])
        t = np.minimum((u * float(total)).astype(np.int64), total - 1)
        block = np.searchsorted(self.qends, t, side="right")
        return block, t - (self.qends[block] - self.qsums[block])

    def rows(self, seed: int, first: int, count: int, dtype: np.dtype[Any]) -> FloatArray:
        """The points drawn by slots ``first .. first + count - 1`` of stream ``seed``, in slot order."""
        block, local = self.targets(seed, first, count)
        order = np.argsort(block, kind="stable")
        bounds = np.searchsorted(block[order], np.arange(self.starts.shape[0] + 1))
        wanted: _Wanted = {}
        for b in range(self.starts.shape[0]):
            sel = order[bounds[b] : bounds[b + 1]]
            if sel.size:
                wanted[int(self.starts[b])] = (sel.astype(np.int64), local[sel])
        out = np.empty((count, self.dataset.n_features), dtype=dtype)
        for positions, points in self._map(_pick(wanted, self.shift), _concat):
            out[positions] = points
        return out


# -- the fit -----------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Stopper:
    """scikit-learn's early stopping: smoothed batch cost, ``max_no_improvement``, ``tol``."""

    alpha: float
    max_no_improvement: int | None
    tol: float
    ewa: float | None = None
    best: float | None = None
    stale: int = 0

    def done(self, step: int, result: StepResult) -> tuple[bool, bool]:
        """``(stop, converged)`` after 0-based step ``step``; the first step's cost is the initial centers'."""
        if step == 0:
            return False, False
        cost = result.inertia / result.weight if result.weight > 0 else 0.0
        self.ewa = cost if self.ewa is None else self.ewa * (1 - self.alpha) + cost * self.alpha
        if self.tol > 0 and result.shift <= self.tol:
            return True, True
        if self.best is None or self.ewa < self.best:
            self.best, self.stale = self.ewa, 0
        else:
            self.stale += 1
        return self.max_no_improvement is not None and self.stale >= self.max_no_improvement, False


def _distinct_count(points: FloatArray, k: int) -> int:
    return int(np.unique(points, axis=0).shape[0]) if points.shape[0] >= k else int(points.shape[0])


def final_pass(dataset: Dataset, centers: Float64Array, assign: AssignStep) -> tuple[float, Float64Array, Any]:
    """``(inertia, cluster_weights, labels)`` of ``centers`` in one pass (``labels`` may be ``None``).

    With the blocks in this process (``local_blocks``, no engine-native ``labels``) the same
    pass writes every row's label (int32), as scikit-learn's ``compute_labels``.
    """
    k = centers.shape[0]
    here = optional(dataset, "local_blocks") is not None and optional(dataset, "labels") is None
    out = np.empty(dataset.n_rows, dtype=np.int32) if here else None

    def fn(block: Block) -> tuple[float, Float64Array]:
        labels, costs = assign.assign(block.points, centers)
        if out is not None:
            out[block.start : block.start + block.n_rows] = labels
        return weighted_sum(block.weights, costs), weighted_bincount(labels, block.weights, k)

    inertia, weights = dataset.map_reduce(fn, lambda a, b: (a[0] + b[0], a[1] + b[1]))
    return inertia, weights, out


@attrs.frozen
class MiniBatch:
    """Mini-batch k-means (module docstring); ``KMeans(algorithm="minibatch")`` or ``algorithm=MiniBatch(...)``.

    ``batch_size`` rows per step (at most the row count); ``max_no_improvement`` (``None``:
    never) steps without a new minimum of the smoothed batch cost end the fit;
    ``reassignment_ratio`` in ``[0, 1)`` (0: never) moves centers of low count onto batch rows;
    ``init_size`` rows seed the initializer (``None``: ``3 * batch_size``, at least
    ``3 * n_clusters``); ``gather_rows`` rows are drawn per read of the data (memory
    ``gather_rows * d`` values).
    """

    name: str = "minibatch"
    batch_size: int = 1024
    max_no_improvement: int | None = 10
    reassignment_ratio: float = 0.01
    init_size: int | None = None
    gather_rows: int = 1 << 18

    def check(self) -> None:
        """Refuse bad parameters before any data is read."""
        for field in ("batch_size", "gather_rows"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValidationError(f"{field} must be an integer >= 1, got {value!r}")
        for field in ("max_no_improvement", "init_size"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValidationError(f"{field} must be None or an integer >= 1, got {value!r}")
        r = self.reassignment_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float, np.floating)) or not 0 <= float(r) < 1:
            raise ValidationError(f"reassignment_ratio must be a number in [0, 1), got {r!r}")

    def check_distance(self, distance: Any) -> None:
        """Mini-batch moves centers to running means: the update step must be the weighted mean."""
        from kmeans.distance.l2 import WeightedMean

        if not isinstance(getattr(distance, "update", None), WeightedMean):
            name = getattr(distance, "name", repr(distance))
            raise ValidationError(
                f"algorithm='minibatch' needs a distance whose centers are weighted means (distance='l2'); "
                f"got distance={name!r}: use algorithm='lloyd' for it"
            )

    def sizes(self, n_rows: int, k: int) -> tuple[int, int]:
        """``(batch rows, init rows)`` for ``n_rows`` rows and ``k`` clusters (scikit-learn's rule)."""
        b = min(int(self.batch_size), n_rows)
        init = self.init_size if self.init_size is not None else max(3 * b, 3 * k)
        return b, min(max(int(init), k), n_rows)

    def initial_centers(self, dataset: Dataset, points: FloatArray | None, spec: FitSpec, seed: int) -> Float64Array:
        """The initializer on ``points`` (unit weights) when it has ``k`` distinct rows, else on ``dataset``."""
        k = spec.n_clusters
        source: Dataset = dataset
        if points is not None and _distinct_count(points, k) >= k:
            source = BlockDataset.from_arrays(points)
        return check_initial_centers(
            spec.initializer.init(source, k, spec.distance.assign, seed),
            k,
            dataset.n_features,
            strategy=spec.initializer,
        )

    def fit(self, dataset: Dataset, spec: FitSpec) -> FitResult:
        """The whole mini-batch fit on ``dataset`` (module docstring); labels when the blocks are here."""
        t0 = time.perf_counter()
        assign = spec.distance.assign
        k, n = spec.n_clusters, dataset.n_rows
        b, init_rows = self.sizes(n, k)
        sampler = RowSampler(dataset)
        dtype = dataset.dtype
        sample_init = init_rows < n
        best: tuple[float, int, Float64Array] | None = None
        restarts: list[float] = []
        valid = sampler.rows(derive_seed(spec.seed, _VALIDATION), 0, init_rows, dtype) if spec.n_init > 1 else None
        for r in range(spec.n_init):
            run_seed = derive_seed(spec.seed, r)
            points = sampler.rows(derive_seed(run_seed, _STREAM), 0, init_rows, dtype) if sample_init else None
            centers = self.initial_centers(dataset, points, spec, run_seed)
            if valid is None:
                best = (0.0, run_seed, centers)
                break
            cost = float(np.sum(assign.assign(valid, centers)[1]))
            restarts.append(cost)
            if best is None or cost < best[0]:
                best = (cost, run_seed, centers)
        assert best is not None
        _, run_seed, centers = best
        state = MiniBatchState(np.zeros(k), seed=run_seed)
        n_steps = max(1, spec.max_iter * n // b) if spec.max_iter > 0 else 0
        stopper = _Stopper(min(1.0, 2.0 * b / (n + 1)), self.max_no_improvement, spec.tol)
        with single_threaded_blas():  # a batch's products are small: BLAS threads would only wait (sklearn: the same)
            centers, history, converged = self._steps(sampler, centers, state, spec, b, n_steps, stopper, t0)
        inertia, weights, labels = final_pass(dataset, centers, assign)
        return FitResult(
            centers=centers,
            inertia=inertia,
            n_iter=math.ceil(state.n_steps * b / n),
            cluster_weights=weights,
            history=tuple(history),
            converged=converged,
            seed=run_seed,
            labels=labels,
            restarts=tuple(restarts),
            state=state,
        )

    def _steps(
        self,
        sampler: RowSampler,
        centers: Float64Array,
        state: MiniBatchState,
        spec: FitSpec,
        b: int,
        n_steps: int,
        stopper: _Stopper,
        t0: float,
    ) -> tuple[Float64Array, list[IterationRecord], bool]:
        stream = derive_seed(state.seed, _STREAM)
        per_gather = max(1, int(self.gather_rows) // b)
        ones = unit_weights(b)
        history: list[IterationRecord] = []
        step = 0
        while step < n_steps:
            m = min(per_gather, n_steps - step)
            rows = sampler.rows(stream, step * b, m * b, sampler.dataset.dtype)
            for j in range(m):
                centers, out = minibatch_step(
                    state, centers, rows[j * b : (j + 1) * b], ones, spec.distance, self.reassignment_ratio
                )
                record = IterationRecord(
                    iteration=step + 1,
                    inertia=out.inertia,
                    center_shift=out.shift,
                    elapsed=time.perf_counter() - t0,
                    n_empty=out.n_reassigned,
                )
                history.append(record)
                for cb in spec.callbacks:
                    cb(record)
                stop, converged = stopper.done(step, out)
                step += 1
                if stop:
                    return centers, history, converged
        return centers, history, False


def chunk_dataset(points: FloatArray, weights: Float64Array | None) -> BlockDataset:
    """A chunk of :meth:`KMeans.partial_fit` as one in-memory dataset (its initializer's input)."""
    return BlockDataset.from_arrays(points, weights)


def batches(sampler: RowSampler, seed: int, batch_size: int, steps: int, dtype: Any) -> Sequence[FloatArray]:
    """The rows of steps ``0 .. steps - 1`` of the stream of run seed ``seed`` (what a fit's steps read)."""
    rows = sampler.rows(derive_seed(seed, _STREAM), 0, steps * batch_size, np.dtype(dtype))
    return [rows[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


__all__ = [
    "MiniBatch",
    "MiniBatchState",
    "RowSampler",
    "StepResult",
    "batches",
    "chunk_dataset",
    "final_pass",
    "minibatch_step",
    "quantized",
]
