"""The generic Lloyd iteration, shared by every backend.

One iteration is one ``map_reduce`` pass that assigns every row to its closest center
and summarizes the rows per cluster in the same sweep; ``finalize`` turns the summary
into new centers. Policies that must be identical on every engine live here:

- **Convergence.** After an update, the fit stops when ``tol > 0`` and no center moved
  more than ``tol`` (``max_j dist(old_j, new_j) <= tol``, with ``dist`` the metric's own
  distance: Euclidean for L2, Manhattan for L1, in the units of the data), or, whatever
  ``tol``, when an update left every center exactly where it was: a fixed point, which every
  later update would repeat (MLlib and scikit-learn stop there too). Otherwise ``max_iter``
  updates run. ``n_iter`` counts updates.
- **Empty clusters.** A cluster that receives no weight is moved onto the data point
  farthest from its closest center: the i-th empty cluster (ascending index) takes the
  i-th farthest *distinct* point (largest cost; equal costs ordered by the point's values,
  lexicographically ascending), and every row equal to that point moves to it with all its
  weight. This is scikit-learn's rule made independent of row order and of how duplicates
  are stored: permuting rows, duplicating a row or doubling its weight, and ``compress()``
  all give the same result. It costs one extra pass to find the points and one to
  re-summarize, only in iterations with an empty cluster. A cluster that stays empty (no
  point left to take) keeps its previous center: centers are never NaN or infinite.
- **Fewer distinct points than clusters.** When the data has only ``m < k`` distinct points
  of positive weight (as the metric tells points apart: rows, or directions for cosine),
  the optimum is exact and needs no iteration: :func:`distinct_points` finds them and
  :func:`padded_centers` makes the ``k`` centers (the estimator then runs no Lloyd update).
- **Final state.** After the last update one more pass computes the inertia and cluster
  weights for the final centers, so ``inertia_`` always matches ``cluster_centers_``.

:func:`fit` is the whole fit every driver-based backend runs: the compress rule, the
restarts (:func:`fit_restarts`, each one :func:`lloyd` or an engine's own ``run``) and the
labels of every input row, mapped back through the compression.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._ops import weighted_bincount, weighted_sum
from kmeans._random import derive_seed
from kmeans._types import (
    Block,
    Callback,
    FitResult,
    FitSpec,
    Float64Array,
    IntArray,
    IterationRecord,
    LloydResult,
    RunMemory,
)
from kmeans._validation import check_initial_centers
from kmeans.init._sampling import distinct_rows, first_distinct
from kmeans.protocols import AssignStep, Dataset, Refine, UpdateStep, optional
from kmeans.sparse import rows_equal


@attrs.frozen(eq=False)
class _PassSummary:
    update: Any
    inertia: float
    cluster_weights: Float64Array


@attrs.frozen(eq=False)
class _Farthest:
    costs: Float64Array
    points: Float64Array


#: A relocation: every row equal to ``point`` is relabelled ``cluster``.
Move = tuple[Float64Array, int]


def _override(labels: IntArray, block: Block, moves: Sequence[Move]) -> IntArray:
    copied = False
    for point, cluster in moves:
        hit = rows_equal(block.points, point)
        if hit.any():
            if not copied:
                labels, copied = labels.copy(), True
            labels[hit] = cluster
    return labels


def _fused(update: UpdateStep | None, memory: RunMemory | None) -> Callable[..., Any] | None:
    """``update.fused_partial`` (an optional member) as ``fn(assign, block, centers, state)``, with ``memory``."""
    fused: Callable[..., Any] | None = None if update is None else optional(update, "fused_partial")
    return None if fused is None else functools.partial(fused, memory=memory)


def summarize(
    dataset: Dataset,
    centers: Float64Array,
    assign: AssignStep,
    update: UpdateStep,
    state: Any,
    moves: Sequence[Move] = (),
    memory: RunMemory | None = None,
) -> _PassSummary:
    """One fused pass: assign each row, then summarize rows per cluster for ``update``.

    Uses ``update.fused_partial`` (one compiled read of each block) when the update step
    has it, accepts ``assign`` and no relocation is pending; ``memory`` is the run's
    per-block scratch it may keep state in (see :class:`~kmeans.protocols.UpdateStep`).
    """
    k = centers.shape[0]
    fused = None if moves else _fused(update, memory)

    def fn(block: Block) -> _PassSummary:
        if fused is not None:
            out = fused(assign, block, centers, state)
            if out is not None:
                return _PassSummary(*out)
        labels, costs = assign.assign(block.points, centers)
        inertia = weighted_sum(block.weights, costs)
        labels = _override(labels, block, moves)
        return _PassSummary(
            update.partial(block, labels, k, state),
            inertia,
            weighted_bincount(labels, block.weights, k),
        )

    def merge(a: _PassSummary, b: _PassSummary) -> _PassSummary:
        return _PassSummary(
            update.merge(a.update, b.update), a.inertia + b.inertia, a.cluster_weights + b.cluster_weights
        )

    return dataset.map_reduce(fn, merge)


def evaluate(
    dataset: Dataset,
    centers: Float64Array,
    assign: AssignStep,
    update: UpdateStep | None = None,
    memory: RunMemory | None = None,
) -> tuple[float, Float64Array]:
    """``(inertia, cluster_weights)`` of ``centers``: ``sum_i w_i cost(x_i, closest center)``.

    With ``update``, its ``fused_partial`` (if any) does the pass, with ``memory``.
    """
    k = centers.shape[0]
    fused = _fused(update, memory)

    def fn(block: Block) -> tuple[float, Float64Array]:
        if fused is not None:
            out = fused(assign, block, centers, None)
            if out is not None:
                return out[1], out[2]
        labels, costs = assign.assign(block.points, centers)
        return weighted_sum(block.weights, costs), weighted_bincount(labels, block.weights, k)

    def merge(a: tuple[float, Float64Array], b: tuple[float, Float64Array]) -> tuple[float, Float64Array]:
        return a[0] + b[0], a[1] + b[1]

    return dataset.map_reduce(fn, merge)


def _top_distinct(costs: Float64Array, points: Float64Array, m: int) -> _Farthest:
    """The ``m`` distinct points of largest cost; equal costs in ascending value order."""
    order = np.lexsort((*(points[:, j] for j in range(points.shape[1] - 1, -1, -1)), -costs))
    costs, points = costs[order], points[order]
    if points.shape[0] > 1:
        new = np.ones(points.shape[0], dtype=bool)
        new[1:] = np.any(points[1:] != points[:-1], axis=1)
        costs, points = costs[new], points[new]
    return _Farthest(costs[:m], points[:m])


def farthest_points(dataset: Dataset, centers: Float64Array, assign: AssignStep, m: int) -> Float64Array:
    """The ``m`` distinct points (of positive weight) farthest from their closest center.

    Order: largest cost first; equal costs by the points' values, lexicographically
    ascending. Identical rows have identical costs, so the choice does not depend on row
    order, duplication or blocks. Fewer than ``m`` rows come back when there are fewer
    distinct points.
    """

    def fn(block: Block) -> _Farthest:
        _, costs = assign.assign(block.points, centers)
        keep = np.flatnonzero(block.weights > 0)
        costs = costs[keep]
        take = m
        while True:  # look at the largest costs first; widen while duplicates crowd them out
            if take < costs.shape[0]:
                threshold = np.partition(costs, costs.shape[0] - take)[costs.shape[0] - take]
                sel = costs >= threshold
            else:
                sel = np.ones(costs.shape[0], dtype=bool)
            # only the selected rows are made dense float64 (sparse rows stay sparse)
            top = _top_distinct(costs[sel], np.asarray(block.points[keep[sel]], dtype=np.float64), m)
            if top.points.shape[0] >= m or sel.all():
                return top
            take *= 4

    def merge(a: _Farthest, b: _Farthest) -> _Farthest:
        return _top_distinct(np.concatenate([a.costs, b.costs]), np.concatenate([a.points, b.points]), m)

    return dataset.map_reduce(fn, merge).points


#: Values of a block made dense at a time when looking for distinct points of a metric's own form.
_CANONICAL_VALUES = 1 << 22


def _distinct_canonical(
    dataset: Dataset, limit: int, canonical: Callable[[Float64Array], Float64Array]
) -> Float64Array:
    """Distinct ``canonical`` forms of the rows of positive weight, sorted: all of them when fewer than ``limit``.

    A block stops reading once it has ``limit`` forms; rows are made dense a few at a time.
    """
    d = dataset.n_features  # not the dataset in fn: an engine's dataset may not pickle (a DataFrame's)
    step = max(1, min(4096, _CANONICAL_VALUES // max(1, d)))

    def fn(block: Block) -> Float64Array:
        found = np.empty((0, d))
        for lo in range(0, block.n_rows, step):
            hi = lo + step
            pts = np.asarray(block.points[lo:hi][block.weights[lo:hi] > 0], dtype=np.float64)
            found = np.unique(np.concatenate([found, canonical(pts)]), axis=0)
            if found.shape[0] >= limit:
                break
        return found[:limit]

    def merge(a: Float64Array, b: Float64Array) -> Float64Array:
        return np.unique(np.concatenate([a, b]), axis=0)[:limit]

    out: Float64Array = dataset.map_reduce(fn, merge)
    return out


def distinct_points(dataset: Dataset, limit: int, assign: AssignStep) -> Float64Array | None:
    """All distinct points of positive weight, in ascending lexicographic order, when fewer than ``limit``.

    ``None`` when there are at least ``limit``. Points are rows, or their ``assign.canonical``
    form when the metric has one (cosine: the unit rows ``x / ||x||``, so ``x`` and ``2 x``
    are one point; forms are compared as float64 values). Cheap when points are plentiful:
    :func:`~kmeans.init._sampling.distinct_rows` (a DataFrame answers it with ``LIMIT``);
    one more pass only when a metric's ``limit`` distinct rows have fewer distinct forms.
    """
    rows = distinct_rows(dataset, limit)
    canonical: Callable[[Float64Array], Float64Array] | None = optional(assign, "canonical")
    forms = rows if canonical is None else canonical(rows)
    if first_distinct(forms, limit).shape[0] >= limit:  # the common case: no sort
        return None
    found: Float64Array = np.unique(forms, axis=0)
    if rows.shape[0] >= limit:  # rows with a shared form: count the forms of all
        found = _distinct_canonical(dataset, limit, canonical)  # type: ignore[arg-type]
    return found if found.shape[0] < limit else None


def padded_centers(points: Float64Array, k: int) -> Float64Array:
    """``k`` centers from ``m < k`` distinct points: center ``j`` is point ``j mod m``.

    The first ``m`` centers are the points (cost 0 for every row); the surplus repeat them
    cyclically and stay empty, since a row equally close to two centers goes to the lower index.
    """
    centers: Float64Array = np.ascontiguousarray(points[np.arange(k) % points.shape[0]], dtype=np.float64)
    return centers


def _update_centers(
    dataset: Dataset,
    centers: Float64Array,
    assign: AssignStep,
    update: UpdateStep,
    plan: Any,
    first: _PassSummary,
    moves: Sequence[Move],
) -> Float64Array:
    summary, state = first, plan
    while True:
        result = update.finalize(summary.update, centers, state)
        if not isinstance(result, Refine):
            return np.asarray(result, dtype=np.float64)
        state = result.state
        summary = summarize(dataset, centers, assign, update, state, moves)


def lloyd(
    dataset: Dataset,
    centers: Float64Array,
    assign: AssignStep,
    update: UpdateStep,
    *,
    max_iter: int,
    tol: float,
    callbacks: Sequence[Callback] = (),
    restart: int = 0,
    seed: int = 0,
    empty_cluster: str = "farthest",
) -> LloydResult:
    """Run Lloyd iterations from ``centers``; see the module docstring for the rules."""
    t0 = time.perf_counter()
    centers = np.array(centers, dtype=np.float64)
    k = centers.shape[0]
    plan = update.plan(dataset, k)
    # Per-block state the fused pass keeps between this run's passes (e.g. distance bounds
    # that let most rows skip most distances); it lives as long as the run. A dataset that
    # must stay within bounded memory (streamed from files) declines it: same results.
    run_memory = optional(dataset, "run_memory")
    memory: RunMemory | None = None
    if optional(dataset, "row_state"):
        memory = {} if run_memory is None else run_memory()
    history: list[IterationRecord] = []
    converged = False
    n_iter = 0
    for it in range(max_iter):
        summary = summarize(dataset, centers, assign, update, plan, memory=memory)
        moves: list[Move] = []
        empty = np.flatnonzero(summary.cluster_weights == 0)
        if empty.size and empty_cluster == "farthest":
            points = farthest_points(dataset, centers, assign, int(empty.size))
            moves = [(point, int(cluster)) for point, cluster in zip(points, empty, strict=False)]
            summary = attrs.evolve(summarize(dataset, centers, assign, update, plan, moves), inertia=summary.inertia)
        new_centers = _update_centers(dataset, centers, assign, update, plan, summary, moves)
        shift = float(np.max(assign.shift(centers, new_centers)))
        fixed = np.array_equal(new_centers, centers)  # every later update would give these again
        centers = new_centers
        n_iter = it + 1
        record = IterationRecord(
            iteration=n_iter,
            inertia=summary.inertia,
            center_shift=shift,
            elapsed=time.perf_counter() - t0,
            n_empty=int(empty.size),
            restart=restart,
        )
        history.append(record)
        for cb in callbacks:
            cb(record)
        if fixed or (tol > 0 and shift <= tol):
            converged = True
            break
    inertia, weights = evaluate(dataset, centers, assign, update, memory)
    return LloydResult(
        centers=centers,
        inertia=inertia,
        n_iter=n_iter,
        cluster_weights=weights,
        history=tuple(history),
        converged=converged,
        seed=seed,
    )


def fit_restarts(
    dataset: Dataset,
    spec: FitSpec,
    on_restart: Callable[[int], None] | None = None,
    run: Callable[..., LloydResult] = lloyd,
) -> FitResult:
    """Run ``spec.n_init`` initializations + Lloyd runs and keep the lowest inertia.

    Restart ``r`` initializes with ``derive_seed(spec.seed, r)``; ties in inertia keep
    the earliest restart. ``run`` executes the Lloyd iterations (:func:`lloyd`'s
    signature); an engine may pass its own, e.g. one that runs :func:`lloyd` where the
    data lives.
    """
    assign, update = spec.distance.assign, spec.distance.update
    best: LloydResult | None = None
    inertias: list[float] = []
    for r in range(spec.n_init):
        if on_restart is not None:
            on_restart(r)
        run_seed = derive_seed(spec.seed, r)
        centers = check_initial_centers(
            spec.initializer.init(dataset, spec.n_clusters, assign, run_seed),
            spec.n_clusters,
            dataset.n_features,
            strategy=spec.initializer,
        )
        result = run(
            dataset,
            centers,
            assign,
            update,
            max_iter=spec.max_iter,
            tol=spec.tol,
            callbacks=spec.callbacks,
            restart=r,
            seed=run_seed,
            empty_cluster=spec.empty_cluster,
        )
        inertias.append(result.inertia)
        if best is None or result.inertia < best.inertia:
            best = result
    assert best is not None
    return FitResult(
        centers=best.centers,
        inertia=best.inertia,
        n_iter=best.n_iter,
        cluster_weights=best.cluster_weights,
        history=best.history,
        converged=best.converged,
        seed=best.seed,
        restarts=tuple(inertias),
    )


def should_compress(dataset: Dataset, compress: bool | str) -> bool:
    """The compress rule: ``True`` always, ``"auto"`` for integer-valued data (8-bit pixels), ``False`` never."""
    return compress is True or (compress == "auto" and dataset.integer_valued)


def labels(dataset: Dataset, centers: Float64Array, assign: AssignStep) -> Any:
    """The closest center of every row: the dataset's own ``labels`` if it has one, else an int32 ndarray.

    The fallback fills the array from ``map_reduce``, so it needs ``fn`` to run in this process.
    """
    own = optional(dataset, "labels")
    if own is not None:
        return own(centers, assign)
    out = np.empty(dataset.n_rows, dtype=np.int32)  # like scikit-learn: half the memory of intp

    def fn(block: Block) -> None:
        out[block.start : block.start + block.n_rows] = assign.assign(block.points, centers)[0]

    dataset.map_reduce(fn, lambda a, b: None)
    return out


def input_labels(dataset: Dataset, work: Dataset, centers: Float64Array, assign: AssignStep) -> Any:
    """Labels of the input rows; through ``work.inverse`` when ``work`` is its compression and has one."""
    inverse = None if work is dataset else optional(work, "inverse")
    if inverse is None:
        return labels(dataset, centers, assign)
    mapped: NDArray[np.int32] = np.asarray(labels(work, centers, assign))[inverse]
    return mapped


def fit(
    dataset: Dataset,
    spec: FitSpec,
    *,
    run: Callable[..., LloydResult] = lloyd,
    on_restart: Callable[[int], None] | None = None,
) -> FitResult:
    """The whole fit on ``dataset``: compress (:func:`should_compress`), restarts, labels of every input row.

    ``run`` executes one restart's Lloyd iterations with :func:`lloyd`'s signature (an
    engine may run them where the data lives); ``spec.algorithm``, when set, runs the fit
    instead of the restarts. A compressed dataset made here is
    released (its optional ``release()``) when the fit ends, even on error.
    """
    work = dataset.compress() if should_compress(dataset, spec.compress) else dataset
    try:
        if spec.algorithm is None:
            result = fit_restarts(work, spec, on_restart, run=run)
        else:  # another algorithm (mini-batch) runs the whole fit; it may label the rows in its last pass
            result = spec.algorithm.fit(work, spec)
        inverse = None if work is dataset else optional(work, "inverse")
        if result.labels is not None and work is dataset:
            found = result.labels
        elif result.labels is not None and inverse is not None:
            found = np.asarray(result.labels)[inverse]
        else:
            found = input_labels(dataset, work, result.centers, spec.distance.assign)
    finally:
        release = None if work is dataset else optional(work, "release")
        if release is not None:
            release()
    return attrs.evolve(result, labels=found)
