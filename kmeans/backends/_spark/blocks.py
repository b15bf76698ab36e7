"""Validated, cached blocks of rows on Spark: RDD rows and ndarrays in, :class:`SparkBlocks` out."""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._scale import max_abs
from kmeans._types import Block, Float64Array, FloatArray
from kmeans._validation import check_points, check_weights
from kmeans.backends._spark.store import BlockStore, store_for
from kmeans.dataset import scaled_block, unit_weights
from kmeans.errors import ValidationError
from kmeans.sparse import SparseRows, is_sparse

#: Rows per block when an RDD or DataFrame partition is converted (bounds worker memory).
BLOCK_ROWS = 1 << 17


@attrs.frozen
class ParseError:
    """Put in place of a block when a partition cannot be converted (reported on the driver)."""

    message: str


#: The stats one partition reports after conversion: (rows, features, dtype, integer, nonfinite,
#: first bad row, bad weights, total weight, first error, largest finite |x|, largest weight, sparse).
_PartStats = tuple[int, int, str, bool, int, int, str, float, str, float, float, bool]


def as_points(arr: NDArray[Any]) -> tuple[FloatArray, bool]:
    """``(float points, integer_valued)``: integers and booleans become float64."""
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr, False
    return arr.astype(np.float64), True


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_sparse_vector(row: Any) -> bool:
    """Whether ``row`` is a ``pyspark.ml.linalg`` or ``pyspark.mllib.linalg`` ``SparseVector`` (no pyspark import).

    By type name: ``hasattr`` on a ``DenseVector`` goes through its slow ``__getattr__``.
    """
    return type(row).__name__ == "SparseVector"


def vectors_to_sparse(rows: Sequence[Any]) -> SparseRows:
    """ML vectors (any sparse, the rest dense) as canonical float64 CSR rows, never an ``(n, d)`` dense array.

    Raises ``ValueError`` (the dense path's message) when the vectors' sizes differ.
    """
    sizes = {int(r.size) for r in rows}
    if len(sizes) > 1:
        raise ValueError(
            f"rows have different lengths ({sorted(sizes)[:5]}); every row needs the same number of features"
        )
    parts_i, parts_v, counts = [], [], np.zeros(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        if is_sparse_vector(r):
            idx, vals = np.asarray(r.indices, dtype=np.int64), np.asarray(r.values, dtype=np.float64)
        else:
            vals = np.asarray(r.toArray(), dtype=np.float64)
            idx = np.flatnonzero(vals)
            vals = vals[idx]
        parts_i.append(idx)
        parts_v.append(vals)
        counts[i] = idx.size
    from scipy import sparse

    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    data = np.concatenate(parts_v) if parts_v else np.empty(0)
    indices = np.concatenate(parts_i) if parts_i else np.empty(0, dtype=np.int64)
    return SparseRows.from_scipy(sparse.csr_matrix((data, indices, indptr), shape=(len(rows), sizes.pop())))


def rows_to_array(rows: Sequence[Any]) -> NDArray[Any] | SparseRows:
    """Stack RDD elements (rows as lists/tuples/1-D arrays/ML vectors, or 2-D array blocks) into ``(n, d)``.

    Rows that are ML vectors, at least one of them a ``SparseVector``, become :class:`SparseRows`
    (CSR, float64): a block with any sparse row stays sparse. Raises ``ValueError`` with a
    user-facing message for scalars, ragged or non-numeric rows.
    """
    first = rows[0]
    try:
        if hasattr(first, "toArray"):  # pyspark.ml.linalg / pyspark.mllib.linalg vectors
            if any(t.__name__ == "SparseVector" for t in {type(r) for r in rows}):
                return vectors_to_sparse(rows)
            arr = np.stack([np.asarray(r.toArray()) for r in rows])
        elif isinstance(first, np.ndarray) and first.ndim == 2:
            arr = np.concatenate(rows)
        else:
            arr = np.asarray(rows)
    except (ValueError, TypeError, AttributeError) as exc:
        lengths = {len(r) for r in rows if hasattr(r, "__len__")}
        if len(lengths) > 1:
            raise ValueError(
                f"rows have different lengths ({sorted(lengths)[:5]}); every row needs the same number of features"
            ) from exc
        raise ValueError(f"rows could not be read as numbers ({exc}); first row {_describe(first)}") from exc
    if arr.dtype.kind not in "biuf":
        bad = next(
            (
                v
                for r in rows
                for v in (r if hasattr(r, "__iter__") else [r])
                if not isinstance(v, (int, float, np.number))
            ),
            first,
        )
        raise ValueError(f"rows contain non-numeric values such as {_describe(bad)}; K-means needs real numbers")
    if arr.ndim != 2:
        raise ValueError(
            f"elements are not rows (first element {_describe(first)}); each RDD element must be a row: "
            "a list, tuple, 1-D ndarray or pyspark.ml Vector (use rdd.map(lambda x: [x]) for one feature)"
        )
    return arr


def _parse_partition(block_rows: int) -> Any:
    """Executor-side: an RDD partition of rows -> ``(points, None, local_start)`` tuples."""

    def parse(index: int, iterator: Iterable[Any]) -> Iterator[Any]:
        it = iter(iterator)
        start = 0
        failed = False
        while True:
            rows = list(itertools.islice(it, block_rows))
            if not rows:
                return
            if failed:
                continue  # consume the whole iterator (a partly read one costs a new Python worker)
            try:
                arr = rows_to_array(rows)
            except ValueError as exc:
                failed = True
                yield ParseError(f"partition {index}, rows {start}..{start + len(rows) - 1}: {exc}")
                continue
            points, integer = (arr, False) if isinstance(arr, SparseRows) else as_points(arr)
            yield (points, None, start, integer)
            start += points.shape[0]

    return parse


def partition_stats(index: int, iterator: Iterable[Any]) -> Iterator[_PartStats]:
    """Executor-side: validate one converted partition and summarize it for the driver."""
    n, d, dtype, integer, nonfinite, first_bad, bad_w, total_w, error = 0, -1, "", True, 0, -1, "", 0.0, ""
    big, wmax, sparse = 0.0, 0.0, False
    for item in iterator:
        if error:
            continue
        if isinstance(item, ParseError):
            error = item.message
            continue
        points, weights, _, block_integer = item
        if d == -1:
            d, dtype = points.shape[1], str(points.dtype)
        elif points.shape[1] != d:
            error = f"partition {index}: rows have {d} and {points.shape[1]} features"
            continue
        if str(points.dtype) != dtype:
            dtype = "float64"
        integer = integer and bool(block_integer)
        sparse = sparse or is_sparse(points)
        finite = finite_rows(points)
        if not finite.all():
            nonfinite += int((~finite).sum())
            if first_bad < 0:
                first_bad = n + int(np.flatnonzero(~finite)[0])
        else:
            values = points.data if is_sparse(points) else points
            if values.size:
                big = max(big, max_abs(values))
        if weights is None:
            wmax = max(wmax, 1.0) if points.shape[0] else wmax
            total_w += points.shape[0]
        else:
            if not bad_w:
                if np.isnan(weights).any() or np.isinf(weights).any():
                    bad_w = "NaN or infinite"
                elif (weights < 0).any():
                    bad_w = "negative"
            total_w += float(np.sum(weights))
            if weights.size and not bad_w:
                wmax = max(wmax, float(np.max(weights)))
        n += points.shape[0]
    yield (n, d, dtype, integer, nonfinite, first_bad, bad_w, total_w, error, big, wmax, sparse)


def finite_rows(points: Any) -> NDArray[np.bool_]:
    """``(n,)``: which rows (dense or :class:`SparseRows`) hold only finite values."""
    if not is_sparse(points):
        out: NDArray[np.bool_] = np.isfinite(points).all(axis=1)
        return out
    finite = np.ones(points.shape[0], dtype=bool)
    bad = np.flatnonzero(~np.isfinite(points.data[points.indptr[0] : points.indptr[-1]])) + points.indptr[0]
    finite[np.searchsorted(points.indptr, bad, side="right") - 1] = False
    return finite


@attrs.frozen(eq=False)
class SparkBlocks:
    """Validated data in Spark: a cached RDD of row blocks with global offsets.

    ``cached`` holds ``(points, weights or None, local_start, integer)`` tuples (the stored form);
    ``offsets[p]`` is the global index of partition ``p``'s first row. :attr:`blocks` is the
    lazy view as :class:`Block` objects with global starts, ``points`` in ``dtype``, times
    ``2**scale[0]`` (weights times ``2**scale[1]``; exact, see :mod:`kmeans._scale`).
    """

    cached: Any
    offsets: tuple[int, ...]
    n_rows: int
    n_features: int
    dtype: np.dtype[Any]
    integer_valued: bool
    total_weight: float
    #: Broadcasts the partitions are read from (array input); released with this object.
    sources: tuple[Any, ...] = ()
    #: Copies of the cached partitions on the executors' disk (:mod:`.store`), if any.
    store: BlockStore | None = None
    #: Largest finite magnitude and largest weight, from the validation pass (unscaled).
    max_abs: float = 0.0
    max_weight: float = 1.0
    #: ``(data_exp, weight_exp)``: the view's exact power-of-two scale of rows and weights.
    scale: tuple[int, int] = (0, 0)
    #: For a scaled view (:meth:`scaled`): the blocks it views, kept alive; they own cache and store.
    view_of: SparkBlocks | None = None
    #: Whether some blocks hold :class:`~kmeans.sparse.SparseRows` (``SparseVector`` rows).
    sparse: bool = False

    def __attrs_post_init__(self) -> None:
        if self.view_of is not None:
            return
        if self.sources:
            weakref.finalize(self, _destroy_all, self.sources)
        if self.store is not None:
            weakref.finalize(self, self.store.remove)

    @property
    def num_partitions(self) -> int:
        return len(self.offsets)

    @property
    def blocks(self) -> Any:
        """RDD of :class:`Block` with global row offsets (recomputed from the source if unpersisted)."""
        view = to_block_view(self.offsets, self.dtype.str, self.scale)
        return self.cached.mapPartitionsWithIndex(view, preservesPartitioning=True)

    def persist(self) -> None:
        if not self.cached.is_cached:
            self.cached.cache()

    def scaled(self, data_exp: int, weight_exp: int) -> SparkBlocks:
        """The same cached rows viewed times ``2**data_exp`` (weights ``2**weight_exp``); shares cache and store.

        Scaled rows are no longer known to be integers (compression then keys them as floats).
        """
        d0, w0 = self.scale
        return attrs.evolve(
            self,
            scale=(d0 + data_exp, w0 + weight_exp),
            integer_valued=self.integer_valued and data_exp == 0,
            total_weight=float(np.ldexp(self.total_weight, weight_exp)),
            view_of=self if self.view_of is None else self.view_of,
        )

    def unpersist(self) -> None:
        """Drop the cache (and the executors' copies of the source broadcasts: the driver
        keeps them, so a later pass can recompute); a no-op once the SparkContext is stopped."""
        if getattr(self.cached.context, "_jsc", None) is None:
            return
        if self.view_of is not None:  # the viewed blocks own the cache and the store
            return
        if self.cached.is_cached:
            self.cached.unpersist(blocking=False)
        for source in self.sources:
            source.unpersist(blocking=False)
        if self.store is not None:
            self.store.remove()


def _destroy_all(broadcasts: tuple[Any, ...]) -> None:
    for b in broadcasts:
        with contextlib.suppress(Exception):  # the context may be gone at interpreter exit
            b.destroy(blocking=False)


def broadcast_slices(
    sc: Any, points: NDArray[Any], weights: Float64Array | None, parts: int
) -> tuple[tuple[int, ...], tuple[Any, ...]]:
    """``points`` (and ``weights``) cut into ``parts`` contiguous slices, one broadcast each.

    Returns the slices' first row indices and the broadcasts of ``(points, weights or None)``.
    Why not ``sc.parallelize``: a parallelized collection keeps its data inside the
    partition objects, which are serialized into *every task* over the RDD, cached or
    not, so every later job re-ships the whole array from the driver (measured: part of
    a ~0.2 s per-iteration cost, and with MLlib's many jobs the driver's heap ran out).
    Tasks reading broadcasts carry only their ids; a Python worker fetches each broadcast
    once, and a lost partition is recomputed from it.
    """
    bounds = np.linspace(0, points.shape[0], parts + 1).astype(np.int64).tolist()
    handles = tuple(
        sc.broadcast(
            (np.ascontiguousarray(points[s:e]), None if weights is None else np.ascontiguousarray(weights[s:e]))
        )
        for s, e in itertools.pairwise(bounds)
    )
    return tuple(bounds[:-1]), handles


def _read_slices(handles: tuple[Any, ...], integer: bool) -> Any:
    """Partition ``p`` of ``range(parts)`` -> slice ``p`` in the stored block form."""

    def run(iterator: Iterable[int]) -> Iterator[Any]:
        for p in iterator:
            points, weights = handles[p].value
            yield points, weights, 0, integer

    return run


def to_block_view(offsets: tuple[int, ...], dtype: str, scale: tuple[int, int] = (0, 0)) -> Any:
    """Executor-side: a partition in the stored form -> :class:`Block` objects with global offsets.

    ``scale``: rows times ``2**scale[0]`` and weights times ``2**scale[1]`` (exact).
    """
    data_exp, weight_exp = scale

    def convert(index: int, iterator: Iterable[Any]) -> Iterator[Block]:
        for points, weights, start, _ in iterator:
            w = unit_weights(points.shape[0]) if weights is None else weights
            if is_sparse(points):  # CSR rows: scale the stored values (exact), never densify
                data = points.data.astype(dtype, copy=False)
                data = np.ldexp(data, data_exp).astype(dtype, copy=False) if data_exp else data
                sparse = SparseRows(data, points.indices, points.indptr, points.shape)
                yield scaled_block(Block(sparse, w, offsets[index] + start), 0, weight_exp)  # type: ignore[arg-type]
                continue
            pts = points if points.dtype.str == dtype else points.astype(dtype)
            yield scaled_block(Block(pts, w, offsets[index] + start), data_exp, weight_exp)

    return convert


def _stored(store: BlockStore | None, stats: bool) -> Any:
    """Executor-side: write a cached partition to ``store``; yield its statistics (``stats``) or its row count."""

    def summary(index: int, items: Iterable[Any]) -> Any:
        return next(partition_stats(index, items)) if stats else sum(item[0].shape[0] for item in items)

    def run(index: int, iterator: Iterable[Any]) -> Iterator[Any]:
        if store is None:  # nothing to write: the partition streams through, never held whole
            yield summary(index, iterator)
            return
        items = list(iterator)
        out = summary(index, items)
        if not (stats and out[8]):
            store.write(index, items)
        yield out

    return run


def validated(parsed: Any, what: str, *, store: bool = True) -> SparkBlocks:
    """Cache ``parsed``, run the validation pass (it fills the cache and the store), build :class:`SparkBlocks`."""
    parsed.cache()
    files = store_for(parsed.context) if store else None
    try:
        stats: list[_PartStats] = parsed.mapPartitionsWithIndex(_stored(files, True)).collect()
        return check_stats(parsed, stats, what, files)
    except BaseException:
        parsed.unpersist(blocking=False)
        if files is not None:
            files.remove()
        raise


@attrs.frozen
class RowStats:
    """What one validation pass over distributed rows found, from either input path.

    ``widths``: the distinct row lengths seen (or the smallest and largest); ``first_nonfinite``:
    the global index of the first row with a NaN or infinity, if known; ``weight_problems``:
    ``(kind, rows or None)`` per kind of bad weight; ``total_weight`` of the positive weights.
    """

    n: int
    widths: tuple[int, ...]
    nonfinite: int = 0
    first_nonfinite: int | None = None
    nulls: int = 0
    weight_problems: tuple[tuple[str, int | None], ...] = ()
    total_weight: float = 1.0


def check_row_stats(stats: RowStats, what: str) -> None:
    """Raise the :class:`ValidationError` both Spark input paths give for bad rows (one set of messages)."""
    if stats.n == 0:
        raise ValidationError(f"{what} is empty: it has 0 rows; K-means needs at least one row")
    if stats.nulls:
        raise ValidationError(
            f"{what} has null feature values in {stats.nulls} of {stats.n} rows; drop or impute them first"
        )
    widths = sorted(set(stats.widths))
    if len(widths) > 1:
        raise ValidationError(
            f"{what} has rows of different lengths ({widths[0]} to {widths[-1]}); "
            "every row needs the same number of features"
        )
    if widths[0] == 0:
        raise ValidationError(f"{what} has 0 features; K-means needs at least one column")
    if stats.nonfinite:
        first = "" if stats.first_nonfinite is None else f" (first at row {stats.first_nonfinite})"
        raise ValidationError(
            f"{what} contains NaN or infinite values in {stats.nonfinite} of {stats.n} rows{first}; "
            "remove or impute them before clustering"
        )
    for kind, rows in stats.weight_problems:
        where = "" if rows is None else f" in {rows} rows"
        raise ValidationError(
            f"the sample weights of {what} contain {kind} values{where}; weights must be finite and >= 0"
        )
    if stats.total_weight <= 0:
        raise ValidationError(
            f"the sample weights of {what} are zero for every row; at least one row needs a positive weight"
        )


def check_stats(parsed: Any, stats: list[_PartStats], what: str, store: BlockStore | None = None) -> SparkBlocks:
    errors = [s[8] for s in stats if s[8]]
    if errors:
        raise ValidationError(f"{what}: {errors[0]}")
    n = sum(s[0] for s in stats)
    nonfinite = sum(s[4] for s in stats)
    first: int | None = None
    if nonfinite:
        offsets = np.cumsum([0] + [s[0] for s in stats])
        first = min(int(offsets[p]) + s[5] for p, s in enumerate(stats) if s[4])
    bad_w = next((s[6] for s in stats if s[6]), "")
    total_w = sum(s[7] for s in stats)
    widths = tuple(s[1] for s in stats if s[0] > 0)
    check_row_stats(RowStats(n, widths, nonfinite, first, 0, ((bad_w, None),) if bad_w else (), float(total_w)), what)
    d = widths[0]
    dtypes = {s[2] for s in stats if s[0] > 0}
    dtype = np.dtype("float32") if dtypes == {"float32"} else np.dtype("float64")
    offsets_t = tuple(int(o) for o in np.cumsum([0] + [s[0] for s in stats])[:-1])
    integer = all(s[3] for s in stats if s[0] > 0)
    big, wmax = max(s[9] for s in stats), max(s[10] for s in stats)
    sparse = any(s[11] for s in stats)
    return SparkBlocks(
        parsed,
        offsets_t,
        n,
        d,
        dtype,
        integer and not sparse,
        float(total_w),
        store=store,
        max_abs=big,
        max_weight=wmax,
        sparse=sparse,
    )


#: Default rows per partition for array input. Each partition costs every Lloyd pass a task
#: (about 30 ms here, SPARK_NOTES) while a million 3-feature rows take about as long to
#: assign, so smaller arrays run faster in fewer partitions (raccoon, k=10, 50 iterations,
#: busy machine: 6.1 s in 1 partition vs 9.5 s in 2).
ROWS_PER_PARTITION = 1_000_000


def blocks_from_array(
    sc: Any, X: Any, sample_weight: Any = None, *, num_partitions: int | None = None, store: bool = True
) -> SparkBlocks:
    """Validate an array on the driver and parallelize it as ``num_partitions`` contiguous blocks.

    ``num_partitions=None`` uses one partition per :data:`ROWS_PER_PARTITION` rows, at most
    ``sc.defaultParallelism``; never more partitions than rows.
    """
    arr = check_points(X)
    weights = check_weights(sample_weight, arr.shape[0])
    points, integer = as_points(arr)
    n = points.shape[0]
    if num_partitions is not None and (isinstance(num_partitions, bool) or int(num_partitions) < 1):
        raise ValidationError(f"num_partitions must be a positive integer, got {num_partitions!r}")
    default = min(int(sc.defaultParallelism), -(-n // ROWS_PER_PARTITION))
    parts = max(1, min(n, int(num_partitions or default)))
    offsets, sources = broadcast_slices(sc, points, weights, parts)
    rdd = sc.parallelize(range(parts), parts).mapPartitions(_read_slices(sources, integer))
    files = store_for(sc) if store else None
    rdd.cache().mapPartitionsWithIndex(_stored(files, False)).count()  # materialize the cache (and the store)
    total = float(n) if weights is None else float(weights.sum())
    big = max_abs(points)
    wmax = 1.0 if weights is None else float(weights.max()) if weights.size else 0.0
    return SparkBlocks(rdd, offsets, n, points.shape[1], points.dtype, integer, total, sources, files, big, wmax)


def blocks_from_rdd(
    rdd: Any, sample_weight: Any = None, *, block_rows: int = BLOCK_ROWS, store: bool = True
) -> SparkBlocks:
    """Convert an RDD of rows (lists, tuples, 1-D arrays, ML vectors) or of 2-D array blocks."""
    if sample_weight is not None:
        raise ValidationError(
            "sample_weight is not supported with an RDD input (its order cannot be matched to the rows); "
            "pass a DataFrame with a weight column (sample_weight='column') or an ndarray"
        )
    if rdd.getNumPartitions() == 0:
        raise ValidationError("the RDD is empty: it has 0 partitions and 0 rows; K-means needs at least one row")
    parsed = rdd.mapPartitionsWithIndex(_parse_partition(block_rows))
    return validated(parsed, "the RDD", store=store)
