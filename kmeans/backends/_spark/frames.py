"""DataFrames: feature columns, and the Arrow path from a DataFrame to blocks (and to block files)."""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans.backends._spark.blocks import (
    BLOCK_ROWS,
    ParseError,
    SparkBlocks,
    as_points,
    check_stats,
    partition_stats,
    validated,
)
from kmeans.backends._spark.store import BlockStore, store_for
from kmeans.errors import ValidationError
from kmeans.sparse import SparseRows, is_sparse


@attrs.frozen
class FeatureSpec:
    """Which DataFrame columns hold the features.

    ``kind`` is ``"columns"`` (one numeric column per feature), ``"vector"`` (one
    ``pyspark.ml`` vector column) or ``"array"`` (one array-of-numbers column);
    ``weight`` is the weight column or None; ``integer`` is True when every feature
    column has an integral type; ``sparse`` is True when a vector column is read in its
    struct form (it holds ``SparseVector`` rows, see :func:`has_sparse_vectors`).
    """

    columns: tuple[str, ...]
    kind: str
    weight: str | None = None
    integer: bool = False
    sparse: bool = False


_INTEGRAL = ("ByteType", "ShortType", "IntegerType", "LongType", "BooleanType")
_NUMERIC = (*_INTEGRAL, "FloatType", "DoubleType", "DecimalType")


def _type_name(data_type: Any) -> str:
    return type(data_type).__name__


def resolve_features(df: Any, features: Any = None, sample_weight: Any = None) -> FeatureSpec:
    """Check the feature (and weight) columns of ``df`` against its schema, on the driver.

    ``features`` is a list of numeric column names, one vector/array column name, or None
    (then: the single vector column named ``features`` if present, else every column).
    """
    fields = {f.name: f.dataType for f in df.schema.fields}
    if sample_weight is not None and not isinstance(sample_weight, str):
        raise ValidationError(
            "with a DataFrame, sample_weight must be the name of a numeric weight column, "
            f"got {type(sample_weight).__name__}"
        )
    if features is None:
        if "features" in fields and _type_name(fields["features"]) in ("VectorUDT", "ArrayType"):
            names: tuple[str, ...] = ("features",)
        else:
            names = tuple(n for n in fields if n != sample_weight)
    elif isinstance(features, str):
        names = (features,)
    else:
        try:
            names = tuple(features)
        except TypeError:
            raise ValidationError(
                f"features must be a column name or a list of column names, got {features!r}"
            ) from None
        if not names or not all(isinstance(n, str) for n in names):
            raise ValidationError(f"features must be a non-empty list of column names, got {features!r}")
    unknown = [n for n in (*names, *([sample_weight] if sample_weight else [])) if n not in fields]
    if unknown:
        raise ValidationError(f"unknown column(s) {unknown}; the DataFrame has columns {list(fields)}")
    if sample_weight is not None and _type_name(fields[sample_weight]) not in _NUMERIC:
        raise ValidationError(
            f"weight column {sample_weight!r} has type {fields[sample_weight].simpleString()}; it must be numeric"
        )
    kinds = {n: _type_name(fields[n]) for n in names}
    if len(names) == 1 and kinds[names[0]] == "VectorUDT":
        return FeatureSpec(names, "vector", sample_weight)
    if len(names) == 1 and kinds[names[0]] == "ArrayType":
        element = _type_name(fields[names[0]].elementType)
        if element not in _NUMERIC:
            raise ValidationError(
                f"column {names[0]!r} is an array of {element.removesuffix('Type').lower()}; it must hold numbers"
            )
        return FeatureSpec(names, "array", sample_weight, element in _INTEGRAL)
    bad = {n: fields[n].simpleString() for n, k in kinds.items() if k not in _NUMERIC}
    if bad:
        raise ValidationError(
            f"non-numeric feature column(s) {bad}; pass features=[...] with numeric columns only, "
            "or one vector column (e.g. from VectorAssembler)"
        )
    return FeatureSpec(names, "columns", sample_weight, all(kinds[n] in _INTEGRAL for n in names))


def quote(name: str) -> str:
    """``name`` as a SQL identifier: a column named ``a.b`` or ``x`y`` is that column, not a field path."""
    return "`" + name.replace("`", "``") + "`"


def column(name: str) -> Any:
    """The top-level column ``name`` (any characters), as a ``pyspark.sql.Column``."""
    from pyspark.sql import functions as sf

    return sf.col(quote(name))


def vector_values(name: str) -> Any:
    """A vector column as ``array<double>``; a null vector stays null (``vector_to_array`` would fail on it)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as sf

    return sf.when(column(name).isNotNull(), vector_to_array(column(name)))


#: How many of a vector column's first non-null rows :func:`has_sparse_vectors` looks at.
SPARSE_PROBE_ROWS = 64

#: A vector column whose ML attributes declare at most this many features is read dense (no probe).
DENSE_WIDTH = 64


def declared_size(df: Any, name: str) -> int | None:
    """The vector size that column ``name``'s ML attribute metadata declares, if any.

    ``VectorAssembler``, ``HashingTF``, ``OneHotEncoder`` and others write it (``ml_attr.num_attrs``).
    """
    size = df.schema[name].metadata.get("ml_attr", {}).get("num_attrs")
    return size if isinstance(size, int) else None


def has_sparse_vectors(df: Any, name: str) -> bool:
    """Whether the vector column ``name`` holds a ``SparseVector`` among its first non-null rows.

    One small job on the JVM alone (no Python worker): a vector's string form starts with
    ``(`` when it is sparse, ``[`` when dense. Spark writes a vector column's struct form to
    Arrow several times slower than the ``array<double>`` of ``vector_to_array``, which makes
    every sparse vector dense: these rows choose the form. A column declared at most
    :data:`DENSE_WIDTH` wide is dense without the job (its rows take at most 512 bytes).
    """
    size = declared_size(df, name)
    if size is not None and size <= DENSE_WIDTH:
        return False
    first = column(name).cast("string").substr(1, 1).alias("c")
    rows = df.where(column(name).isNotNull()).select(first).limit(SPARSE_PROBE_ROWS).collect()
    return any(row.c == "(" for row in rows)


def feature_frame(df: Any, spec: FeatureSpec) -> Any:
    """``df`` reduced to the feature columns and the weight column.

    A vector column is ``array<double>`` (:func:`vector_values`), or with ``spec.sparse`` the
    vectors themselves: Arrow reads their struct form (``type`` 0 sparse / 1 dense, ``size``,
    ``indices``, ``values``), so sparse vectors arrive as their stored values only.
    """
    if spec.kind == "vector" and not spec.sparse:
        cols = [vector_values(spec.columns[0]).alias("__features")]
    elif spec.kind in ("vector", "array"):
        cols = [column(spec.columns[0]).alias("__features")]
    else:
        types = {f.name: _type_name(f.dataType) for f in df.schema.fields}
        # plain names inside (mapInArrow cannot read a column named c`d): __x0, __x1, ...
        cols = [
            (column(c).cast("double") if types[c] == "DecimalType" else column(c)).alias(f"__x{j}")
            for j, c in enumerate(spec.columns)
        ]
    if spec.weight is not None:
        cols.append(column(spec.weight).cast("double").alias("__weight"))
    return df.select(*cols)


def arrow_batch_to_array(batch: Any, spec: FeatureSpec) -> NDArray[Any] | SparseRows:
    """The features of one Arrow record batch of :func:`feature_frame` as ``(n, d)`` rows.

    Rows are an array, or :class:`SparseRows` for vectors when the batch holds a sparse one.

    Raises ``ValueError`` naming the column for null values or ragged vectors.
    """
    shown = spec.columns if spec.kind == "columns" else spec.columns[:1]
    inner = [f"__x{j}" for j in range(len(spec.columns))] if spec.kind == "columns" else ["__features"]
    for name, label in zip(inner, shown, strict=True):
        nulls = batch.column(name).null_count
        if nulls:
            raise ValueError(f"column {label!r} has {nulls} null values; drop or impute them first")
    if spec.kind == "columns":
        cols = [batch.column(c).to_numpy(zero_copy_only=False) for c in inner]
        types = {c.dtype for c in cols}
        dtype = np.float32 if types == {np.dtype(np.float32)} else np.float64
        if all(c.dtype.kind in "biu" for c in cols) and batch.num_rows:
            return np.column_stack(cols).astype(np.int64, copy=False)
        return np.column_stack([c.astype(dtype, copy=False) for c in cols]) if cols else np.empty((0, 0))
    if spec.sparse:
        return vector_rows(batch.column("__features"), spec.columns[0])
    return _list_rows(batch.column("__features"), spec.columns[0])


def _list_rows(lists: Any, label: str) -> NDArray[Any]:
    """An Arrow list array of equal-length number lists as an ``(n, d)`` array."""
    import pyarrow.compute as pc

    values = lists.flatten()
    if values.null_count:
        raise ValueError(f"column {label!r} has null elements inside its vectors; drop or impute them first")
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    n = len(lists)
    if n == 0:
        return np.empty((0, 0))
    d = int(lengths[0])
    if (lengths != d).any():
        raise ValueError(f"column {label!r} has vectors of different lengths {sorted(set(lengths.tolist()))[:5]}")
    arr: NDArray[Any] = values.to_numpy(zero_copy_only=False).reshape(n, d)
    return arr.astype(np.int64) if arr.dtype.kind == "b" else arr


def vector_rows(vectors: Any, label: str) -> NDArray[Any] | SparseRows:
    """ML vectors in their Arrow struct form (no nulls) as rows: dense when every vector is dense, else CSR.

    A batch with a sparse vector becomes :class:`SparseRows` straight from the Arrow arrays
    (its dense vectors' zeros dropped), never an ``(n, d)`` array.
    """
    import pyarrow.compute as pc

    kinds = pc.struct_field(vectors, "type").to_numpy(zero_copy_only=False)
    values = pc.struct_field(vectors, "values")
    if kinds.all():  # type 1: every vector dense
        return _list_rows(values, label)
    lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    sparse_rows = kinds == 0
    sizes = pc.struct_field(vectors, "size").fill_null(0).to_numpy(zero_copy_only=False)
    sizes = np.where(sparse_rows, sizes, lengths)
    d = int(sizes[0])
    if (sizes != d).any():
        raise ValueError(f"column {label!r} has vectors of different lengths {sorted(set(sizes.tolist()))[:5]}")
    n = len(vectors)
    data = values.flatten().to_numpy(zero_copy_only=False)
    stored = pc.struct_field(vectors, "indices").flatten().to_numpy(zero_copy_only=False)
    if stored.size and (int(stored.min()) < 0 or int(stored.max()) >= d):
        raise ValueError(f"column {label!r} has sparse vectors with indices outside 0..{d - 1}")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    if sparse_rows.all():
        indices = stored
    else:  # a dense vector's values sit at 0..d-1
        indices = np.arange(data.size, dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        indices[np.repeat(sparse_rows, lengths)] = stored
    from scipy import sparse

    return SparseRows.from_scipy(sparse.csr_matrix((data, indices, indptr), shape=(n, d)))


def _stack(parts: list[Any]) -> Any:
    """Row blocks one after another: an array, or :class:`SparseRows` when any part is sparse."""
    if not any(is_sparse(p) for p in parts):
        return np.concatenate(parts)
    from scipy import sparse

    csr = [p.to_scipy() if is_sparse(p) else sparse.csr_array(p) for p in parts]
    return SparseRows.from_scipy(csr[0] if len(csr) == 1 else sparse.vstack(csr, format="csr"))


_ARROW_SCHEMA = (
    "points binary, weights binary, dtype string, n long, d long, start long, integer boolean, error string, "
    "indices binary, indptr binary"
)


def _arrow_stored(batches: Iterable[Any], spec: FeatureSpec, block_rows: int) -> Iterator[Any]:
    """Executor-side: Arrow batches of :func:`feature_frame` -> blocks in the stored form, or one ParseError."""
    start, pending, pending_w, error, rows = 0, [], [], "", 0

    def emit(parts: list[NDArray[Any] | SparseRows], wparts: list[NDArray[Any]], at: int) -> Any:
        w = np.concatenate(wparts).astype(np.float64) if wparts else None
        stacked = _stack(parts)
        if is_sparse(stacked):
            return (stacked, w, at, False)
        points, integer = as_points(stacked)
        return (np.ascontiguousarray(points), w, at, integer)

    for batch in batches:  # always consume every batch, even after an error
        if error or batch.num_rows == 0:
            continue
        try:
            arr = arrow_batch_to_array(batch, spec)
        except ValueError as exc:
            error = str(exc)
            continue
        pending.append(arr)
        if spec.weight is not None:
            w = batch.column("__weight")
            if w.null_count:
                error = f"weight column {spec.weight!r} has {w.null_count} null values"
                continue
            pending_w.append(w.to_numpy(zero_copy_only=False))
        rows += arr.shape[0]
        if rows >= block_rows:
            yield emit(pending, pending_w, start)
            start += rows
            pending, pending_w, rows = [], [], 0
    if error:
        yield ParseError(error)
    elif pending:
        yield emit(pending, pending_w, start)


def _arrow_partition(spec: FeatureSpec, block_rows: int) -> Any:
    """Executor-side ``mapInArrow`` function: Arrow batches -> one row per block (array bytes).

    CSR rows travel as their three arrays: values in ``points``, then ``indices`` and ``indptr``.
    """

    def fn(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        types = {
            "points": pa.binary(),
            "weights": pa.binary(),
            "dtype": pa.string(),
            "n": pa.int64(),
            "d": pa.int64(),
            "start": pa.int64(),
            "integer": pa.bool_(),
            "error": pa.string(),
            "indices": pa.binary(),
            "indptr": pa.binary(),
        }
        schema = pa.schema(list(types.items()))
        for item in _arrow_stored(batches, spec, block_rows):
            if isinstance(item, ParseError):
                row = {"points": b"", "dtype": "", "n": 0, "d": 0, "start": 0, "integer": False, "error": item.message}
            else:
                points, w, at, integer = item
                sparse = is_sparse(points)
                row = {
                    "points": (points.data if sparse else points).tobytes(),
                    "weights": None if w is None else w.tobytes(),
                    "dtype": points.dtype.str,
                    "n": points.shape[0],
                    "d": points.shape[1],
                    "start": at,
                    "integer": integer,
                    "error": "",
                    "indices": points.indices.tobytes() if sparse else None,
                    "indptr": points.indptr.tobytes() if sparse else None,
                }
            yield pa.RecordBatch.from_pylist([row], schema=schema)

    return fn


_STATS_SCHEMA = "partition long, stats binary"


def _arrow_store(spec: FeatureSpec, block_rows: int, store: BlockStore) -> Any:
    """Executor-side ``mapInArrow`` function: convert a partition, write it to ``store``, return its statistics."""

    def fn(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark import TaskContext

        index = TaskContext.get().partitionId()  # type: ignore[union-attr]
        items = list(_arrow_stored(batches, spec, block_rows))
        stats = next(partition_stats(index, items))
        if not stats[8]:
            store.write(index, items)
        row = {"partition": index, "stats": pickle.dumps(stats)}
        yield pa.RecordBatch.from_pylist([row], schema=pa.schema([("partition", pa.int64()), ("stats", pa.binary())]))

    return fn


def _decode(row: Any) -> Any:
    if row.error:
        return ParseError(row.error)
    weights = None if row.weights is None else np.frombuffer(row.weights, dtype=np.float64)
    values = np.frombuffer(row.points, dtype=np.dtype(row.dtype))
    if row.indptr is not None:
        indices, indptr = np.frombuffer(row.indices, dtype=np.int32), np.frombuffer(row.indptr, dtype=np.int64)
        return (SparseRows(values, indices, indptr, (row.n, row.d)), weights, row.start, row.integer)
    return (values.reshape(row.n, row.d), weights, row.start, row.integer)


def blocks_from_dataframe(
    df: Any, sample_weight: Any = None, *, features: Any = None, block_rows: int = BLOCK_ROWS, store: bool = True
) -> SparkBlocks:
    """Convert a DataFrame through Arrow batches (``mapInArrow``): no per-row Python.

    ``sample_weight`` may name a weight column. Partitions keep the DataFrame's layout.
    """
    spec = resolve_features(df, features, sample_weight)
    if spec.kind == "vector":
        spec = attrs.evolve(spec, sparse=has_sparse_vectors(df, spec.columns[0]))
    frame = feature_frame(df, spec)
    converted = frame.mapInArrow(_arrow_partition(spec, block_rows), _ARROW_SCHEMA)
    parsed = converted.rdd.map(_decode, preservesPartitioning=True)
    files = store_for(df.sparkSession.sparkContext) if store else None
    if files is None:
        return validated(parsed, "the DataFrame", store=False)
    # One pass DataFrame -> files (the store) that returns only statistics; the cached RDD
    # is filled on first use (a pass over a partition the store lacks, or an RDD consumer).
    try:
        rows = frame.mapInArrow(_arrow_store(spec, block_rows, files), _STATS_SCHEMA).collect()
        by_partition = {int(r.partition): pickle.loads(r.stats) for r in rows}
        stats = [by_partition[p] for p in range(len(by_partition))]
        if len(stats) != parsed.getNumPartitions():
            raise RuntimeError("the partitioning changed")  # pragma: no cover - defensive
        checked = check_stats(parsed, stats, "the DataFrame", files)
    except ValidationError:
        files.remove()
        raise
    except (RuntimeError, KeyError):  # pragma: no cover - defensive: fall back to the plain path
        files.remove()
        return validated(parsed, "the DataFrame", store=False)
    parsed.cache()  # filled on first use, if any
    return checked
