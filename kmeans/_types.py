"""Small value types passed between the strategies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.floating[Any]]
Float64Array = NDArray[np.float64]
IntArray = NDArray[np.intp]

T = TypeVar("T")


class RunMemory(Protocol):
    """Per-block scratch of one Lloyd run (block start -> state): a ``dict`` in process, files on Spark."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def __setitem__(self, key: Any, value: Any) -> None: ...


@attrs.frozen(eq=False)
class Block:
    """A chunk of rows, the unit every strategy works on.

    ``points`` is ``(n, d)`` float32 or float64; ``weights`` is ``(n,)`` float64 and may be
    a read-only broadcast view (unit weights cost no memory); ``start`` is the global
    index of the block's first row, so that row ``i`` of the block is row ``start + i``
    of the dataset. Randomness keyed on global row indices is what makes seeded
    results independent of how rows are split into blocks.
    """

    points: FloatArray
    weights: Float64Array
    start: int = 0

    @property
    def n_rows(self) -> int:
        return int(self.points.shape[0])

    def row_indices(self) -> NDArray[np.int64]:
        """Global indices of this block's rows."""
        return np.arange(self.start, self.start + self.n_rows, dtype=np.int64)


@attrs.frozen
class IterationRecord:
    """What one Lloyd iteration did; passed to callbacks and kept in ``history_``.

    ``inertia`` is the cost of the centers the iteration *started* from (with each row
    assigned to its closest center); ``center_shift`` is the largest distance a center
    moved in the update, in the units of the data; ``elapsed`` is seconds since the
    fit started; ``n_empty`` counts clusters that were empty and got relocated.
    """

    iteration: int
    inertia: float
    center_shift: float
    elapsed: float
    n_empty: int = 0
    restart: int = 0


Callback = Callable[[IterationRecord], None]


@attrs.frozen(eq=False)
class LloydResult:
    """The outcome of one Lloyd run (one restart)."""

    centers: Float64Array
    inertia: float
    n_iter: int
    cluster_weights: Float64Array
    history: tuple[IterationRecord, ...]
    converged: bool
    seed: int


class Deferred(Generic[T]):
    """A value computed on first use: ``get()`` calls ``fn`` once and keeps the result.

    A backend returns a fitted attribute this way when even making it costs a Spark job
    or query plan, so that a fit whose attribute is never read does not pay for it:
    labels (planning the query behind an RDD of labels takes 0.2-0.5 s) and, on
    ``spark-ml`` with DataFrame input, the inertia and cluster sizes of the final
    centers (one pass over the data, as MLlib's own ``summary`` is computed lazily).
    """

    __slots__ = ("_fn", "_value")

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn: Callable[[], T] | None = fn
        self._value: T | None = None

    def get(self) -> T:
        if self._fn is not None:
            self._value, self._fn = self._fn(), None
        return self._value  # type: ignore[return-value]  # set on the first call


@attrs.frozen(eq=False)
class FitResult:
    """What a backend's fit returns to the estimator.

    ``labels`` is backend-native: an ndarray for in-memory input, possibly a lazy
    object (an RDD) for distributed input, or a :class:`Deferred` that makes either on
    first use; ``None`` means "compute on demand". ``inertia`` and ``cluster_weights``
    may also be :class:`Deferred` (the estimator resolves them on first read).
    """

    centers: Float64Array
    inertia: float | Deferred[float]
    n_iter: int
    cluster_weights: Float64Array | Deferred[Float64Array]
    history: tuple[IterationRecord, ...]
    converged: bool
    seed: int
    labels: Any = None
    restarts: Sequence[float] = ()
    #: What an algorithm other than Lloyd's keeps to resume (mini-batch: its ``MiniBatchState``).
    state: Any = None


@attrs.frozen(eq=False)
class FitSpec:
    """Everything a backend needs to run a fit, already validated and resolved.

    ``initializer`` and ``distance`` are strategy objects (never names); ``seed`` is a
    concrete integer (``seed=None`` was replaced by fresh entropy before this point).
    ``algorithm`` is ``None`` for Lloyd's iterations (restarts of the backend's ``run``), or an
    object whose ``fit(dataset, spec)`` runs the whole fit instead (:class:`kmeans.minibatch.MiniBatch`).
    """

    n_clusters: int
    initializer: Any
    distance: Any
    max_iter: int
    tol: float
    n_init: int
    seed: int
    callbacks: tuple[Callback, ...] = ()
    compress: bool | str = "auto"
    empty_cluster: str = "farthest"
    algorithm: Any = None
