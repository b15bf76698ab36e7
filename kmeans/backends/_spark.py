"""Spark plumbing shared by the Spark backends: sessions, input detection, conversion to blocks.

Importing this module does not import pyspark: :func:`is_rdd`, :func:`is_dataframe` and
:func:`is_spark_input` look at ``sys.modules`` only, so the NumPy backend can ask "is this a
Spark object?" without paying for (or requiring) Spark.

**Sessions.** :func:`get_session` returns the caller's active ``SparkSession`` (or wraps the
active ``SparkContext``) when there is one, and never stops it. Otherwise it starts a local
session bound to 127.0.0.1 with quiet logs and remembers that it owns it;
:func:`stop_owned_session` (also run at interpreter exit) stops only that one.

**Blocks.** :func:`to_blocks` turns an ndarray, an RDD of rows, or a DataFrame into
:class:`SparkBlocks`: a cached RDD of ``(points, weights or None, local_start)`` tuples plus
the per-partition row offsets, and :attr:`SparkBlocks.blocks`, a lazy view of it as
:class:`~kmeans._types.Block` objects with *global* row offsets. Everything is validated in
one pass that also fills the cache: non-numeric values, nulls, NaN or infinite values,
rows of different lengths, an empty RDD and unknown column names raise
:class:`~kmeans.errors.ValidationError` before any iteration runs.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pickle
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._types import Block, Float64Array, FloatArray
from kmeans._validation import check_points, check_weights
from kmeans.backends._spark_store import BlockStore, store_for
from kmeans.errors import MissingDependencyError, ValidationError

#: Rows per block when an RDD or DataFrame partition is converted (bounds worker memory).
BLOCK_ROWS = 1 << 17

INSTALL_HINT = "Install it with: pip install 'kmeans[spark]' (pyspark, pandas<3 and pyarrow)"
JAVA_HINT = (
    "Spark needs a Java 17 or 21 runtime: install one (e.g. 'apt-get install openjdk-17-jre-headless' "
    "or https://adoptium.net) and put 'java' on PATH or set JAVA_HOME"
)

_LOG4J2 = """\
# Written by kmeans: Spark logs errors only (started sessions are otherwise very chatty).
rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""

_lock = threading.Lock()
_owned: Any = None  # the SparkSession this module started, if any


# -- detection (no pyspark import) ---------------------------------------------------------


def _loaded(module: str) -> Any:
    return sys.modules.get(module)


def is_rdd(X: Any) -> bool:
    """True when ``X`` is a ``pyspark.RDD`` (checked without importing pyspark)."""
    if _loaded("pyspark") is None:
        return False
    from pyspark import RDD

    return isinstance(X, RDD)


def is_dataframe(X: Any) -> bool:
    """True when ``X`` is a classic ``pyspark.sql.DataFrame`` (checked without importing pyspark)."""
    sql = _loaded("pyspark.sql")
    if sql is None:
        return False
    return isinstance(X, sql.DataFrame) and not is_connect(X)


def is_connect(X: Any) -> bool:
    """True for Spark Connect objects, which have no RDD API."""
    return type(X).__module__.startswith("pyspark.sql.connect")


def is_spark_input(X: Any) -> bool:
    """True for an RDD or a DataFrame."""
    return is_rdd(X) or is_dataframe(X)


# -- dependencies and sessions -------------------------------------------------------------


def require_pyspark() -> Any:
    """Import and return ``pyspark``, or raise :class:`MissingDependencyError` saying what to install."""
    try:
        import pyspark
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Spark backends need pyspark, which is not installed ({exc}). {INSTALL_HINT}"
        ) from exc
    return pyspark


def require_java() -> str:
    """Path of the ``java`` executable Spark will start, or :class:`MissingDependencyError`."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
    java = shutil.which("java")
    if java is None:
        raise MissingDependencyError(f"no Java runtime found (JAVA_HOME unset and no 'java' on PATH). {JAVA_HINT}")
    return java


def log4j2_file() -> Path:
    """A log4j2 properties file that makes Spark log errors only (written once, atomically)."""
    path = Path(tempfile.gettempdir()) / f"kmeans-log4j2-{os.getuid() if hasattr(os, 'getuid') else 0}.properties"
    if not path.exists() or path.read_text() != _LOG4J2:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J2)
        os.replace(tmp, path)
    return path


def _python_path() -> str:
    """PYTHONPATH for Python workers: this ``kmeans`` checkout first, then the caller's path."""
    root = str(Path(__file__).resolve().parents[2])
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    if Path(root).name in ("site-packages", "dist-packages"):
        return os.pathsep.join(current)  # an installed kmeans: workers find it already
    return os.pathsep.join([root, *current])


def local_conf(master: str = "local[*]", app_name: str = "kmeans") -> dict[str, str]:
    """Configuration of a local session: loopback only, no UI, quiet logs, workers see ``kmeans``."""
    log = f"-Dlog4j2.configurationFile=file:{log4j2_file()}"
    path = {"spark.executorEnv.PYTHONPATH": _python_path()} if _python_path() else {}
    return {
        **path,
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": log,
        "spark.executor.extraJavaOptions": log,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.pyspark.python": sys.executable,
    }


def start_local_session(master: str = "local[*]", conf: dict[str, str] | None = None) -> Any:
    """Start a SparkSession on this machine bound to 127.0.0.1 (``conf`` overrides :func:`local_conf`)."""
    require_pyspark()
    require_java()
    from pyspark.sql import SparkSession

    # The JVM reads these when it starts: the driver must listen on loopback only, and
    # Python workers must use this interpreter and find this ``kmeans``.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if _python_path():
        os.environ["PYTHONPATH"] = _python_path()
    builder = SparkSession.builder
    for key, value in {**local_conf(master), **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def active_session() -> Any:
    """The caller's SparkSession (a session over the caller's SparkContext), or None."""
    if _loaded("pyspark") is None:
        return None
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    if SparkContext._active_spark_context is not None:
        return SparkSession.builder.getOrCreate()  # wraps the running context, creates no new one
    return None


def get_session() -> Any:
    """The active SparkSession, else a local one this module starts (and later stops)."""
    global _owned
    require_pyspark()
    with _lock:
        session = active_session()
        if session is not None:
            return session
        _owned = start_local_session()
        return _owned


def get_context() -> Any:
    """The SparkContext of :func:`get_session`."""
    return get_session().sparkContext


def owns_session(session: Any) -> bool:
    """True when ``session`` was started by this module (so it may be stopped by it)."""
    return _owned is not None and session is _owned


@atexit.register
def stop_owned_session() -> None:
    """Stop the session this module started, if any; sessions the caller owns are left alone."""
    global _owned
    with _lock:
        if _owned is not None:
            _owned.stop()
            _owned = None


# -- conversion into blocks ----------------------------------------------------------------


@attrs.frozen
class ParseError:
    """Put in place of a block when a partition cannot be converted (reported on the driver)."""

    message: str


#: The stats one partition reports after conversion: (rows, features, dtype, integer, nonfinite,
#: first bad row, bad weights, total weight, first error).
_PartStats = tuple[int, int, str, bool, int, int, str, float, str]


def unit_weights(n: int) -> Float64Array:
    """Unit weights that cost no memory: a read-only broadcast of 1.0."""
    return np.broadcast_to(np.float64(1.0), (n,))


def _as_points(arr: NDArray[Any]) -> tuple[FloatArray, bool]:
    """``(float points, integer_valued)``: integers and booleans become float64."""
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr, False
    return arr.astype(np.float64), True


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def rows_to_array(rows: Sequence[Any]) -> NDArray[Any]:
    """Stack RDD elements (rows as lists/tuples/1-D arrays/ML vectors, or 2-D array blocks) into ``(n, d)``.

    Raises ``ValueError`` with a user-facing message for scalars, ragged or non-numeric rows.
    """
    first = rows[0]
    try:
        if hasattr(first, "toArray"):  # pyspark.ml.linalg / pyspark.mllib.linalg vectors
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
            points, integer = _as_points(arr)
            yield (points, None, start, integer)
            start += points.shape[0]

    return parse


def _partition_stats(index: int, iterator: Iterable[Any]) -> Iterator[_PartStats]:
    """Executor-side: validate one converted partition and summarize it for the driver."""
    n, d, dtype, integer, nonfinite, first_bad, bad_w, total_w, error = 0, -1, "", True, 0, -1, "", 0.0, ""
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
        finite = np.isfinite(points).all(axis=1)
        if not finite.all():
            nonfinite += int((~finite).sum())
            if first_bad < 0:
                first_bad = n + int(np.flatnonzero(~finite)[0])
        if weights is None:
            total_w += points.shape[0]
        else:
            if not bad_w:
                if np.isnan(weights).any() or np.isinf(weights).any():
                    bad_w = "NaN or infinite"
                elif (weights < 0).any():
                    bad_w = "negative"
            total_w += float(np.sum(weights))
        n += points.shape[0]
    yield (n, d, dtype, integer, nonfinite, first_bad, bad_w, total_w, error)


@attrs.frozen(eq=False)
class SparkBlocks:
    """Validated data in Spark: a cached RDD of row blocks with global offsets.

    ``cached`` holds ``(points, weights or None, local_start, integer)`` tuples (the stored form);
    ``offsets[p]`` is the global index of partition ``p``'s first row. :attr:`blocks` is the
    lazy view as :class:`Block` objects with global starts, ``points`` in ``dtype``.
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
    #: Copies of the cached partitions on the executors' disk (:mod:`._spark_store`), if any.
    store: BlockStore | None = None

    def __attrs_post_init__(self) -> None:
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
        view = to_block_view(self.offsets, self.dtype.str)
        return self.cached.mapPartitionsWithIndex(view, preservesPartitioning=True)

    def persist(self) -> None:
        if not self.cached.is_cached:
            self.cached.cache()

    def unpersist(self) -> None:
        """Drop the cache (and the executors' copies of the source broadcasts: the driver
        keeps them, so a later pass can recompute); a no-op once the SparkContext is stopped."""
        if getattr(self.cached.context, "_jsc", None) is None:
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


def to_block_view(offsets: tuple[int, ...], dtype: str) -> Any:
    """Executor-side: a partition in the stored form -> :class:`Block` objects with global offsets."""

    def convert(index: int, iterator: Iterable[Any]) -> Iterator[Block]:
        for points, weights, start, _ in iterator:
            pts = points if points.dtype.str == dtype else points.astype(dtype)
            w = unit_weights(pts.shape[0]) if weights is None else weights
            yield Block(pts, w, offsets[index] + start)

    return convert


def _stored(store: BlockStore | None, stats: bool) -> Any:
    """Executor-side: write a cached partition to ``store``; yield its statistics (``stats``) or its row count."""

    def summary(index: int, items: Iterable[Any]) -> Any:
        return next(_partition_stats(index, items)) if stats else sum(item[0].shape[0] for item in items)

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


def _validated(parsed: Any, what: str, *, store: bool = True) -> SparkBlocks:
    """Cache ``parsed``, run the validation pass (it fills the cache and the store), build :class:`SparkBlocks`."""
    parsed.cache()
    files = store_for(parsed.context) if store else None
    try:
        stats: list[_PartStats] = parsed.mapPartitionsWithIndex(_stored(files, True)).collect()
        return _check_stats(parsed, stats, what, files)
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


def _check_stats(parsed: Any, stats: list[_PartStats], what: str, store: BlockStore | None = None) -> SparkBlocks:
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
    return SparkBlocks(parsed, offsets_t, n, d, dtype, integer, float(total_w), store=store)


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
    points, integer = _as_points(arr)
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
    return SparkBlocks(rdd, offsets, n, points.shape[1], points.dtype, integer, total, sources, files)


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
    return _validated(parsed, "the RDD", store=store)


# -- DataFrames ----------------------------------------------------------------------------


@attrs.frozen
class FeatureSpec:
    """Which DataFrame columns hold the features.

    ``kind`` is ``"columns"`` (one numeric column per feature), ``"vector"`` (one
    ``pyspark.ml`` vector column) or ``"array"`` (one array-of-numbers column);
    ``weight`` is the weight column or None; ``integer`` is True when every feature
    column has an integral type.
    """

    columns: tuple[str, ...]
    kind: str
    weight: str | None = None
    integer: bool = False


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


def feature_frame(df: Any, spec: FeatureSpec) -> Any:
    """``df`` reduced to the feature columns (vectors as ``array<double>``) and the weight column."""
    if spec.kind == "vector":
        cols = [vector_values(spec.columns[0]).alias("__features")]
    elif spec.kind == "array":
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


def arrow_batch_to_array(batch: Any, spec: FeatureSpec) -> NDArray[Any]:
    """The features of one Arrow record batch of :func:`feature_frame` as an ``(n, d)`` array.

    Raises ``ValueError`` naming the column for null values or ragged vectors.
    """
    import pyarrow.compute as pc

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
    lists = batch.column("__features")
    values = lists.flatten()
    if values.null_count:
        raise ValueError(f"column {spec.columns[0]!r} has null elements inside its vectors; drop or impute them first")
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    n = batch.num_rows
    if n == 0:
        return np.empty((0, 0))
    d = int(lengths[0])
    if (lengths != d).any():
        raise ValueError(
            f"column {spec.columns[0]!r} has vectors of different lengths {sorted(set(lengths.tolist()))[:5]}"
        )
    arr: NDArray[Any] = values.to_numpy(zero_copy_only=False).reshape(n, d)
    return arr.astype(np.int64) if arr.dtype.kind == "b" else arr


_ARROW_SCHEMA = "points binary, weights binary, dtype string, n long, d long, start long, integer boolean, error string"


def _arrow_stored(batches: Iterable[Any], spec: FeatureSpec, block_rows: int) -> Iterator[Any]:
    """Executor-side: Arrow batches of :func:`feature_frame` -> blocks in the stored form, or one ParseError."""
    start, pending, pending_w, error, rows = 0, [], [], "", 0

    def emit(parts: list[NDArray[Any]], wparts: list[NDArray[Any]], at: int) -> Any:
        points, integer = _as_points(np.concatenate(parts))
        w = np.concatenate(wparts).astype(np.float64) if wparts else None
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
    """Executor-side ``mapInArrow`` function: Arrow batches -> one row per block (array bytes)."""

    def fn(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        names = ("points", "weights", "dtype", "n", "d", "start", "integer", "error")
        types = (pa.binary(), pa.binary(), pa.string(), pa.int64(), pa.int64(), pa.int64(), pa.bool_(), pa.string())
        schema = pa.schema(list(zip(names, types, strict=True)))
        for item in _arrow_stored(batches, spec, block_rows):
            if isinstance(item, ParseError):
                row = dict(zip(names, (b"", None, "", 0, 0, 0, False, item.message), strict=True))
            else:
                points, w, at, integer = item
                values = (points.tobytes(), None if w is None else w.tobytes(), points.dtype.str)
                row = dict(zip(names, (*values, *points.shape, at, integer, ""), strict=True))
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
        stats = next(_partition_stats(index, items))
        if not stats[8]:
            store.write(index, items)
        row = {"partition": index, "stats": pickle.dumps(stats)}
        yield pa.RecordBatch.from_pylist([row], schema=pa.schema([("partition", pa.int64()), ("stats", pa.binary())]))

    return fn


def _decode(row: Any) -> Any:
    if row.error:
        return ParseError(row.error)
    points = np.frombuffer(row.points, dtype=np.dtype(row.dtype)).reshape(row.n, row.d)
    weights = None if row.weights is None else np.frombuffer(row.weights, dtype=np.float64)
    return (points, weights, row.start, row.integer)


def blocks_from_dataframe(
    df: Any, sample_weight: Any = None, *, features: Any = None, block_rows: int = BLOCK_ROWS, store: bool = True
) -> SparkBlocks:
    """Convert a DataFrame through Arrow batches (``mapInArrow``): no per-row Python.

    ``sample_weight`` may name a weight column. Partitions keep the DataFrame's layout.
    """
    spec = resolve_features(df, features, sample_weight)
    frame = feature_frame(df, spec)
    converted = frame.mapInArrow(_arrow_partition(spec, block_rows), _ARROW_SCHEMA)
    parsed = converted.rdd.map(_decode, preservesPartitioning=True)
    files = store_for(df.sparkSession.sparkContext) if store else None
    if files is None:
        return _validated(parsed, "the DataFrame", store=False)
    # One pass DataFrame -> files (the store) that returns only statistics; the cached RDD
    # is filled on first use (a pass over a partition the store lacks, or an RDD consumer).
    try:
        rows = frame.mapInArrow(_arrow_store(spec, block_rows, files), _STATS_SCHEMA).collect()
        by_partition = {int(r.partition): pickle.loads(r.stats) for r in rows}
        stats = [by_partition[p] for p in range(len(by_partition))]
        if len(stats) != parsed.getNumPartitions():
            raise RuntimeError("the partitioning changed")  # pragma: no cover - defensive
        checked = _check_stats(parsed, stats, "the DataFrame", files)
    except ValidationError:
        files.remove()
        raise
    except (RuntimeError, KeyError):  # pragma: no cover - defensive: fall back to the plain path
        files.remove()
        return _validated(parsed, "the DataFrame", store=False)
    parsed.cache()  # filled on first use, if any
    return checked


def to_blocks(
    X: Any,
    sample_weight: Any = None,
    *,
    features: Any = None,
    num_partitions: int | None = None,
    block_rows: int = BLOCK_ROWS,
    store: bool = True,
) -> SparkBlocks:
    """Any supported input (ndarray-like, RDD, DataFrame) as validated, cached :class:`SparkBlocks`."""
    if is_connect(X):
        raise ValidationError(
            "Spark Connect DataFrames have no RDD API, which the spark-rdd backend needs; "
            "use a classic SparkSession, or backend='spark-ml'"
        )
    if is_dataframe(X):
        return blocks_from_dataframe(X, sample_weight, features=features, block_rows=block_rows, store=store)
    if features is not None:
        raise ValidationError("features= selects DataFrame columns; it cannot be used with an array or an RDD")
    if is_rdd(X):
        return blocks_from_rdd(X, sample_weight, block_rows=block_rows, store=store)
    return blocks_from_array(get_context(), X, sample_weight, num_partitions=num_partitions, store=store)
