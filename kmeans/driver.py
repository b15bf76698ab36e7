"""The generic Lloyd iteration, shared by every backend.

One iteration is one ``map_reduce`` pass that assigns every row to its closest center
and summarizes the rows per cluster in the same sweep; ``finalize`` turns the summary
into new centers. Policies that must be identical on every engine live here:

- **Convergence.** After an update, the fit stops when ``tol > 0`` and no center moved
  more than ``tol`` (``max_j dist(old_j, new_j) <= tol``, with ``dist`` the metric's own
  distance: Euclidean for L2, Manhattan for L1, in the units of the data). With
  ``tol = 0`` exactly ``max_iter`` updates run. ``n_iter`` counts updates.
- **Empty clusters.** A cluster that receives no weight takes the row farthest from its
  assigned center (largest cost; ties to the lowest global row index); the i-th empty
  cluster (ascending index) takes the i-th farthest row, and that row's weight moves from
  its old cluster to the new one. This is scikit-learn's rule, applied on every engine
  with one extra pass to find the rows and one to re-summarize. Centers are never NaN.
- **Final state.** After the last update one more pass computes the inertia and cluster
  weights for the final centers, so ``inertia_`` always matches ``cluster_centers_``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from kmeans._ops import weighted_bincount, weighted_sum
from kmeans._random import derive_seed
from kmeans._types import Block, Callback, FitResult, FitSpec, Float64Array, IntArray, IterationRecord, LloydResult
from kmeans.protocols import AssignStep, Dataset, Refine, UpdateStep


@attrs.frozen(eq=False)
class _PassSummary:
    update: Any
    inertia: float
    cluster_weights: Float64Array


@attrs.frozen(eq=False)
class _Farthest:
    costs: Float64Array
    rows: np.ndarray[Any, np.dtype[np.int64]]


def _override(labels: IntArray, block: Block, moves: dict[int, int]) -> IntArray:
    if not moves:
        return labels
    idx = np.fromiter(moves.keys(), dtype=np.int64)
    inside = (idx >= block.start) & (idx < block.start + block.n_rows)
    if not inside.any():
        return labels
    labels = labels.copy()
    new = np.fromiter(moves.values(), dtype=np.intp)
    labels[idx[inside] - block.start] = new[inside]
    return labels


def summarize(
    dataset: Dataset,
    centers: Float64Array,
    assign: AssignStep,
    update: UpdateStep,
    state: Any,
    moves: dict[int, int] | None = None,
) -> _PassSummary:
    """One fused pass: assign each row, then summarize rows per cluster for ``update``."""
    k = centers.shape[0]
    moves = moves or {}

    def fn(block: Block) -> _PassSummary:
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


def evaluate(dataset: Dataset, centers: Float64Array, assign: AssignStep) -> tuple[float, Float64Array]:
    """``(inertia, cluster_weights)`` of ``centers``: ``sum_i w_i cost(x_i, closest center)``."""
    k = centers.shape[0]

    def fn(block: Block) -> tuple[float, Float64Array]:
        labels, costs = assign.assign(block.points, centers)
        return weighted_sum(block.weights, costs), weighted_bincount(labels, block.weights, k)

    def merge(a: tuple[float, Float64Array], b: tuple[float, Float64Array]) -> tuple[float, Float64Array]:
        return a[0] + b[0], a[1] + b[1]

    return dataset.map_reduce(fn, merge)


def farthest_rows(dataset: Dataset, centers: Float64Array, assign: AssignStep, m: int) -> list[int]:
    """Global indices of the ``m`` rows of positive weight farthest from their closest center.

    Order: largest cost first, ties broken by the lowest global row index.
    """

    def top(costs: Float64Array, rows: np.ndarray[Any, np.dtype[np.int64]]) -> _Farthest:
        order = np.lexsort((rows, -costs))[:m]
        return _Farthest(costs[order], rows[order])

    def fn(block: Block) -> _Farthest:
        _, costs = assign.assign(block.points, centers)
        rows = block.row_indices()
        keep = block.weights > 0
        return top(costs[keep], rows[keep])

    def merge(a: _Farthest, b: _Farthest) -> _Farthest:
        return top(np.concatenate([a.costs, b.costs]), np.concatenate([a.rows, b.rows]))

    return [int(r) for r in dataset.map_reduce(fn, merge).rows]


def _update_centers(
    dataset: Dataset,
    centers: Float64Array,
    assign: AssignStep,
    update: UpdateStep,
    plan: Any,
    first: _PassSummary,
    moves: dict[int, int],
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
    history: list[IterationRecord] = []
    converged = False
    n_iter = 0
    for it in range(max_iter):
        summary = summarize(dataset, centers, assign, update, plan)
        moves: dict[int, int] = {}
        empty = np.flatnonzero(summary.cluster_weights == 0)
        if empty.size and empty_cluster == "farthest":
            rows = farthest_rows(dataset, centers, assign, int(empty.size))
            moves = {row: int(cluster) for row, cluster in zip(rows, empty, strict=True)}
            summary = attrs.evolve(summarize(dataset, centers, assign, update, plan, moves), inertia=summary.inertia)
        new_centers = _update_centers(dataset, centers, assign, update, plan, summary, moves)
        shift = float(np.max(assign.shift(centers, new_centers)))
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
        if tol > 0 and shift <= tol:
            converged = True
            break
    inertia, weights = evaluate(dataset, centers, assign)
    return LloydResult(
        centers=centers,
        inertia=inertia,
        n_iter=n_iter,
        cluster_weights=weights,
        history=tuple(history),
        converged=converged,
        seed=seed,
    )


def fit_restarts(dataset: Dataset, spec: FitSpec, on_restart: Callable[[int], None] | None = None) -> FitResult:
    """Run ``spec.n_init`` initializations + Lloyd runs and keep the lowest inertia.

    Restart ``r`` initializes with ``derive_seed(spec.seed, r)``; ties in inertia keep
    the earliest restart.
    """
    assign, update = spec.distance.assign, spec.distance.update
    best: LloydResult | None = None
    inertias: list[float] = []
    for r in range(spec.n_init):
        if on_restart is not None:
            on_restart(r)
        run_seed = derive_seed(spec.seed, r)
        centers = spec.initializer.init(dataset, spec.n_clusters, assign, run_seed)
        result = lloyd(
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
