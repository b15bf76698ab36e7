"""The five strategy protocols the Lloyd driver composes.

Any object with these methods works; nothing needs to inherit from anything. The
built-in strategies are frozen attrs classes, found by name in :mod:`kmeans.registry`.

Each protocol also lists **optional members**: capabilities a strategy may declare by
having them. Their names and defaults are declared once, in :data:`OPTIONAL_MEMBERS`, and
library code reads them only through :func:`optional`, so "what may a strategy offer"
is written down here rather than probed for in many places.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from kmeans._types import Block, FitResult, FitSpec, Float64Array, FloatArray, IntArray

T = TypeVar("T")


@runtime_checkable
class Dataset(Protocol):
    """The data as one engine holds it: a sequence of :class:`Block` objects.

    Contract:

    - ``map_reduce(fn, merge)`` applies ``fn`` to every block and combines the partial
      results with ``merge``. ``merge`` must be associative; engines may merge in any
      tree shape, so results may differ only by floating-point rounding.
    - Block ``start`` offsets are global row indices: ``0 .. n_rows - 1`` over the
      dataset, the same whatever the engine or the number of blocks.
    - ``compress()`` folds identical rows into one row whose weight is the sum of
      theirs; compressed rows come in ascending lexicographic order of their values,
      on every engine, so seeded strategies pick the same rows.

    Optional members (see :func:`optional`):

    - ``local_blocks() -> list[Block]``: the blocks, when they live in this process;
      initializers then keep per-row state between passes (k-means++). Default: none.
    - ``distinct_rows(limit)``: up to ``limit`` distinct rows of positive weight, when the
      engine finds them cheaper than a ``map_reduce`` over every row (a DataFrame with
      ``LIMIT``). Default: one ``map_reduce`` (:func:`kmeans.init._sampling.distinct_rows`).
    - ``take_sample(num, seed)``: Spark's ``RDD.takeSample(False, num, seed)`` over rows of
      positive weight (``init="take-sample"``). Default: none (that initializer refuses).
    - ``labels(centers, assign)``: the closest center of every row, engine-native (an
      ndarray, a lazy RDD). Default: a ``map_reduce`` filling an int32 ndarray, which only
      works where ``fn`` runs in this process.
    - ``inverse``: for a dataset made by ``compress()``, the ``(n_input,)`` index of each
      input row's distinct row (labels are then mapped back, not recomputed). Default: none.
    - ``in_one_task``: ``None``, or ``in_one_task(fn)`` when every block lives in one task (a
      single Spark partition): runs ``fn`` on a :class:`~kmeans.dataset.BlockDataset` of the blocks
      there and returns its result, so a driver with many small passes (bisecting k-means)
      costs one job. Default: none.
    - ``zero_rows()``: ``(count, first global index)`` of all-zero rows, when the engine
      answers it cheaper than a ``map_reduce`` (a DataFrame in SQL); the ``cosine`` metric
      refuses such rows. Default: one ``map_reduce``.
    - ``release()``: drop engine resources (cached blocks) of a dataset a fit made itself
      (its ``compress()``), called when the fit ends. Default: nothing to release.
    - ``row_state``: whether a Lloyd run may keep per-row state between passes (the update
      step's ``memory``: distance bounds, 8 bytes per row). Default ``True``; a dataset that
      streams from files declares ``False`` so its memory stays bounded (same results).
    - ``run_memory()``: a new :class:`~kmeans._types.RunMemory` for one Lloyd run, where the
      engine keeps the fused passes' per-block state between passes (spark-rdd: files
      beside its blocks). Default: a ``dict``, which only works where ``fn`` runs in this process.
    - ``value_range() -> (max |x|, max w)``: the largest magnitude and weight, known from the
      validation pass; with ``scaled``, lets a fit of engine-native data at an extreme scale run
      exactly rescaled (:mod:`kmeans._scale`). Default: none (the data are fitted as given).
    - ``scaled(data_exp, weight_exp) -> Dataset``: the same rows times ``2**data_exp`` and
      weights times ``2**weight_exp`` (exact), as a new dataset of the same engine. Default:
      none (a fit refuses data that need it, naming the problem).

    :class:`kmeans.dataset.BlockDataset` implements the protocol for blocks in memory.
    """

    @property
    def n_rows(self) -> int:
        """Number of rows (distinct rows after ``compress``)."""
        ...

    @property
    def n_features(self) -> int:
        """Number of columns ``d``."""
        ...

    @property
    def total_weight(self) -> float:
        """Sum of all row weights (the row count for unit weights)."""
        ...

    @property
    def dtype(self) -> np.dtype[Any]:
        """``float32`` or ``float64``: the dtype of every block's ``points``."""
        ...

    @property
    def integer_valued(self) -> bool:
        """True when every value is known to be an integer (e.g. uint8 pixels)."""
        ...

    @property
    def distinct(self) -> bool:
        """True when rows are known to be pairwise distinct (after ``compress``)."""
        ...

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        """``fn`` applied to every block, the partial results folded with the associative ``merge``.

        One pass over the data (one Spark job). ``fn`` runs where the block lives (an
        executor on Spark), so it must be picklable and must not mutate the block.
        """
        ...

    def compress(self) -> Dataset:
        """Identical rows folded into one row carrying their summed weight.

        The result has ``distinct=True`` and its rows in ascending lexicographic order,
        so global row indices (and seeded draws) are the same on every engine.
        """
        ...


@runtime_checkable
class AssignStep(Protocol):
    """The metric: assigns rows to their closest center.

    ``cost`` is what the objective sums (weighted): the squared Euclidean distance for
    L2, the Manhattan distance for L1. Ties go to the lowest center index.

    Optional members: ``distances(points, centers)``, the ``(n, k)`` distances in the units
    of the data (``KMeans.transform``): Euclidean for L2. Default: ``pairwise`` (the cost
    is already a distance, as for L1 and cosine). ``check_dataset(dataset)``: refuse data
    the metric cannot measure (cosine: all-zero rows) with a ``ValidationError``, called by
    ``KMeans.fit`` before the initializer. Default: no check. ``canonical(points)``: each
    row's form such that rows of the same form are the same point to the metric (cosine:
    ``x / ||x||``); the fewer-distinct-points rule counts forms. Default: the rows. ``sparse``: ``True`` when
    ``assign``, ``pairwise`` (and the paired update's ``partial``) read
    :class:`kmeans.sparse.SparseRows` blocks (scipy.sparse input). Default ``False``: such
    input is refused before any pass. ``range_safe``: ``True`` when ``assign`` rescales rows
    into the safe range itself (a tree descent over its own centers); ``predict`` and
    ``score`` then hand it rows as given instead of wrapping it. Default ``False``.
    """

    name: str

    def assign(self, points: FloatArray, centers: Float64Array) -> tuple[IntArray, Float64Array]:
        """``(labels, costs)`` for ``points`` ``(n, d)`` against ``centers`` ``(k, d)``."""
        ...

    def pairwise(self, points: FloatArray, centers: Float64Array) -> Float64Array:
        """The ``(n, k)`` matrix of costs, for initializers."""
        ...

    def shift(self, old: Float64Array, new: Float64Array) -> Float64Array:
        """How far each center moved, ``(k,)``, in the units of the data."""
        ...


@runtime_checkable
class UpdateStep(Protocol):
    """How centers follow assignments, as a mergeable summary.

    Per iteration the driver calls ``partial`` on every block, folds the partials with
    ``merge`` (a monoid: associative, any grouping) and calls ``finalize``. ``finalize``
    returns the new ``(k, d)`` centers, or a :class:`Refine` asking for one more pass
    with a new state (the exact median narrows its histograms that way). A cluster of
    zero weight keeps its old center; the driver's empty-cluster policy handles it.

    Optional member: ``fused_partial(assign, block, centers, state, memory=None)``, always
    called with ``memory`` by keyword (``None`` outside a Lloyd run). When an
    update step has it, the driver calls it first and uses its ``(summary, inertia,
    cluster_weights)`` in place of ``assign`` + ``partial`` + the driver's own sums, all
    from one read of the block; returning ``None`` (an assign step it does not know) falls
    back to the generic path. The result must equal the generic path's up to summation
    rounding. ``memory`` (a :class:`~kmeans._types.RunMemory`: ``get`` and item assignment)
    lives for one Lloyd run: the step may keep per-block state in it under
    ``block.start``. Within a run every block has its own start, a block always has the
    same rows (check its row count), and the blocks of one pass run concurrently but never
    share a key. Such state must stay correct for *any* next centers: the driver may
    relocate centers or pass other ones, and an engine may hand over a fresh dict at any
    pass (Spark ships it to each task).
    """

    name: str

    def plan(self, dataset: Dataset, k: int) -> Any:
        """Per-fit preparation (for example value ranges); its result is the first state."""
        ...

    def partial(self, block: Block, labels: IntArray, k: int, state: Any) -> Any:
        """The summary of one block's rows, given each row's cluster in ``labels``."""
        ...

    def merge(self, a: Any, b: Any) -> Any:
        """Two summaries combined into one; associative (engines merge in any tree shape)."""
        ...

    def finalize(self, summary: Any, old_centers: Float64Array, state: Any) -> Float64Array | Refine:
        """New ``(k, d)`` centers from the merged summary, or a :class:`Refine` for one more pass.

        Clusters of zero weight keep their row of ``old_centers``.
        """
        ...


class Refine:
    """Returned by :meth:`UpdateStep.finalize` to request another pass with ``state``."""

    __slots__ = ("state",)

    def __init__(self, state: Any) -> None:
        self.state = state


@runtime_checkable
class Initializer(Protocol):
    """Chooses the first ``k`` centers using only :class:`Dataset` primitives.

    Must be deterministic given ``seed``; should not depend on the block layout.

    Optional members:

    - ``n_init_auto``: the restarts ``n_init="auto"`` runs. Default 10; 1 for seedings
      that already spread the centers (k-means++, k-means||).
    - ``deterministic``: ``True`` when the result ignores ``seed`` (explicit centers), so
      restarts would be identical and run once. Default ``False``.
    - ``check(k, n_features)``: refuse a problem it cannot start (wrong shape) before any
      pass; ``n_features`` is ``None`` before the data is read. Default: no check.
    """

    name: str

    def init(self, dataset: Dataset, k: int, assign: AssignStep, seed: int) -> Float64Array:
        """The ``(k, d)`` float64 initial centers, using ``assign``'s metric where costs matter."""
        ...


@runtime_checkable
class Backend(Protocol):
    """An engine: turns user input into a :class:`Dataset`, runs fits and predictions.

    Optional members: ``check_fit(spec, sample_weight)``. When a backend has it,
    :meth:`KMeans.fit` calls it before :meth:`dataset`, so a backend that cannot honour some
    parameters (an adapter around another library) refuses them before any data is read.
    ``default_init``: the initializer name ``init="auto"`` means on this backend (default
    ``"k-means++"``; the Spark backends declare ``"k-means||"``). ``run_lloyd(dataset, centers,
    assign, update, **options)``: how the engine runs one Lloyd restart (:func:`kmeans.driver.lloyd`'s
    signature), for drivers that call Lloyd themselves (bisecting k-means, ``sweep``). Default:
    :func:`kmeans.driver.lloyd`. ``array_input`` (default ``False``): the backend reads in-memory
    input as an ``(n, d)`` numeric array, so :meth:`KMeans.fit` may hand it an exactly rescaled
    float copy of data at an extreme scale (the built-in backends declare ``True``); other
    backends' datasets are rescaled through ``Dataset.value_range``/``scaled`` (which
    :class:`~kmeans.dataset.BlockDataset` has).

    ``fit`` is usually :func:`kmeans.driver.fit`, which applies the compress rule, runs the
    restarts and labels every input row; an engine passes its own ``run`` to execute the
    Lloyd iterations where the data lives.
    """

    name: str

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> Dataset:
        """Validate ``X`` (and weights) and wrap them; raises before any expensive pass."""
        ...

    def fit(self, dataset: Dataset, spec: FitSpec) -> FitResult:
        """Run the whole fit (usually :func:`kmeans.driver.fit`) and return its result with labels."""
        ...

    def predict(self, X: Any, centers: Float64Array, assign: AssignStep, *, features: Any = None) -> Any:
        """Closest center of every row of engine-native input (an RDD, a DataFrame, ...)."""
        ...


#: Every optional protocol member and its default (``None``: the capability is absent).
OPTIONAL_MEMBERS: dict[str, Any] = {
    # Dataset
    "local_blocks": None,
    "distinct_rows": None,
    "take_sample": None,
    "labels": None,
    "inverse": None,
    "release": None,
    "in_one_task": None,
    "row_state": True,
    "zero_rows": None,
    "run_memory": None,
    "value_range": None,
    "scaled": None,
    # AssignStep
    "distances": None,
    "check_dataset": None,
    "canonical": None,
    "sparse": False,
    "range_safe": False,
    # UpdateStep
    "fused_partial": None,
    # Initializer
    "n_init_auto": 10,
    "deterministic": False,
    "check": None,
    # Backend
    "check_fit": None,
    "default_init": "k-means++",
    "run_lloyd": None,
    "array_input": False,
}


def optional(obj: object, member: str) -> Any:
    """``obj``'s optional protocol ``member``, or its declared default when ``obj`` has none.

    Raises ``KeyError`` for a name that is not declared in :data:`OPTIONAL_MEMBERS`, so a
    misspelt capability fails loudly instead of silently reading the default.
    """
    default = OPTIONAL_MEMBERS[member]
    return getattr(obj, member, default)
