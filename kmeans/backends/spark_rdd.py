"""The Spark RDD engine: the same strategy code as NumPy, on cached NumPy blocks in an RDD.

A :class:`SparkRDDDataset` is an RDD whose elements are :class:`~kmeans._types.Block`
objects (a few per partition, each with its global row offset). ``map_reduce(fn, merge)`` is
one Spark job: ``mapPartitions`` applies ``fn`` to every block of a partition and merges the
partials there, the driver collects one partial per partition and merges them in partition
order (a tree reduction above :data:`TREE_REDUCE_PARTITIONS` partitions). ``fn`` travels in
the task closure; when it is large (more than :data:`BROADCAST_BYTES` pickled) it is
broadcast once and the broadcast is destroyed as soon as the job ends. No per-row Python,
no shuffle of rows.

A dataset held in **one partition** (the default for arrays up to a million rows, and
what ``compress()`` of such data gives) runs all Lloyd iterations of a restart in one
Spark task: the task runs :func:`kmeans.driver.lloyd` over its blocks and returns the
result, so a fit costs one job per restart instead of one per iteration (a warm job costs
~0.1-0.2 s here, more than a whole iteration's work on a million pixels). It is the same
code on the same blocks in the same order, so the result is identical. Per-iteration
callbacks then run on the driver when the task returns (the history is the task's);
``SparkRDDBackend(one_task=False)`` keeps one job per iteration and live callbacks.
Initializers always run on the driver with their own jobs.

The blocks are cached while a fit runs and unpersisted when it ends (and when the dataset
is garbage collected). ``labels_`` of a fit is an ndarray for ndarray input and a *lazy*
RDD of ints for RDD and DataFrame input: one label per input row, in the input's
partitioning and order (``rdd.zip(labels)`` pairs them up); evaluating it re-reads the input.
"""

from __future__ import annotations

import functools
import pickle
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import driver
from kmeans._blas import single_threaded_blas
from kmeans._types import Block, Callback, FitResult, FitSpec, Float64Array, FloatArray, IntArray, LloydResult
from kmeans._validation import check_points
from kmeans.backends._spark import blocks, frames, inputs
from kmeans.backends._spark import session as spark_session
from kmeans.backends._spark.store import BlockStore
from kmeans.dataset import BlockDataset, DatasetFacts, FactsMixin, compress_rows
from kmeans.driver import lloyd
from kmeans.errors import ValidationError
from kmeans.protocols import AssignStep, optional

spark_session.require_pyspark()  # fail at registry lookup with the install hint, not deep inside a fit

T = TypeVar("T")

#: Functions whose pickled size exceeds this are broadcast instead of shipped with every task.
BROADCAST_BYTES = 1 << 18
#: Above this many partitions, partial results are merged in a tree on the executors.
TREE_REDUCE_PARTITIONS = 32
#: Rows each partition contributes to the sample that sets the range boundaries of ``compress``.
BOUNDARY_SAMPLE = 64


def _apply(payload: bytes | None, broadcast: Any) -> Callable[[Iterable[Block]], Iterator[Any]]:
    """Executor-side: ``fn`` over every block of a partition, merged in block order.

    Each task holds one core, so BLAS (the L2 kernel's tiles) runs on one thread in it.
    """

    def run(iterator: Iterable[Block]) -> Iterator[Any]:
        fn, merge = pickle.loads(broadcast.value if broadcast is not None else payload)  # type: ignore[arg-type]
        acc: Any = None
        seen = False
        with single_threaded_blas():
            for block in iterator:  # always consume the whole iterator
                part = fn(block)
                acc, seen = (merge(acc, part) if seen else part), True
        if seen:
            yield acc

    return run


class SparkRDDDataset(FactsMixin):
    """Validated data as an RDD of blocks; see the module docstring.

    ``source`` is ``"array"``, ``"rdd"`` or ``"dataframe"`` (what the rows came from), which
    decides the type of :meth:`labels`.
    """

    def __init__(self, data: blocks.SparkBlocks, *, source: str = "array", distinct: bool = False) -> None:
        self._data = data
        self.source = source
        self.facts = DatasetFacts(
            data.n_rows, data.n_features, data.total_weight, data.dtype, data.integer_valued, distinct
        )
        self._finalizer = weakref.finalize(self, data.unpersist)
        self._index_rdd: Any = None
        self._parent: SparkRDDDataset | None = None  # a scaled view keeps the dataset it views alive

    @property
    def sparse(self) -> bool:
        """Whether some blocks hold CSR rows (``SparseVector`` input): only ``l2`` and ``cosine`` read them."""
        return self._data.sparse

    @property
    def num_partitions(self) -> int:
        return self._data.num_partitions

    @property
    def blocks(self) -> Any:
        """The RDD of :class:`Block` objects (global row offsets)."""
        return self._data.blocks

    @property
    def context(self) -> Any:
        return self._data.cached.context

    def map_reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        from pyspark import cloudpickle

        self._data.persist()
        payload: bytes = cloudpickle.dumps((fn, merge))  # type: ignore[no-untyped-call]
        broadcast = self.context.broadcast(payload) if len(payload) > BROADCAST_BYTES else None
        try:
            task = _apply(None if broadcast else payload, broadcast)
            store = self._data.store
            if store is not None and self.num_partitions <= TREE_REDUCE_PARTITIONS:
                return self._map_reduce_stored(store, task, merge)
            parts = self._data.blocks.mapPartitions(task)
            if self.num_partitions > TREE_REDUCE_PARTITIONS:
                tree: T = parts.treeReduce(merge, depth=2)
                return tree
            result: T = functools.reduce(merge, parts.collect())
            return result
        finally:
            if broadcast is not None:
                broadcast.destroy()

    def _map_reduce_stored(self, store: BlockStore, task: Any, merge: Callable[[T, T], T]) -> T:
        """One job over the partition numbers, reading the store; partitions it lacks run from the cache.

        The partials are merged in partition order, as :meth:`map_reduce` merges them.
        """
        data = self._data
        view = blocks.to_block_view(data.offsets, data.dtype.str, data.scale)
        found: dict[int, list[Any]] = {}
        missed = []
        for p, status, partial in self._indices().mapPartitions(_from_store(store, view, task)).collect():
            if status == _MISSED:
                missed.append(p)
            else:
                found[p] = partial
        if missed:
            ends = (*data.offsets[1:], data.n_rows)
            counts = tuple(e - s for s, e in zip(data.offsets, ends, strict=True))
            refill = data.cached.mapPartitionsWithIndex(_refill(store, view, task, counts))
            for p, status, partial in self.context.runJob(refill, _identity_partition, missed):
                if status == _CHANGED:
                    raise ValidationError(
                        f"the input changed between passes: partition {p} had {counts[p]} rows, now "
                        f"{partial[0]}; cache the DataFrame or RDD (df.cache()) before fitting"
                    )
                found[p] = partial
        partials = [part for p in sorted(found) for part in found[p]]
        result: T = functools.reduce(merge, partials)
        return result

    def _indices(self) -> Any:
        """The partition numbers in one task per core (``defaultParallelism``), consecutive numbers together.

        A Python task costs about 45 ms here whatever it does (8 tasks: 0.4 s a job, 2: 0.13 s),
        so a pass over the store runs as few tasks as there are cores to run them.
        """
        if self._index_rdd is None:
            parts = self.num_partitions
            tasks = max(1, min(parts, int(self.context.defaultParallelism)))
            self._index_rdd = self.context.parallelize(range(parts), tasks)
        return self._index_rdd

    def value_range(self) -> tuple[float, float]:
        """The optional ``Dataset.value_range``: largest ``|x|`` and weight, from the validation pass."""
        scale_x, scale_w = self._data.scale
        return float(np.ldexp(self._data.max_abs, scale_x)), float(np.ldexp(self._data.max_weight, scale_w))

    def scaled(self, data_exp: int, weight_exp: int) -> SparkRDDDataset:
        """The optional ``Dataset.scaled``: the cached blocks read times ``2**data_exp``, weights ``2**weight_exp``."""
        view = SparkRDDDataset(self._data.scaled(data_exp, weight_exp), source=self.source, distinct=self.distinct)
        view._parent = self
        return view

    def run_memory(self) -> Any:
        """The optional ``Dataset.run_memory``: a Lloyd run's per-block scratch, in the store when there is one."""
        store = self._data.store
        return {} if store is None else store.memory()

    def lloyd_in_one_task(
        self,
        centers: Float64Array,
        assign: AssignStep,
        update: Any,
        *,
        callbacks: Sequence[Callback] = (),
        **options: Any,
    ) -> LloydResult:
        """:func:`kmeans.driver.lloyd` run inside the one task that holds the data (one partition only).

        ``options`` are :func:`~kmeans.driver.lloyd`'s keywords. The callbacks receive the
        task's iteration records on the driver once the task has returned.
        """
        if self.num_partitions != 1:
            raise ValueError(f"lloyd_in_one_task needs a single partition, not {self.num_partitions}")
        self._data.persist()
        task = _lloyd_task(np.asarray(centers, dtype=np.float64), assign, update, options, self.facts)
        (result,) = self._data.blocks.mapPartitions(task).collect()
        for record in result.history:
            for cb in callbacks:
                cb(record)
        out: LloydResult = result
        return out

    @property
    def in_one_task(self) -> Callable[[Callable[[BlockDataset], T]], T] | None:
        """The optional ``Dataset.in_one_task``: for a single partition, runs ``fn(blocks)`` in its task."""
        return self._run_in_one_task if self.num_partitions == 1 else None

    def _run_in_one_task(self, fn: Callable[[BlockDataset], T]) -> T:
        self._data.persist()
        (result,) = self._data.blocks.mapPartitions(_local_task(fn, self.facts)).collect()
        out: T = result
        return out

    def compress(self) -> SparkRDDDataset:
        """Identical rows folded across partitions, in ascending lexicographic order.

        Each partition folds its own rows (vectorized), a sample of them sets range
        boundaries, and one shuffle of per-partition arrays (a ``reduceByKey`` keyed by
        range) brings equal rows together; partition ``p`` then holds the ``p``-th range,
        so global row order is lexicographic, exactly as ``NumPyDataset.compress``.
        """
        if self.distinct:
            return self
        data = self._data
        if data.sparse:
            raise ValidationError("compress=True needs dense rows; fit sparse input with compress='auto' or False")
        integer = data.integer_valued
        local = data.blocks.mapPartitions(_fold_partition(integer)).cache()
        try:
            samples = local.map(_sample_rows).collect()
            bounds = _boundaries(samples, data.num_partitions)
            merged = (
                local.flatMap(_split_by_range(bounds))
                .partitionBy(bounds.shape[0] + 1, _identity)
                .mapPartitions(_merge_ranges(integer, data.dtype.str))
            )
            folded = blocks.validated(merged, "the compressed data", store=data.store is not None)
        finally:
            local.unpersist(blocking=False)
        return SparkRDDDataset(folded, source=self.source, distinct=True)

    # -- Spark-specific -----------------------------------------------------------------

    def take_sample(self, num: int, seed: int) -> Float64Array:
        """Spark's ``RDD.takeSample(False, num, seed)`` over the rows of positive weight.

        Uniform over rows (weights are ignored) and, as in Spark, the draw depends on the
        partitioning: the same seed on a differently partitioned RDD picks other rows.
        """
        rows = self.blocks.flatMap(_positive_rows)
        sample = rows.takeSample(False, num, seed % (1 << 31))
        if not sample:
            return np.empty((0, self.n_features))
        return np.asarray(np.stack(sample), dtype=np.float64)

    def labels(self, centers: Float64Array, assign: AssignStep) -> Any:
        """Closest center per row: an ndarray for array input, else a lazy RDD of ints in input order."""
        if self.source == "array":
            return self.labels_array(centers, assign)
        return self.blocks.mapPartitions(_block_labels(centers, assign))

    def labels_array(self, centers: Float64Array, assign: AssignStep) -> NDArray[np.int32]:
        """Closest center of every row, collected to the driver as an int32 ndarray (as the numpy backend)."""
        out = np.empty(self.n_rows, dtype=np.int32)
        for start, labels in self.blocks.map(_start_and_labels(centers, assign)).collect():
            out[start : start + labels.shape[0]] = labels
        return out

    @property
    def is_cached(self) -> bool:
        return bool(self._data.cached.is_cached)

    def unpersist(self) -> None:
        """Drop the cached blocks (a later pass recomputes and re-caches them)."""
        self._data.unpersist()

    def release(self) -> None:
        """The optional ``Dataset.release``: a fit that made this dataset (by ``compress``) is done with it."""
        self._data.unpersist()

    def __repr__(self) -> str:
        return (
            f"SparkRDDDataset(n_rows={self.n_rows}, n_features={self.n_features}, dtype={self.dtype}, "
            f"partitions={self.num_partitions}, distinct={self.distinct})"
        )


# -- executor-side helpers (module level, so they pickle by reference) ---------------------


def _lloyd_task(
    centers: Float64Array, assign: AssignStep, update: Any, options: dict[str, Any], facts: DatasetFacts
) -> Callable[[Iterable[Block]], Iterator[LloydResult]]:
    def run(iterator: Iterable[Block]) -> Iterator[LloydResult]:
        dataset = BlockDataset(list(iterator), facts)
        yield lloyd(dataset, centers, assign, update, **options)

    return run


def _local_task(fn: Callable[[BlockDataset], T], facts: DatasetFacts) -> Callable[[Iterable[Block]], Iterator[T]]:
    def run(iterator: Iterable[Block]) -> Iterator[T]:
        with single_threaded_blas():
            yield fn(BlockDataset(list(iterator), facts))

    return run


def _identity(key: int) -> int:
    return key


_FOUND, _MISSED, _CHANGED = 0, 1, 2


def _identity_partition(iterator: Iterable[Any]) -> Iterable[Any]:
    return iterator


def _run_stored(index: int, stored: list[Any], view: Any, task: Any) -> list[Any]:
    """``task`` (an :func:`_apply` function) over partition ``index`` given in its stored form."""
    return list(task(view(index, stored)))


_Partial = tuple[int, int, list[Any]]  # (partition, _FOUND or _MISSED, its partials)


def _from_store(store: BlockStore, view: Any, task: Any) -> Callable[[Iterable[int]], Iterator[_Partial]]:
    def run(iterator: Iterable[int]) -> Iterator[_Partial]:
        for index in iterator:
            stored = store.read(index)
            if stored is None:
                yield index, _MISSED, []
            else:
                yield index, _FOUND, _run_stored(index, stored, view, task)

    return run


def _refill(
    store: BlockStore, view: Any, task: Any, counts: tuple[int, ...]
) -> Callable[[int, Iterable[Any]], Iterator[_Partial]]:
    """Executor-side: a partition the store lacks, from the cached RDD; written to the store again."""

    def run(index: int, iterator: Iterable[Any]) -> Iterator[_Partial]:
        stored = list(iterator)
        rows = sum(item[0].shape[0] for item in stored)
        if rows != counts[index]:  # recomputed from an input that does not give the same rows twice
            yield index, _CHANGED, [rows]
            return
        store.write(index, stored)
        yield index, _FOUND, _run_stored(index, stored, view, task)

    return run


def _positive_rows(block: Block) -> list[FloatArray]:
    """The rows of positive weight, dense (sparse rows: only these are densified)."""
    return list(np.asarray(block.points[block.weights > 0]))


def _block_labels(centers: Float64Array, assign: AssignStep) -> Callable[[Iterable[Block]], Iterator[int]]:
    def run(iterator: Iterable[Block]) -> Iterator[int]:
        for block in iterator:
            yield from assign.assign(block.points, centers)[0].tolist()

    return run


def _start_and_labels(centers: Float64Array, assign: AssignStep) -> Callable[[Block], tuple[int, IntArray]]:
    def run(block: Block) -> tuple[int, IntArray]:
        return block.start, assign.assign(block.points, centers)[0]

    return run


def _fold(points: FloatArray, weights: Float64Array, integer: bool) -> tuple[FloatArray, Float64Array]:
    """``(distinct rows ascending, summed weights)``; integer-valued rows use packed integer keys."""
    if points.shape[0] == 0:
        return points, np.zeros(0)
    source = points.astype(np.int64) if integer else points
    rows, w, _ = compress_rows(source, np.asarray(weights, dtype=np.float64))
    return rows.astype(points.dtype, copy=False), w


def _fold_partition(integer: bool) -> Callable[[Iterable[Block]], Iterator[tuple[FloatArray, Float64Array]]]:
    def run(iterator: Iterable[Block]) -> Iterator[tuple[FloatArray, Float64Array]]:
        parts = list(iterator)
        if parts:
            points = np.concatenate([b.points for b in parts])
            weights = np.concatenate([np.asarray(b.weights, dtype=np.float64) for b in parts])
            yield _fold(points, weights, integer)

    return run


def _sample_rows(folded: tuple[FloatArray, Float64Array]) -> Float64Array:
    rows = folded[0]
    if rows.shape[0] <= BOUNDARY_SAMPLE:
        return np.asarray(rows, dtype=np.float64)
    idx = np.linspace(0, rows.shape[0] - 1, BOUNDARY_SAMPLE).astype(np.intp)
    return np.asarray(rows[idx], dtype=np.float64)


def _lexsorted_unique(rows: Float64Array) -> Float64Array:
    if rows.shape[0] == 0:
        return rows
    out: Float64Array = np.unique(rows, axis=0)  # ascending lexicographic
    return out


def _boundaries(samples: list[Float64Array], parts: int) -> Float64Array:
    """At most ``parts - 1`` sorted distinct rows splitting the sample into equal ranges."""
    pooled = _lexsorted_unique(np.concatenate(samples)) if samples else np.empty((0, 0))
    if parts <= 1 or pooled.shape[0] <= 1:
        return pooled[:0]
    idx = np.unique(np.linspace(0, pooled.shape[0], parts + 1).astype(np.intp)[1:-1])
    out: Float64Array = pooled[idx[(idx > 0) & (idx < pooled.shape[0])]]
    return out


def range_of(rows: FloatArray, bounds: Float64Array) -> NDArray[np.intp]:
    """For each row, the number of boundary rows lexicographically ``<=`` it (its range index)."""
    m, n = bounds.shape[0], rows.shape[0]
    if m == 0:
        return np.zeros(n, dtype=np.intp)
    both = np.concatenate([bounds, np.asarray(rows, dtype=np.float64)])
    tag = np.r_[np.zeros(m, dtype=np.int8), np.ones(n, dtype=np.int8)]
    # lexsort's last key is the primary one; the tag breaks ties so a boundary precedes an equal row
    order = np.lexsort((tag, *(both[:, j] for j in reversed(range(both.shape[1])))))
    is_bound = tag[order] == 0
    ranks = np.cumsum(is_bound)
    out = np.empty(n, dtype=np.intp)
    out[order[~is_bound] - m] = ranks[~is_bound]
    return out


def _split_by_range(
    bounds: Float64Array,
) -> Callable[[tuple[FloatArray, Float64Array]], Iterator[tuple[int, tuple[FloatArray, Float64Array]]]]:
    def run(folded: tuple[FloatArray, Float64Array]) -> Iterator[tuple[int, tuple[FloatArray, Float64Array]]]:
        rows, weights = folded
        ranges = range_of(rows, bounds)
        for r in np.unique(ranges).tolist():
            keep = ranges == r
            yield r, (rows[keep], weights[keep])

    return run


def _merge_ranges(integer: bool, dtype: str) -> Callable[[Iterable[Any]], Iterator[Any]]:
    def run(iterator: Iterable[Any]) -> Iterator[Any]:
        parts = [value for _, value in iterator]
        if parts:
            points = np.concatenate([p[0] for p in parts]).astype(dtype, copy=False)
            rows, w = _fold(points, np.concatenate([p[1] for p in parts]), integer)
            yield (rows, w, 0, integer)

    return run


def _predict_rows(
    centers: Float64Array, assign: AssignStep, block_rows: int
) -> Callable[[int, Iterable[Any]], Iterator[int]]:
    parse = blocks._parse_partition(block_rows)
    d = centers.shape[1]

    def run(index: int, iterator: Iterable[Any]) -> Iterator[int]:
        for item in parse(index, iterator):
            if isinstance(item, blocks.ParseError):
                raise ValidationError(item.message)
            points = item[0]
            if points.shape[1] != d:
                raise ValidationError(f"partition {index}: rows have {points.shape[1]} features, the model has {d}")
            if not np.isfinite(points).all():
                raise ValidationError(f"partition {index}: rows contain NaN or infinite values")
            yield from assign.assign(points, centers)[0].tolist()

    return run


def _predict_series(centers: Float64Array, assign: AssignStep) -> Callable[[Any], Any]:
    """A scalar pandas UDF body: a Series of feature arrays -> a Series of int32 labels."""
    import pandas as pd

    def run(values: Any) -> Any:
        # a null vector, or a null or NaN feature, has no closest center: its prediction is null
        out = pd.Series(pd.NA, index=values.index, dtype="Int32")
        keep = ~values.isna().to_numpy()
        if not keep.any():
            return out
        points = np.stack(values[keep].to_numpy()).astype(np.float64)  # a null element becomes NaN
        if points.shape[1] != centers.shape[1]:
            raise ValidationError(f"rows have {points.shape[1]} features, the model has {centers.shape[1]}")
        ok = np.isfinite(points).all(axis=1)
        if ok.any():
            out.iloc[np.flatnonzero(keep)[ok]] = assign.assign(points[ok], centers)[0].astype(np.int32)
        return out

    run.__annotations__ = {"values": pd.Series, "return": pd.Series}  # pandas_udf reads the type hints
    return run


def _predict_vector_batches(centers: Float64Array, assign: AssignStep, name: str) -> Callable[[Any], Any]:
    """A ``mapInArrow`` body: each batch with a ``prediction`` column from its vectors' struct form.

    Sparse vectors stay CSR (:func:`~kmeans.backends._spark.frames.vector_rows`); a null
    vector, or one with a NaN or infinite value, has no closest center: its prediction is null.
    """

    def run(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        for batch in batches:
            vectors = batch.column(name)
            out = np.zeros(batch.num_rows, dtype=np.int32)
            missing = np.asarray(vectors.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            keep = np.flatnonzero(~missing)
            if keep.size:
                points = frames.vector_rows(vectors.filter(pa.array(~missing)), name)
                if points.shape[1] != centers.shape[1]:
                    raise ValidationError(f"rows have {points.shape[1]} features, the model has {centers.shape[1]}")
                finite = blocks.finite_rows(points)
                if finite.any():
                    chosen: Any = points[np.flatnonzero(finite)] if not finite.all() else points
                    out[keep[finite]] = assign.assign(chosen, centers)[0].astype(np.int32)
                missing[keep[~finite]] = True
            yield batch.append_column("prediction", pa.array(out, type=pa.int32(), mask=missing))

    return run


@attrs.frozen
class SparkRDDBackend:
    """Fits on Spark with the generic Lloyd driver; blocks live in a cached RDD.

    ``num_partitions`` applies to ndarray input (default: one per million rows, at most
    ``defaultParallelism``); RDDs and DataFrames keep their own partitioning. ``block_rows``
    caps the rows per block when an RDD or DataFrame partition is converted.
    """

    name: str = "spark-rdd"
    array_input = True  # an (n, d) array-like: fit may hand it an exactly rescaled copy
    default_init = "k-means||"  # init="auto": a few passes over distributed data, as MLlib's default
    num_partitions: int | None = None
    block_rows: int = blocks.BLOCK_ROWS
    #: A single-partition dataset runs each restart's Lloyd iterations in one task (see
    #: the module docstring); ``False``: one job per iteration, callbacks live.
    one_task: bool = True
    #: With a ``local[...]`` master, keep a copy of the cached blocks in files the passes read
    #: (:mod:`kmeans.backends._spark.store`); ``False``: every pass reads Spark's cache.
    local_store: bool = True

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> SparkRDDDataset:
        if isinstance(X, SparkRDDDataset):
            return X
        source = "dataframe" if inputs.is_dataframe(X) else "rdd" if inputs.is_rdd(X) else "array"
        data = inputs.to_blocks(
            X,
            sample_weight,
            features=features,
            num_partitions=self.num_partitions,
            block_rows=self.block_rows,
            store=self.local_store,
        )
        return SparkRDDDataset(data, source=source)

    def fit(self, dataset: Any, spec: FitSpec) -> FitResult:
        """The generic fit (:func:`kmeans.driver.fit`) with :meth:`run_lloyd`; drops the input's cache at the end."""
        try:
            if getattr(dataset, "sparse", False) and not optional(spec.distance.assign, "sparse"):
                name = getattr(spec.distance, "name", repr(spec.distance))
                raise ValidationError(
                    f"distance={name!r} cannot read sparse rows (SparseVector); use distance='l2' or 'cosine', "
                    "or dense vectors"
                )
            return driver.fit(dataset, spec, run=self.run_lloyd)
        finally:
            dataset.unpersist()

    def run_lloyd(
        self, data: Any, centers: Float64Array, assign: AssignStep, update: Any, **options: Any
    ) -> LloydResult:
        """One restart's Lloyd run: in the one task that holds a single-partition dataset, else one job per pass."""
        if self.one_task and isinstance(data, SparkRDDDataset) and data.num_partitions == 1:
            return data.lloyd_in_one_task(centers, assign, update, **options)
        return lloyd(data, centers, assign, update, **options)

    def predict(self, X: Any, centers: Float64Array, assign: AssignStep, *, features: Any = None) -> Any:
        """ndarray -> ndarray of labels; RDD -> lazy RDD of labels; DataFrame -> DataFrame + ``prediction``."""
        centers = np.asarray(centers, dtype=np.float64)
        if inputs.is_rdd(X):
            return X.mapPartitionsWithIndex(_predict_rows(centers, assign, self.block_rows), preservesPartitioning=True)
        if inputs.is_dataframe(X):
            return self._predict_dataframe(X, centers, assign, features)
        arr = check_points(X)
        if arr.shape[1] != centers.shape[1]:
            raise ValidationError(f"X has {arr.shape[1]} features, but the model has {centers.shape[1]}")
        points = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
        return assign.assign(points, centers)[0].astype(np.int32)

    def _predict_dataframe(self, df: Any, centers: Float64Array, assign: AssignStep, features: Any) -> Any:
        from pyspark.sql import functions as sf
        from pyspark.sql.pandas.functions import pandas_udf

        spec = frames.resolve_features(df, features)
        if "prediction" in df.columns:
            raise ValidationError("the DataFrame already has a 'prediction' column; rename or drop it first")
        if (
            spec.kind == "vector"
            and not any("`" in c for c in df.columns)  # mapInArrow cannot read a column named c`d
            and frames.has_sparse_vectors(df, spec.columns[0])
        ):
            from pyspark.sql.types import IntegerType, StructField, StructType

            schema = StructType([*df.schema.fields, StructField("prediction", IntegerType())])
            return df.mapInArrow(_predict_vector_batches(centers, assign, spec.columns[0]), schema)
        if spec.kind == "columns":
            values = sf.array(*[frames.column(c).cast("double") for c in spec.columns])
        elif spec.kind == "vector":
            values = frames.vector_values(spec.columns[0])
        else:
            values = frames.column(spec.columns[0])
        udf: Any = pandas_udf(_predict_series(centers, assign), "int")  # type: ignore[call-overload]
        return df.withColumn("prediction", udf(values))
