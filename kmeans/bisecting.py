"""Bisecting k-means: a driver that splits one cluster at a time with the generic 2-means.

The algorithm (scikit-learn's ``BisectingKMeans``, with MLlib's ``minDivisibleClusterSize``):

1. The root holds every row; its center is the distance's own update of all rows (the
   weighted mean for L2, the median for L1).
2. Pick the leaf to split: the *divisible* leaf with the largest score, the first leaf in
   depth-first (left before right) order on ties. The score is the leaf's inertia
   ``sum w cost(x, center)`` (``"biggest_inertia"``) or its total weight (``"largest_cluster"``;
   the row count for unit weights). A leaf is divisible when its weight is at least
   ``min_divisible_cluster_size`` (a proportion of the total weight when below 1) and it
   holds at least two distinct rows of positive weight.
3. Split it with 2-means: the strategies of :class:`~kmeans.KMeans` (initializer, distance,
   ``n_init`` restarts, :func:`kmeans.driver.lloyd`) on the leaf's rows only. Label 0 becomes
   the left child, label 1 the right child.
4. Repeat until there are ``n_clusters`` leaves, or no leaf is divisible (fewer clusters
   then, with a warning, as MLlib).

**Membership is the tree.** A row belongs to the node reached by descending from the root,
going at every split to the closer of the two children (the metric's ``assign``, ties to the
left). That is what a 2-means result labels the rows it was fitted on, so ``labels_`` are the
bisection's own labels and ``predict`` is descent in the tree, as in scikit-learn (not the
nearest leaf center). A leaf's rows are therefore a pure function of the row and the tree:
every engine selects them by evaluating the path from the root inside ``map_reduce``
(:class:`SubsetDataset`), so Spark filters its cached blocks on the executors and never
collects or re-reads the data. The subset's rows get global indices ``0 .. m - 1`` in the
order of the input rows, so seeded initializers draw the same rows on every engine and any
partitioning.

Each split is seeded with ``derive_seed(seed, s)`` for the ``s``-th split (restart ``r`` of it
then uses ``derive_seed(derive_seed(seed, s), r)``, the rule of :func:`kmeans.driver.fit_restarts`).
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import driver, registry
from kmeans._random import derive_seed
from kmeans._scale import FitScaling, fit_dataset, scale_for_centers, unscale_cost
from kmeans._types import Block, FitSpec, Float64Array, FloatArray, IntArray
from kmeans.dataset import BlockDataset, DatasetFacts, FactsMixin
from kmeans.errors import ValidationError
from kmeans.estimator import KMeans, _as_numbers, _feature_names
from kmeans.init._sampling import distinct_rows, first_distinct
from kmeans.protocols import Dataset, optional
from kmeans.sparse import is_scipy_sparse

T = TypeVar("T")

STRATEGIES = ("biggest_inertia", "largest_cluster")

#: Subsets of at most this many rows are copied into memory for their 2-means when the
#: engine's blocks live in this process (``local_blocks``): passes then skip the path test.
MATERIALIZE_ROWS = 1 << 24


# -- the tree ------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class SplitTree:
    """The split tree of a fitted :class:`BisectingKMeans`, as flat arrays over its nodes.

    Node 0 is the root (every row); the ``s``-th split (from 0) turned a leaf into the parent
    of nodes ``2s + 1`` (left, label 0 of its 2-means) and ``2s + 2`` (right), so a parent's id
    is always smaller than its children's.

    - ``centers`` ``(n_nodes, d)``: each node's center (the root's is the update of all rows).
    - ``children`` ``(n_nodes, 2)``: left and right child ids, ``-1`` for a leaf.
    - ``parent`` ``(n_nodes,)``: the parent id, ``-1`` for the root.
    - ``weight`` ``(n_nodes,)``: total weight of the node's rows (row count for unit weights).
    - ``cost`` ``(n_nodes,)``: the node's inertia, ``sum w cost(x, centers[node])`` over its rows.
    - ``label`` ``(n_nodes,)``: the cluster label of a leaf (``0 .. n_leaves - 1`` in depth-first,
      left-first order), ``-1`` for an inner node.

    Invariants: an inner node's weight is the sum of its children's; the leaves' centers are
    ``cluster_centers_`` (row ``label``), their weights ``cluster_sizes_``, their costs sum to
    ``inertia_``.
    """

    centers: Float64Array
    children: NDArray[np.intp]
    parent: NDArray[np.intp]
    weight: Float64Array
    cost: Float64Array
    label: NDArray[np.intp]

    @property
    def n_nodes(self) -> int:
        return int(self.centers.shape[0])

    @property
    def leaves(self) -> NDArray[np.intp]:
        """Node id of each cluster label: ``leaves[label]``."""
        order = np.flatnonzero(self.label >= 0)
        out: NDArray[np.intp] = order[np.argsort(self.label[order], kind="stable")]
        return out

    def path(self, node: int) -> list[tuple[int, int]]:
        """``(inner node, side)`` steps from the root down to ``node`` (side 0 left, 1 right)."""
        steps: list[tuple[int, int]] = []
        while self.parent[node] >= 0:
            p = int(self.parent[node])
            steps.append((p, 0 if self.children[p, 0] == node else 1))
            node = p
        return steps[::-1]


def _dfs_leaves(children: NDArray[np.intp]) -> list[int]:
    out: list[int] = []
    stack = [0]
    while stack:
        node = stack.pop()
        if children[node, 0] < 0:
            out.append(node)
        else:
            stack.extend((int(children[node, 1]), int(children[node, 0])))
    return out


def tree_labels(children: NDArray[np.intp]) -> NDArray[np.intp]:
    """:attr:`SplitTree.label` from the children: leaves numbered in depth-first, left-first order."""
    label = np.full(children.shape[0], -1, dtype=np.intp)
    order = _dfs_leaves(children)
    label[order] = np.arange(len(order))
    return label


@attrs.define(eq=False)
class TreeAssign:
    """An :class:`~kmeans.protocols.AssignStep` that assigns by descending the split tree.

    ``assign(points, centers)`` ignores ``centers`` beyond their count (they are the leaf
    centers, already in the tree) and returns each row's leaf label and its cost to that
    leaf's center, so every backend's ``labels`` and ``predict`` run the descent where the
    rows live. ``pairwise`` and ``shift`` are the metric's own.
    """

    tree: SplitTree
    metric: Any
    name: str = "bisecting-tree"
    #: With a distance, rows and the tree's centers are first rescaled together into the safe
    #: range (:func:`kmeans._scale.scale_for_centers`), so the descent is exact at any scale.
    distance: Any = None

    @property
    def range_safe(self) -> bool:
        return self.distance is not None

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        tree, n = self.tree, points.shape[0]
        nodes, e = tree.centers, 0
        if self.distance is not None:
            points, nodes, e = scale_for_centers(points, nodes, self.distance)
        node = np.zeros(n, dtype=np.intp)
        costs = np.zeros(n, dtype=np.float64)
        if tree.children[0, 0] < 0:  # a single cluster: every row is the root's
            costs = np.asarray(self.metric.assign(points, nodes[:1])[1], dtype=np.float64)
        for inner in np.flatnonzero(tree.children[:, 0] >= 0).tolist():  # parents before children
            rows = np.flatnonzero(node == inner)
            if rows.size:
                kids = tree.children[inner]
                side, cost = self.metric.assign(points[rows], nodes[kids])
                node[rows] = kids[side]
                costs[rows] = cost
        labels: IntArray = tree.label[node].astype(np.intp)
        return labels, costs if e == 0 else unscale_cost(costs, e, self.distance)

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        out: Float64Array = self.metric.pairwise(points, centers)
        return out

    def shift(self, old: Float64Array, new: Float64Array) -> Float64Array:
        out: Float64Array = self.metric.shift(old, new)
        return out


# -- a leaf's rows as a dataset -------------------------------------------------------------


@attrs.frozen(eq=False)
class _Path:
    """The descent test of one node: ``(two child centers, side)`` from the root down."""

    steps: tuple[tuple[Float64Array, int], ...]
    metric: Any

    def mask(self, points: FloatArray) -> NDArray[np.bool_]:
        keep = np.ones(points.shape[0], dtype=bool)
        for centers, side in self.steps:
            rows = np.flatnonzero(keep)
            if not rows.size:
                break
            keep[rows[self.metric.assign(points[rows], centers)[0] != side]] = False
        return keep


class _Nothing:
    """A block with no row of the subset (merged away; compared by type, so it survives pickling)."""


def _skip_empty(merge: Callable[[T, T], T]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if isinstance(a, _Nothing):
            return b
        if isinstance(b, _Nothing):
            return a
        return merge(a, b)

    return run


def _masked(path: _Path, offsets: dict[int, int], fn: Callable[[Block], T]) -> Callable[[Block], Any]:
    def run(block: Block) -> Any:
        keep = path.mask(block.points)
        if not keep.any():
            return _Nothing()
        start = offsets[block.start]
        if keep.all():
            return fn(Block(block.points, block.weights, start))
        return fn(Block(block.points[keep], np.asarray(block.weights)[keep], start))

    return run


class SubsetDataset(FactsMixin):
    """The rows of one tree node as a :class:`~kmeans.protocols.Dataset` over the parent's blocks.

    ``map_reduce`` runs on the parent engine: each block keeps the rows whose descent
    reaches the node (``path``), renumbered so the subset's global indices are ``0 .. m-1`` in
    input order (``offsets``: parent block start -> subset index of its first kept row).
    Blocks without a kept row are skipped. Nothing is collected or cached.
    """

    def __init__(self, parent: Dataset, path: _Path, offsets: dict[int, int], facts: DatasetFacts) -> None:
        self.parent = parent
        self.path = path
        self.offsets = offsets
        self.facts = facts

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        out: T = self.parent.map_reduce(_masked(self.path, self.offsets, fn), _skip_empty(merge))
        return out

    def compress(self) -> Dataset:
        raise NotImplementedError("a subset is made from already compressed data")  # never called: compress=False


def _local_subset(subset: SubsetDataset, blocks: Sequence[Block]) -> BlockDataset:
    """The subset's rows copied into one in-memory dataset (same row order and indices)."""
    points, weights = [], []
    for block in blocks:
        keep = subset.path.mask(block.points)
        if keep.any():
            points.append(block.points[keep])
            weights.append(np.asarray(block.weights, dtype=np.float64)[keep])
    pts, w = np.concatenate(points), np.concatenate(weights)
    return BlockDataset.from_arrays(pts, w, integer_valued=subset.integer_valued, distinct=subset.distinct)


# -- per-split statistics ------------------------------------------------------------------


@attrs.frozen(eq=False)
class _Stats:
    counts: dict[int, tuple[int, int]]  # parent block start -> rows going left, right
    weight: Float64Array  # (2,)
    cost: Float64Array  # (2,)
    distinct: tuple[Float64Array, Float64Array]  # up to two distinct rows of positive weight per child


def _two_distinct(points: Float64Array) -> Float64Array:
    out: Float64Array = points[first_distinct(points, 2)]
    return out


def _some_distinct(points: FloatArray) -> Float64Array:
    """Up to two distinct rows of ``points``: from a short prefix when it has them, else from all."""
    found = _two_distinct(np.asarray(points[:64], dtype=np.float64))
    if found.shape[0] == 2 or points.shape[0] <= 64:
        return found
    return _two_distinct(np.asarray(points, dtype=np.float64))


def _merge_stats(a: _Stats, b: _Stats) -> _Stats:
    distinct = (
        _two_distinct(np.concatenate([a.distinct[0], b.distinct[0]])),
        _two_distinct(np.concatenate([a.distinct[1], b.distinct[1]])),
    )
    return _Stats({**a.counts, **b.counts}, a.weight + b.weight, a.cost + b.cost, distinct)


def _child_stats(dataset: Dataset, path: _Path, centers: Float64Array, metric: Any) -> _Stats:
    """One pass over ``dataset``: per block the node's rows going to each child, their weights and costs,
    and up to two distinct rows of positive weight of each child (is it divisible?)."""

    def fn(block: Block) -> _Stats:
        keep = path.mask(block.points)
        w = np.asarray(block.weights, dtype=np.float64)[keep]
        points = block.points[keep]
        side, cost = metric.assign(points, centers)
        left = side == 0
        counts = (int(np.count_nonzero(left)), int(left.size - np.count_nonzero(left)))
        weight = np.array([w[left].sum(), w[~left].sum()])
        costs = np.array([(w * cost)[left].sum(), (w * cost)[~left].sum()])
        positive = w > 0
        distinct = (_some_distinct(points[left & positive]), _some_distinct(points[~left & positive]))
        return _Stats({block.start: counts}, weight, costs, distinct)

    return dataset.map_reduce(fn, _merge_stats)


def _offsets(counts: dict[int, int]) -> dict[int, int]:
    out, at = {}, 0
    for start in sorted(counts):
        out[start] = at
        at += counts[start]
    return out


# -- the driver ----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class BisectResult:
    """What :func:`bisect` returns: the tree, the leaf centers by label, the number of splits."""

    tree: SplitTree
    centers: Float64Array
    inertia: float
    cluster_weights: Float64Array
    n_splits: int


@attrs.frozen(eq=False)
class _Node:
    path: _Path
    offsets: dict[int, int]
    n_rows: int
    divisible: bool = True


def _min_weight(min_size: float, total: float) -> float:
    return min_size if min_size >= 1.0 else min_size * total


def bisect(
    dataset: Dataset,
    spec: FitSpec,
    *,
    strategy: str = "biggest_inertia",
    min_divisible_cluster_size: float = 1.0,
    run: Callable[..., Any] = driver.lloyd,
) -> BisectResult:
    """Bisecting k-means on ``dataset`` (see the module docstring); ``spec.n_clusters`` leaves at most.

    ``spec`` describes each split's 2-means (its ``n_clusters`` is the number of leaves wanted;
    ``compress`` is ignored: compress ``dataset`` first). ``run`` executes a Lloyd run.
    """
    assign, update = spec.distance.assign, spec.distance.update
    d = dataset.n_features
    # the root: one update of all rows (k=1), and its cost
    # any start does: with one center every row is its, so one update gives the center of all rows
    root = run(dataset, np.zeros((1, d)), assign, update, max_iter=1, tol=0.0, seed=spec.seed)
    centers = [np.asarray(root.centers[0], dtype=np.float64)]
    children: list[list[int]] = [[-1, -1]]
    parent = [-1]
    weight = [float(root.cluster_weights[0])]
    cost = [float(root.inertia)]
    root_divisible = distinct_rows(dataset, 2).shape[0] == 2
    nodes: dict[int, _Node] = {0: _Node(_Path((), assign), {}, dataset.n_rows, root_divisible)}
    min_weight = _min_weight(min_divisible_cluster_size, dataset.total_weight)
    local = optional(dataset, "local_blocks")
    two = attrs.evolve(spec, n_clusters=2, callbacks=spec.callbacks, compress=False)
    n_splits = 0
    while sum(1 for c in children if c[0] < 0) < spec.n_clusters:
        chosen = _choose(nodes, children, weight, cost, strategy, min_weight)
        if chosen is None:
            break
        node = nodes[chosen]
        subset = _subset(dataset, node, weight[chosen], local)
        split_spec = attrs.evolve(two, seed=derive_seed(spec.seed, n_splits))
        result = driver.fit_restarts(subset, split_spec, run=run)
        kids = np.asarray(result.centers, dtype=np.float64)
        stats = _child_stats(dataset, node.path, kids, assign)
        left, right = len(centers), len(centers) + 1
        children[chosen] = [left, right]
        for side, child in ((0, left), (1, right)):
            centers.append(kids[side])
            children.append([-1, -1])
            parent.append(chosen)
            weight.append(float(stats.weight[side]))
            cost.append(float(stats.cost[side]))
            counts = {s: c[side] for s, c in stats.counts.items()}
            steps = (*node.path.steps, (kids, side))
            divisible = stats.distinct[side].shape[0] == 2
            nodes[child] = _Node(_Path(steps, assign), _offsets(counts), sum(counts.values()), divisible)
        del nodes[chosen]
        n_splits += 1
    n_leaves = sum(1 for c in children if c[0] < 0)
    if n_leaves < spec.n_clusters:
        warnings.warn(
            f"bisecting k-means stopped at {n_leaves} clusters of the {spec.n_clusters} asked: no cluster left "
            f"with at least two distinct rows and weight >= {min_weight:g} (min_divisible_cluster_size)",
            RuntimeWarning,
            stacklevel=4,
        )
    child_arr = np.asarray(children, dtype=np.intp).reshape(-1, 2)
    label = tree_labels(child_arr)
    tree = SplitTree(
        centers=np.asarray(centers, dtype=np.float64).reshape(-1, d),
        children=child_arr,
        parent=np.asarray(parent, dtype=np.intp),
        weight=np.asarray(weight, dtype=np.float64),
        cost=np.asarray(cost, dtype=np.float64),
        label=label,
    )
    leaves = tree.leaves
    return BisectResult(
        tree=tree,
        centers=tree.centers[leaves],
        inertia=float(tree.cost[leaves].sum()),
        cluster_weights=tree.weight[leaves],
        n_splits=n_splits,
    )


def fit_tree(dataset: Dataset, spec: FitSpec, strategy: str, min_size: float, run: Any = None) -> BisectResult:
    """:func:`bisect` where the data lives: in the one task that holds every block when the dataset has
    ``in_one_task`` (one Spark job for the whole tree), else on this process with ``run`` (default
    :func:`kmeans.driver.lloyd`) for the Lloyd runs. Callbacks are not called inside a task."""
    one_task = optional(dataset, "in_one_task")
    if one_task is not None:
        quiet = attrs.evolve(spec, callbacks=())
        result: BisectResult = one_task(
            functools.partial(bisect, spec=quiet, strategy=strategy, min_divisible_cluster_size=min_size)
        )
        return result
    return bisect(dataset, spec, strategy=strategy, min_divisible_cluster_size=min_size, run=run or driver.lloyd)


def _subset(dataset: Dataset, node: _Node, weight: float, local: Any) -> Dataset:
    """The rows of ``node``: the dataset itself for the root, a copy when blocks are local, else a view."""
    if not node.path.steps:
        return dataset
    facts = DatasetFacts(
        node.n_rows, dataset.n_features, weight, dataset.dtype, dataset.integer_valued, dataset.distinct
    )
    view = SubsetDataset(dataset, node.path, node.offsets, facts)
    if local is not None and node.n_rows <= MATERIALIZE_ROWS:
        return _local_subset(view, local())
    return view


def _choose(
    nodes: dict[int, _Node],
    children: list[list[int]],
    weight: list[float],
    cost: list[float],
    strategy: str,
    min_weight: float,
) -> int | None:
    """The divisible leaf of largest score, the first in depth-first order on ties; ``None`` if none."""
    best, best_score = None, -np.inf
    for leaf in _dfs_leaves(np.asarray(children, dtype=np.intp).reshape(-1, 2)):
        node = nodes[leaf]
        if not node.divisible or weight[leaf] < min_weight:
            continue
        score = cost[leaf] if strategy == "biggest_inertia" else weight[leaf]
        if score > best_score:
            best, best_score = leaf, score
    return best


def input_dataset(
    backend: Any, spec: FitSpec, X: Any, sample_weight: Any, features: Any, *, rescale: bool = False
) -> tuple[Dataset, FitSpec, FitScaling | None]:
    """``(dataset, spec, scaling)``: ``backend``'s dataset of ``X``, with :meth:`KMeans.fit`'s checks.

    Sparse rows and the metric's data check; with ``rescale``, data at an extreme scale
    exactly rescaled by a power of two (:func:`kmeans._scale.fit_dataset`; else ``scaling`` is ``None``).
    """
    if is_scipy_sparse(X) and not optional(spec.distance.assign, "sparse"):
        name = getattr(spec.distance, "name", repr(spec.distance))
        raise ValidationError(
            f"distance={name!r} cannot read sparse rows; use distance='l2' or 'cosine', or X.toarray()"
        )

    def make(data: Any, weights: Any) -> Dataset:
        made: Dataset = backend.dataset(data, weights, features=features)
        return made

    numbers = _as_numbers(X)
    if rescale:
        dataset, spec, scaling = fit_dataset(numbers, sample_weight, spec, backend, make)
    else:
        dataset, scaling = make(numbers, sample_weight), None
    check_data = optional(spec.distance.assign, "check_dataset")
    if check_data is not None:  # rows the metric cannot measure (cosine: zero rows), in the scaled units
        check_data(dataset)
    return dataset, spec, scaling


def _unscaled(result: BisectResult, scaling: FitScaling) -> BisectResult:
    """A bisection of exactly rescaled data (:mod:`kmeans._scale`), back in the units of the input."""

    def weights(value: Float64Array) -> Float64Array:
        return np.ldexp(np.asarray(value, dtype=np.float64), -scaling.weight_exp)

    tree = attrs.evolve(
        result.tree,
        centers=np.asarray(scaling.length(result.tree.centers), dtype=np.float64),
        weight=weights(result.tree.weight),
        cost=np.asarray(scaling.cost(result.tree.cost), dtype=np.float64),
    )
    return attrs.evolve(
        result,
        tree=tree,
        centers=np.asarray(scaling.length(result.centers), dtype=np.float64),
        inertia=float(scaling.cost(result.inertia)),
        cluster_weights=weights(result.cluster_weights),
    )


# -- the estimator -------------------------------------------------------------------------


class BisectingKMeans(KMeans):
    """Bisecting k-means (see :mod:`kmeans.bisecting`): split one cluster at a time with 2-means.

    Parameters are :class:`~kmeans.KMeans`'s, applied to every split's 2-means (``init``
    defaults to ``"random"`` and ``n_init`` to 1, as in scikit-learn), plus:

    bisecting_strategy : ``"biggest_inertia"`` or ``"largest_cluster"``
        Which leaf to split next: the one of largest inertia or of largest total weight.
    min_divisible_cluster_size : float
        MLlib's ``minDivisibleClusterSize``: a leaf is split only if its weight is at least
        this (a proportion of the total weight when below 1). Default 1.0.

    Any backend runs it; ``"spark-ml"`` runs this driver on the ``spark-rdd`` engine (MLlib's
    ``BisectingKMeans`` splits every divisible leaf of a level at once from its own random
    start, so it would not agree with the other backends).

    Attributes are :class:`~kmeans.KMeans`'s (``cluster_centers_`` are the leaf centers by label,
    ``inertia_`` each row's cost to its own leaf center, ``n_iter_`` the number of splits;
    ``history_`` is empty) plus ``tree_``, the :class:`SplitTree`. ``labels_`` and
    :meth:`predict` descend the tree (the closer child at every split), as in scikit-learn;
    :meth:`transform` gives distances to the leaf centers. Fewer than ``n_clusters``
    clusters result (with a warning) when no leaf is divisible any more.
    """

    _param_names = (*KMeans._param_names, "bisecting_strategy", "min_divisible_cluster_size")

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "random",
        n_init: int | str = 1,
        bisecting_strategy: str = "biggest_inertia",
        min_divisible_cluster_size: float = 1.0,
        **params: Any,
    ) -> None:
        """``params``: the other parameters of :class:`~kmeans.KMeans` (``seed``, ``backend``, ``distance``, ...)."""
        super().__init__(n_clusters, init=init, n_init=n_init, **params)
        self.bisecting_strategy = bisecting_strategy
        self.min_divisible_cluster_size = min_divisible_cluster_size

    def _check_bisecting(self) -> float:
        if self.bisecting_strategy not in STRATEGIES:
            raise ValidationError(
                f"bisecting_strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {self.bisecting_strategy!r}"
            )
        size = self.min_divisible_cluster_size
        if isinstance(size, bool) or not isinstance(size, numbers.Real) or not np.isfinite(size) or size <= 0:
            raise ValidationError(
                "min_divisible_cluster_size must be a positive number (a weight, or a proportion below 1), "
                f"got {size!r}"
            )
        return float(size)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, *, features: Any = None) -> BisectingKMeans:
        """Cluster ``X`` by repeated bisection (``y`` is ignored; see :meth:`KMeans.fit` for the inputs)."""
        min_size = self._check_bisecting()
        backend, spec = self._spec()
        if spec.algorithm is not None:
            raise ValidationError("BisectingKMeans splits clusters with Lloyd's algorithm; use algorithm='lloyd'")
        if getattr(backend, "name", None) == "spark-ml":
            backend = registry.backends["spark-rdd"]
        feature_names = _feature_names(X)
        dataset, spec, scaling = input_dataset(backend, spec, X, sample_weight, features, rescale=True)
        if scaling is not None and min_size >= 1.0:  # a weight, in the units of the scaled weights
            min_size = float(np.ldexp(min_size, scaling.weight_exp))
        if spec.n_clusters > dataset.n_rows:
            raise ValidationError(f"n_clusters={spec.n_clusters} is larger than the number of rows ({dataset.n_rows})")
        check_init = optional(spec.initializer, "check")
        if check_init is not None:
            check_init(2, dataset.n_features)
        work = dataset.compress() if driver.should_compress(dataset, spec.compress) else dataset
        try:
            result = fit_tree(work, spec, self.bisecting_strategy, min_size, optional(backend, "run_lloyd"))
            labels = driver.input_labels(dataset, work, result.centers, TreeAssign(result.tree, spec.distance.assign))
            if scaling is not None:
                result = _unscaled(result, scaling)
            tree_assign = TreeAssign(result.tree, spec.distance.assign, distance=spec.distance)
        finally:
            for data in (work, dataset) if work is not dataset else (dataset,):
                release = optional(data, "release")
                if release is not None:
                    release()
        self.tree_: SplitTree = result.tree
        self._tree_assign = tree_assign
        self.cluster_centers_ = result.centers
        self.inertia_ = result.inertia
        self.n_iter_ = result.n_splits
        self.cluster_sizes_ = result.cluster_weights
        self.history_ = []
        self.converged_ = True
        self.seed_ = spec.seed
        self.labels_ = labels
        self.n_features_in_ = dataset.n_features
        self.backend_ = backend
        self.distance_ = spec.distance
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        else:
            self.__dict__.pop("feature_names_in_", None)
        if features is not None:
            self.features_ = features
        else:
            self.__dict__.pop("features_", None)
        return self

    def _assign_step(self) -> Any:
        """Descent in the split tree (:class:`TreeAssign`)."""
        return self._tree_assign
