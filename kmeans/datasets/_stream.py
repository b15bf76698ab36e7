"""The engine of file-backed datasets: blocks read on demand, one sequential read per pass.

A :class:`StreamDataset` cuts its rows into a fixed grid of blocks by global row index
(by default the ``numpy`` backend's own grid, :func:`kmeans.dataset.default_block_rows`),
reads them in row order for every ``map_reduce`` on a reader thread, runs ``fn`` on a
small thread pool and folds the partials left to right in block order. Same blocks and
same merge order as an in-memory fit: the same bits. In flight at any time: at most
``n_threads`` blocks being mapped plus ``prefetch`` read ahead, so memory is bounded by
the block size, not the file size.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import attrs
import numpy as np

from kmeans._blas import single_threaded_blas
from kmeans._scale import max_abs
from kmeans._types import Block, Deferred, Float64Array, IntArray
from kmeans.dataset import DatasetFacts, FactsMixin, compress_rows, default_block_rows, float_points, scaled_block
from kmeans.errors import ValidationError
from kmeans.init._sampling import first_distinct

T = TypeVar("T")

#: Default budget for ``compress()``: the distinct rows (and their weights) it may hold.
COMPRESS_MEMORY = 256 << 20

_DONE = object()


@functools.lru_cache(maxsize=4)
def _pool(n_threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="kmeans-files")


class _Prefetch:
    """Iterates ``source`` on a reader thread, at most ``depth`` items ahead of the consumer."""

    def __init__(self, source: Iterator[Block], depth: int) -> None:
        self._source = source
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kmeans-files-reader", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    break
                del item  # held by the queue (then the consumer) only
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> _Prefetch:
        self._thread.start()
        return self

    def __iter__(self) -> _Prefetch:
        return self

    def __next__(self) -> Block:
        # not a generator: a suspended generator frame would keep the last block alive
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)  # later calls stop too
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        block: Block = item
        return block

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a reader waiting on a full queue
                self._queue.get(timeout=0.05)
        self._thread.join()


@attrs.frozen
class Where:
    """Where a global row lives: ``source`` (a file) and the row's index in it."""

    source: str
    row: int


class StreamDataset(FactsMixin):
    """A :class:`~kmeans.protocols.Dataset` whose blocks are read from files on every pass.

    A subclass provides :meth:`_read_blocks` (the raw blocks of the grid, in row order),
    :meth:`where` (which file a row comes from, for error messages) and optionally
    :meth:`_check_unchanged`. Each block is validated the first time it is read (finite
    values); errors name the file and row. Data at any finite scale fit exactly:
    :meth:`value_range` (one pass, then remembered) and :meth:`scaled` (every block read
    times one power of two) let a fit rescale them as it rescales an array in memory.

    It declares ``row_state = False`` (no per-row distance bounds kept between Lloyd
    passes: memory stays bounded; results are the same) and has no ``local_blocks``
    (k-means++ then costs ``2k - 1`` passes: prefer ``init="k-means||"`` or ``"random"``).
    """

    row_state = False

    def __init__(
        self,
        facts: DatasetFacts,
        *,
        block_rows: int | None = None,
        n_threads: int | None = None,
        prefetch: int = 1,
        compress_memory: int = COMPRESS_MEMORY,
    ) -> None:
        from kmeans.backends.numpy import default_threads

        block_rows = default_block_rows(facts.n_rows) if block_rows is None else block_rows
        n_threads = default_threads() if n_threads is None else n_threads
        if block_rows < 1:
            raise ValidationError(f"block_rows must be >= 1, got {block_rows}")
        self.facts = facts
        self.block_rows = int(block_rows)
        self.n_threads = max(1, int(n_threads))
        self.prefetch = max(1, int(prefetch))
        self.compress_memory = int(compress_memory)
        self._validated: set[int] = set()
        self._lock = threading.Lock()
        #: ``(data_exp, weight_exp)``: blocks are read times ``2**data_exp``, weights ``2**weight_exp``.
        self._scale = (0, 0)
        #: The file's largest ``|x|`` and weight (unscaled), once a pass found them; shared with scaled views.
        self._range: list[tuple[float, float]] = []

    # -- what a subclass provides ------------------------------------------------------

    def _read_blocks(self) -> Iterator[Block]:
        """The blocks ``[s, s + block_rows)`` of the grid, in row order, read from the files."""
        raise NotImplementedError

    def where(self, row: int) -> Where:
        """The file and in-file row index of global row ``row``."""
        raise NotImplementedError

    def _check_unchanged(self) -> None:
        """Raise if a file changed since the dataset was opened (called before every pass)."""

    def _known_range(self) -> tuple[float, float] | None:
        """:meth:`value_range` of the unscaled rows known without a pass (file statistics), or ``None``."""
        return None

    # -- the grid ----------------------------------------------------------------------

    def block_bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every block: a grid fixed by ``n_rows`` and ``block_rows`` alone."""
        n, b = self.n_rows, self.block_rows
        return [(s, min(n, s + b)) for s in range(0, n, b)]

    def blocks(self) -> Generator[Block, None, None]:
        """Every block in row order (times this view's scale), each validated the first time it is read."""
        data_exp, weight_exp = self._scale
        for block in self._raw_blocks():
            yield scaled_block(block, data_exp, weight_exp)
            del block

    def _raw_blocks(self) -> Generator[Block, None, None]:
        """Every block in row order as the files hold it, each validated the first time it is read."""
        self._check_unchanged()
        for block in self._read_blocks():
            with self._lock:
                seen = block.start in self._validated
            if not seen:
                self._validate(block)
                with self._lock:
                    self._validated.add(block.start)
            yield block
            del block

    def _validate(self, block: Block) -> None:
        pts = block.points
        if pts.dtype.kind != "f" or pts.size == 0 or np.isfinite(max_abs(pts)):
            return
        i, j = (int(v) for v in np.argwhere(~np.isfinite(pts))[0])
        at = self.where(block.start + i)
        kind = "NaN" if np.isnan(pts[i, j]) else "infinite"
        raise ValidationError(
            f"{at.source}: row {at.row}, {self._column(j)} is {kind}; remove or impute such rows before clustering"
        )

    # -- exact rescaling (kmeans._scale) -----------------------------------------------

    def value_range(self) -> tuple[float, float]:
        """The optional ``Dataset.value_range``: largest ``|x|`` and weight of the rows as this view reads them.

        One pass over the files (validating every block on the way, so the fit's first pass
        does not) unless the files' statistics tell (Parquet's row-group minima and maxima),
        made once per opened dataset; a fit then knows whether its squared distances or
        weighted sums would overflow or underflow.
        """
        if not self._range:

            def fn(block: Block) -> tuple[float, float]:
                wmax = float(np.max(block.weights)) if block.n_rows else 0.0
                return max_abs(block.points), wmax

            def merge(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
                return max(a[0], b[0]), max(a[1], b[1])

            found = self._known_range() or self._fold(self._raw_blocks(), fn, merge)
            with self._lock:
                self._range[:] = [found]
        big, wmax = self._range[0]
        return float(np.ldexp(big, self._scale[0])), float(np.ldexp(wmax, self._scale[1]))

    def scaled(self, data_exp: int, weight_exp: int) -> StreamDataset:
        """The optional ``Dataset.scaled``: the same files, every block read with rows times ``2**data_exp``
        and weights times ``2**weight_exp`` (exact copies of each block, see :mod:`kmeans._scale`).

        A view of this dataset's own class; validation and the range are shared with it.
        """
        view = copy.copy(self)
        d0, w0 = self._scale
        view._scale = (d0 + data_exp, w0 + weight_exp)
        view.facts = attrs.evolve(
            self.facts,
            total_weight=float(np.ldexp(self.facts.total_weight, weight_exp)),
            integer_valued=self.facts.integer_valued and data_exp == 0,
        )
        return view

    def _column(self, j: int) -> str:
        return f"column {j}"

    # -- the Dataset protocol ----------------------------------------------------------

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        """``fn`` over every block (read ahead on a thread, mapped on ``n_threads``), folded in block order."""
        return self._fold(self.blocks(), fn, merge)

    def _fold(self, source: Iterator[Block], fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        """:meth:`map_reduce` over the blocks of ``source``."""
        acc: list[T] = []

        def fold(part: T) -> None:
            if acc:
                acc[0] = merge(acc[0], part)
            else:
                acc.append(part)

        with _Prefetch(source, self.prefetch) as blocks:
            if self.n_threads == 1:
                for block in blocks:
                    fold(fn(block))
            else:
                pending: deque[Future[T]] = deque()
                try:
                    with single_threaded_blas():
                        for block in blocks:
                            pending.append(_pool(self.n_threads).submit(fn, block))
                            del block  # the pool holds it while it runs, no longer
                            if len(pending) >= self.n_threads:
                                fold(pending.popleft().result())
                        while pending:
                            fold(pending.popleft().result())
                finally:  # never return (or raise) while blocks are still mapped
                    wait(pending)
        if not acc:
            raise ValidationError("the dataset has no rows")
        return acc[0]

    def distinct_rows(self, limit: int) -> Float64Array:
        """Up to ``limit`` distinct rows of positive weight, reading blocks only until they are found."""
        found = np.empty((0, self.n_features))
        blocks = self.blocks()
        try:
            for block in blocks:
                pts = np.asarray(block.points[np.asarray(block.weights) > 0], dtype=np.float64)
                both = np.concatenate([found, pts])
                found = both[first_distinct(both, limit)]
                if found.shape[0] >= limit:
                    break
        finally:
            blocks.close()
        return found

    def labels(self, centers: Float64Array, assign: Any) -> Deferred[IntArray]:
        """The closest center of every row, as an int32 array made on first use (one pass, ``4 n`` bytes)."""
        from kmeans.driver import labels as fill

        return Deferred(functools.partial(_fill_labels, fill, self, centers, assign))

    def compress(self) -> Any:
        """Identical rows folded into one weighted row, in memory: a ``numpy``-backend dataset.

        One streamed pass. The distinct rows come out in ascending lexicographic order and
        each weight is summed in row order (as :func:`~kmeans.dataset.compress_rows` does
        in memory), so a fit on the result equals the in-memory fit. The distinct rows must
        fit in ``compress_memory`` bytes; beyond it this raises a :class:`ValidationError`
        (fit with ``compress=False``). There is no ``inverse``: labels come from one more
        pass over the files.
        """
        from kmeans.backends.numpy import NumPyDataset

        rows: np.ndarray[Any, Any] | None = None
        weights = np.zeros(0)
        for block in self.blocks():
            src = block.points.astype(np.int64) if self.integer_valued else block.points
            uniq, _, inv = compress_rows(src, None)
            if rows is None:
                rows, weights = uniq, np.zeros(uniq.shape[0])
            else:
                both, _, both_inv = compress_rows(np.concatenate([rows, uniq]), None)
                grown = np.zeros(both.shape[0])
                grown[both_inv[: rows.shape[0]]] = weights
                rows, weights, inv = both, grown, both_inv[rows.shape[0] :][inv]
            if block.weights.strides == (0,):  # unit weights: counts, exact in any order
                weights += np.bincount(inv, minlength=rows.shape[0])
            else:  # one sum per distinct row, in row order: the bits of np.bincount over all rows
                np.add.at(weights, inv, np.asarray(block.weights, dtype=np.float64))
            held = rows.shape[0] * (self.n_features * 8 + 8)
            if held > self.compress_memory:
                raise ValidationError(
                    f"compress: more than {rows.shape[0]} distinct rows ({held >> 20} MiB) after "
                    f"{block.start + block.n_rows} of {self.n_rows} rows, above compress_memory="
                    f"{self.compress_memory} bytes; fit with compress=False, or open the dataset with a "
                    "larger compress_memory"
                )
        assert rows is not None
        points = float_points(rows.astype(np.float64) if self.integer_valued else rows)
        return NumPyDataset(
            points, weights, integer_valued=self.integer_valued, distinct=True, n_threads=self.n_threads
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_rows={self.n_rows}, n_features={self.n_features}, dtype={self.dtype}, "
            f"block_rows={self.block_rows})"
        )


def _fill_labels(fill: Callable[..., Any], dataset: StreamDataset, centers: Float64Array, assign: Any) -> IntArray:
    # driver.labels' own fallback (a map_reduce filling an int32 array), bypassing this
    # dataset's ``labels`` member that would only defer again
    return fill(_Plain(dataset), centers, assign)  # type: ignore[no-any-return]


class _Plain:
    """``dataset`` seen without its optional ``labels`` member."""

    def __init__(self, dataset: StreamDataset) -> None:
        self._dataset = dataset
        self.n_rows = dataset.n_rows

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        return self._dataset.map_reduce(fn, merge)
