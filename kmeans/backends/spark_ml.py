"""The ``spark-ml`` backend: an honest adapter that hands the whole fit to Spark MLlib.

``KMeans(backend="spark-ml")`` translates the parameters, lets MLlib run initialization
and every Lloyd iteration inside the JVM, and returns the same fitted attributes as the
other backends. What MLlib cannot do is refused by :meth:`SparkMLBackend.check_fit`
before any Spark job, with an error naming the backend that can.

**Translation.** ``n_clusters -> k``, ``max_iter -> maxIter``, ``tol -> tol``, ``seed ->
seed`` (always passed: MLlib's default seed changes from process to process),
``init="random"|"k-means||" -> initMode`` (k-means|| rounds -> ``initSteps``),
``sample_weight -> weightCol``, ``distance="l2" -> distanceMeasure="euclidean"``,
``distance="cosine" -> distanceMeasure="cosine"`` (the same spherical k-means, see
:mod:`kmeans.distance.cosine`; all-zero rows are refused before MLlib runs). Our
defaults win over MLlib's (``max_iter=300``, not MLlib's 20). An explicit ``(k, d)`` array
of initial centers goes through the RDD-based ``pyspark.mllib`` API (the JVM entry point
of ``pyspark.mllib.clustering.KMeans.train(..., initialModel=...)``, called directly so
that MLlib's iteration count is kept), since ``pyspark.ml`` cannot take initial centers.

**Meaning of the results.** ``inertia_`` and ``cluster_sizes_`` are computed by this
adapter in one pass against MLlib's *final* centers with the ``numpy`` backend's kernel
(MLlib's ``trainingCost`` is the cost of the centers before its last update), so they
mean the same on every backend. For DataFrame input that pass runs on the first read of
either attribute, not in ``fit`` (as MLlib's own summary is lazy), and the rows are
checked by MLlib's own first pass (see :func:`_from_dataframe`), so a fit costs what
calling MLlib costs plus one short read of the first rows.
``n_iter_`` is MLlib's iteration count; ``converged_`` is True when MLlib stopped before
``max_iter``. ``history_`` is empty: MLlib reports no per-iteration state.

**Differences that remain** (documented in ``docs/spark-ml.md``): MLlib stops when every
center moved at most ``tol`` (Euclidean) or none moved, as we do, but an
empty cluster keeps its old center (we move it to the farthest row); MLlib's random and
k-means|| draws ignore sample weights and depend on the partitioning; its random
initialization may return fewer than ``k`` centers when it draws duplicate rows, which
this adapter reports as an error.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import registry
from kmeans._random import derive_seed
from kmeans._types import Deferred, FitResult, FitSpec, Float64Array
from kmeans._validation import check_points, check_weights
from kmeans.backends._spark import blocks, frames, inputs, mllib
from kmeans.backends._spark import session as spark_session
from kmeans.backends.spark_rdd import SparkRDDBackend, SparkRDDDataset
from kmeans.dataset import BlockDataset
from kmeans.distance.base import Distance
from kmeans.distance.l2 import L2
from kmeans.driver import evaluate
from kmeans.errors import ValidationError
from kmeans.init._sampling import distinct_rows, first_distinct
from kmeans.init.explicit import ExplicitCenters
from kmeans.init.kmeans_parallel import KMeansParallel
from kmeans.init.random import Random
from kmeans.protocols import AssignStep

spark_session.require_pyspark()  # fail at registry lookup with the install hint, not deep inside a fit

#: MLlib's k-means|| draws ``2 k`` candidates per round; other oversampling factors cannot be passed.
MLLIB_OVERSAMPLING = 2.0
#: Rows read first when looking for ``k`` distinct rows (most data has them near the top).
DISTINCT_HEAD_ROWS = 256
SOLVERS = ("auto", "row", "block")

_FEATURES = "__kmeans_features"
_VALUES = "__kmeans_values"
_WEIGHT = "__kmeans_weight"

#: Our distances MLlib has, and its ``distanceMeasure`` names for them.
MLLIB_MEASURES = {"l2": "euclidean", "cosine": "cosine"}

_ALTERNATIVES = "backend='spark-rdd' (the same Spark data, every strategy of this library) or backend='numpy'"


def _fewer_centers(init: str, found: int | None, k: int) -> ValidationError:
    got = f"fewer than {k}" if found is None else f"only {found}"
    return ValidationError(
        f"MLlib's init={init!r} returned {got} distinct centers for n_clusters={k}: it drops duplicate rows "
        "from its draw, and this data has many identical rows. Use init='k-means||', another seed, or "
        f"{_ALTERNATIVES}, whose initializers always draw n_clusters distinct rows"
    )


def _refuse(what: str, supported: str) -> ValidationError:
    return ValidationError(f"backend='spark-ml' cannot {what}: MLlib supports {supported}. Use {_ALTERNATIVES}")


# -- the dataset -----------------------------------------------------------------------------


class SparkMLDataset:
    """Validated input as MLlib will read it: a DataFrame with a vector column.

    ``frame`` is what MLlib fits on: the caller's own DataFrame when it already has a
    vector column (so MLlib reads the caller's cache), else a DataFrame this adapter built
    and cached (``owned``; dropped by :meth:`unpersist`). ``features_col`` and
    ``weight_col`` name its columns. ``local`` keeps ndarray input on the driver, so its
    labels and distinct-row checks need no Spark job.

    Validation is one SQL aggregate (no Python workers), deferred for DataFrame input
    until something needs it (see :func:`_from_dataframe`); the inertia, cluster weights and
    labels of the final centers are computed by the ``numpy`` backend's L2 kernel in
    Python workers fed with Arrow batches. :meth:`map_reduce`, needed only by strategies
    MLlib does not use, converts the frame into NumPy blocks on first use.
    """

    def __init__(
        self,
        frame: Any,
        *,
        features_col: str,
        weight_col: str | None,
        n_rows: int | None,
        n_features: int | None,
        total_weight: float | None,
        integer_valued: bool,
        source: str,
        owned: bool,
        local: tuple[NDArray[Any], Float64Array | None] | None = None,
        sources: tuple[Any, ...] = (),
        validate: Callable[[], tuple[int, int, float]] | None = None,
    ) -> None:
        self.frame = frame
        #: The full validation job, run only when needed (see :func:`_from_dataframe`).
        self._validate = validate
        self._head: Float64Array | None = None
        #: Broadcasts an array input is read from (see :func:`_from_array`).
        self.sources = sources
        if sources:
            weakref.finalize(self, blocks._destroy_all, sources)
        self.features_col = features_col
        self.weight_col = weight_col
        self._n_rows = n_rows
        self._n_features = n_features
        self._total_weight = total_weight
        self._integer_valued = integer_valued
        self.source = source
        self.owned = owned
        self.local = local
        self._blocks: SparkRDDDataset | None = None
        self._values_frame: Any = None
        self._head_truncated = False

    # -- the Dataset protocol ---------------------------------------------------------

    def _stats(self) -> None:
        """Run the full validation job (raising its detailed errors) if a count is still unknown."""
        if self._n_rows is None or self._total_weight is None or self._n_features is None:
            self.check_rows()

    def check_rows(self) -> None:
        """Run the full validation job if it was deferred and has not run: a ValidationError if a row is bad."""
        if self._validate is not None:
            self._n_rows, self._n_features, self._total_weight = self._validate()
            self._validate = None

    @property
    def n_rows(self) -> int:
        self._stats()
        assert self._n_rows is not None
        return self._n_rows

    @property
    def n_features(self) -> int:
        if self._n_features is None:
            head = self._head_rows(1)
            if head.shape[0] == 0:
                self._stats()  # no row of positive weight in the head: count and check everything
            else:
                self._n_features = head.shape[1]
        assert self._n_features is not None
        return self._n_features

    @property
    def total_weight(self) -> float:
        self._stats()
        assert self._total_weight is not None
        return self._total_weight

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float64)  # MLlib computes in double precision

    @property
    def integer_valued(self) -> bool:
        return self._integer_valued

    @property
    def distinct(self) -> bool:
        return False

    def map_reduce(self, fn: Callable[[Any], Any], merge: Callable[[Any, Any], Any]) -> Any:
        if self._blocks is None:
            values = self.values_frame().selectExpr(f"v AS {_VALUES}", f"w AS {_WEIGHT}")
            weight = _WEIGHT if self.weight_col is not None else None
            data = frames.blocks_from_dataframe(values, weight, features=_VALUES)
            self._blocks = SparkRDDDataset(data, source=self.source)
        return self._blocks.map_reduce(fn, merge)

    def compress(self) -> SparkMLDataset:
        raise ValidationError(
            f"backend='spark-ml' hands MLlib the rows as given and cannot compress them; use {_ALTERNATIVES}"
        )

    # -- cheap SQL passes -------------------------------------------------------------

    def values_frame(self) -> Any:
        """The frame as ``(v: array<double>, w: double)`` (weight 1.0 without weights), made once.

        A vector column is read as the struct it is stored as (see :func:`_with_struct`):
        a dense vector's elements are its ``values``, read in place; only sparse rows go
        through ``vector_to_array`` (a UDF that copies every row). Made once because every
        Column built through ``pyspark.sql.functions`` costs py4j round trips; the passes
        on it are SQL text.
        """
        if self._values_frame is None:
            weight = "1D" if self.weight_col is None else _double_sql(self.weight_col)
            frame = _with_struct(self.frame, self.features_col)
            values = f"IF({_STRUCT}.type = 1, {_STRUCT}.values, {_SPARSE})"
            self._values_frame = frame.selectExpr(f"{values} AS v", f"{weight} AS w")
        return self._values_frame

    def max_values(self) -> tuple[float, float]:
        """Largest ``|x|`` and weight, in one SQL aggregate.

        Not the optional ``value_range`` (a fit would pay for it every time): the adapter
        reads it only when MLlib's centers show the data may be out of range (:func:`_check_range`).
        """
        row = self.values_frame().selectExpr("max(array_max(transform(v, x -> abs(x)))) AS m", "max(w) AS w").first()
        return float(row["m"] or 0.0), float(row["w"] or 0.0)

    def _positive_values(self) -> Any:
        """The ``v`` column of the rows of positive weight."""
        return self.values_frame().where("w > 0").selectExpr("v")

    def _head_rows(self, limit: int) -> Float64Array:
        """The first rows of positive weight (at least :data:`DISTINCT_HEAD_ROWS`), fetched once.

        Rows that are null, of different lengths or not finite are not fitted on: the
        full validation job runs and reports them (nothing is fitted before it).
        """
        want = max(DISTINCT_HEAD_ROWS, 4 * limit)
        if self._head is None or (self._head.shape[0] < want and self._head_truncated):
            try:
                rows = self._positive_values().limit(want).collect()
            except Exception:  # e.g. array_to_vector fails on a null: report what is wrong instead
                self._stats()
                raise
            values = [r[0] for r in rows]
            if not values:  # empty, or no positive weight: the job says which
                self._stats()
                return np.empty((0, self.n_features), dtype=np.float64)
            lengths = {len(v) for v in values if v is not None}
            if None in values or len(lengths) > 1 or lengths == {0}:
                self._stats()
                raise ValidationError("the DataFrame has null or malformed feature vectors")  # pragma: no cover
            head = np.array(values, dtype=np.float64).reshape(len(values), -1)
            if not np.isfinite(head).all():
                self._stats()
                raise ValidationError("the DataFrame contains NaN or infinite values")  # pragma: no cover
            self._head, self._head_truncated = head, len(values) == want
        return self._head

    def distinct_rows(self, limit: int) -> Float64Array:
        """Up to ``limit`` distinct rows of positive weight: the first rows, else a ``DISTINCT`` query."""
        if self.local is not None:
            points, weights = self.local
            return distinct_rows(BlockDataset.from_arrays(np.asarray(points, dtype=np.float64), weights), limit)
        head = self._head_rows(limit)
        found = head[first_distinct(head, limit)]
        if found.shape[0] >= limit:
            return found
        self._stats()  # fewer distinct rows than asked in the head: validate everything first
        rows = self._positive_values().distinct().limit(limit).collect()
        return _as_matrix(rows, self.n_features)

    def zero_rows(self) -> tuple[int, int]:
        """``(count, first row)`` of all-zero rows of positive weight: one SQL aggregate (first row ``-1``: unknown).

        What ``distance='cosine'`` reads before a fit, so the same aggregate also refuses rows
        whose norms MLlib cannot compute (:func:`_check_norms`).
        """
        if self.local is not None:
            from kmeans.distance.cosine import zero_rows

            points, weights = self.local
            arr = np.asarray(points, dtype=np.float64)
            row_max = np.max(np.abs(arr), axis=1) if arr.size else np.zeros(0)
            nonzero = row_max[row_max > 0]
            _check_norms(float(nonzero.min(initial=np.inf)), float(nonzero.max(initial=0.0)), arr.shape[1])
            return zero_rows(BlockDataset.from_arrays(arr, weights))
        # a row's largest |x| without a per-element lambda (Spark interprets those row by row)
        m = "greatest(array_max(v), -array_min(v))"
        row = (
            self.values_frame()
            .selectExpr(f"{m} AS m", "w", "size(v) AS d")
            .selectExpr(
                "count_if(w > 0 AND m = 0) AS z", "min(IF(m > 0, m, NULL)) AS lo", "max(m) AS hi", "max(d) AS d"
            )
            .collect()[0]
        )
        if row["hi"] is not None and row["lo"] is not None:
            _check_norms(float(row["lo"]), float(row["hi"]), int(row["d"]))
        return int(row["z"]), -1

    def evaluate(self, centers: Float64Array, distance: Distance = L2) -> tuple[float, Float64Array]:
        """``(inertia, cluster_weights)`` of ``centers`` under ``distance``: one pass, or none for array input.

        Array input is evaluated on the driver. Otherwise each partition streams its
        rows to a Python worker as Arrow batches, where the ``numpy`` backend's own L2
        kernel assigns them (so labels and costs are exactly those of the ``numpy``
        backend, ties to the lowest center index) and one row of partial sums comes
        back. On the raccoon this costs 0.5-0.7 s for any ``k``; the same pass written
        as SQL expressions took 0.5 s at k=2, 0.9 s at k=10 and 15 s at k=32 (Spark's
        generated code for ``k`` distances per row grows past what it compiles well).
        """
        if self.local is not None:  # array input: NumPy on the driver, as the numpy backend computes it
            points, weights = self.local
            local = BlockDataset.from_arrays(np.asarray(points, dtype=np.float64), weights)
            return evaluate(local, centers, distance.assign, distance.update)
        k = centers.shape[0]
        schema = "cost double, weights array<double>"
        rows = self.values_frame().mapInArrow(_arrow_sums(centers, self.n_features, distance), schema).collect()
        inertia = float(sum(float(r["cost"]) for r in rows))
        weights = np.zeros(k, dtype=np.float64)
        for r in rows:
            weights += np.asarray(r["weights"], dtype=np.float64)
        return inertia, weights

    def labels(self, centers: Float64Array, assign: AssignStep) -> Any:
        """Closest center per row: an ndarray for array input, else a lazy RDD of ints in input order.

        The RDD is made on first use (a :class:`~kmeans._types.Deferred`): planning its
        query costs 0.2-0.5 s, which a fit whose ``labels_`` is never read should not pay.
        Rows are assigned by ``assign`` in Python workers, as in :meth:`evaluate`.
        """
        if self.local is not None:
            points = self.local[0]
            return assign.assign(points, centers)[0]
        fn = _arrow_labels(centers, assign, self.n_features)
        return Deferred(lambda: self.values_frame().mapInArrow(fn, "label int").rdd.map(_first))

    def persist(self) -> None:
        """Cache the frame this adapter built (for the fit only: :meth:`unpersist` drops it)."""
        if self.owned and not self.frame.is_cached:
            self.frame.cache()

    def unpersist(self) -> None:
        """Drop what this adapter cached (never the caller's own cache)."""
        if self.owned and self.frame.is_cached:
            self.frame.unpersist(blocking=False)
        for source in self.sources:
            source.unpersist(blocking=False)
        if self._blocks is not None:
            self._blocks.unpersist()
            self._blocks = None

    def __repr__(self) -> str:
        return (
            f"SparkMLDataset(n_rows={self._n_rows}, n_features={self._n_features}, source={self.source!r}, "
            f"weighted={self.weight_col is not None})"
        )


#: The columns :func:`_with_struct` adds.
_STRUCT = "__kmeans_struct"
_SPARSE = "__kmeans_sparse"


def _plain_name(name: str) -> bool:
    """Whether MLlib's ``featuresCol``/``weightCol`` can take ``name`` as given (no dots, backticks)."""
    return "." not in name and "`" not in name


def _double_sql(column: str) -> str:
    """SQL of ``column`` cast to double (how weights are read)."""
    return f"CAST({frames.quote(column)} AS DOUBLE)"


def _with_struct(df: Any, column: str) -> Any:
    """``df`` plus the vector ``column`` as the struct it is stored as (:data:`_STRUCT`) and as
    ``vector_to_array`` makes it (:data:`_SPARSE`, for sparse rows only).

    That struct is ``(type: 0 sparse | 1 dense, size, indices, values)``; a dense
    vector's elements are its ``values``, read in place. ``vector_to_array`` is a UDF
    that copies each row; in ``IF(type = 1, values, sparse)`` Spark evaluates it only for
    sparse rows. Made on the JVM objects directly (6 py4j round trips, against about 60
    through ``pyspark.sql.functions``).
    """
    from pyspark.sql import DataFrame

    jvm = df.sparkSession.sparkContext._jvm
    jcol = df._jdf.col(frames.quote(column))
    struct = _jvm_function(jvm, "sql").unwrap_udt(jcol)
    jdf = df._jdf.withColumn(_STRUCT, struct).withColumn(
        _SPARSE, _jvm_function(jvm, "ml").vector_to_array(jcol, "float64")
    )
    return DataFrame(jdf, df.sparkSession)


@functools.lru_cache(maxsize=8)
def _jvm_function(jvm: Any, package: str) -> Any:
    """``org.apache.spark.sql.functions`` or ``org.apache.spark.ml.functions``, looked up once."""
    return jvm.org.apache.spark.sql.functions if package == "sql" else jvm.org.apache.spark.ml.functions


def _first(row: Any) -> int:
    return int(row[0])


def _as_matrix(rows: list[Any], d: int) -> Float64Array:
    if not rows:
        return np.empty((0, d), dtype=np.float64)
    return np.array([r[0] for r in rows], dtype=np.float64)


def _arrow_points(batch: Any, d: int) -> tuple[Float64Array, Float64Array]:
    """The ``(v, w)`` columns of an Arrow batch of :meth:`SparkMLDataset.values_frame` as arrays."""
    points = np.asarray(batch.column(0).flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    weights = np.asarray(batch.column(1).to_numpy(zero_copy_only=False), dtype=np.float64)
    return points.reshape(-1, d), weights


def _arrow_sums(centers: Float64Array, d: int, distance: Distance = L2) -> Callable[[Any], Any]:
    """mapInArrow body: one row ``(cost, weights)`` of the partition's weighted costs and cluster weights."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        cost, weights = 0.0, np.zeros(centers.shape[0], dtype=np.float64)
        for batch in batches:  # the driver's evaluate; no bounds to keep for one pass, so no fused update
            rows = BlockDataset.from_arrays(*_arrow_points(batch, d))
            batch_cost, batch_weights = evaluate(rows, centers, distance.assign)
            cost += batch_cost
            weights += batch_weights
        yield pa.RecordBatch.from_arrays(
            [pa.array([cost]), pa.array([weights.tolist()], type=pa.list_(pa.float64()))], names=["cost", "weights"]
        )

    return run


def _arrow_labels(centers: Float64Array, assign: AssignStep, d: int) -> Callable[[Any], Any]:
    """mapInArrow body: the closest center of every row, batch by batch (input order kept)."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        for batch in batches:
            labels = assign.assign(_arrow_points(batch, d)[0], centers)[0]
            yield pa.RecordBatch.from_arrays([pa.array(np.asarray(labels, dtype=np.int32))], names=["label"])

    return run


# -- building the dataset --------------------------------------------------------------------


def _values_expr(df: Any, spec: frames.FeatureSpec) -> Any:
    """The feature columns of ``df`` as one ``array<double>`` expression (not for vector columns)."""
    from pyspark.sql import functions as sf

    if spec.kind == "array":
        return frames.column(spec.columns[0]).cast("array<double>")
    return sf.array(*[frames.column(c).cast("double") for c in spec.columns])


def _validate_frame(df: Any, spec: frames.FeatureSpec, what: str) -> tuple[int, int, float]:
    """One aggregate job over ``df``: ``(n_rows, n_features, total_weight)``, or a ValidationError.

    The checks avoid per-element lambdas, which Spark interprets row by row: a value is
    non-finite iff the array's largest element is NaN or +inf (Spark orders NaN above
    every number) or its smallest is -inf. A vector column is read as the struct it is
    stored as (``unwrap_udt``: dense values in ``values``; a sparse vector's size in
    ``size``, its non-zeros in ``values``). The aggregates are SQL text, parsed in one
    JVM call: every Column operation built with ``pyspark.sql.functions`` is a py4j round
    trip (1-3 ms each here).
    """
    inf = "double('Infinity')"
    w = [] if spec.weight is None else [f"{_double_sql(spec.weight)} AS w"]
    if spec.kind == "vector":
        base = _with_struct(df, spec.columns[0]).selectExpr(f"{_STRUCT} AS u", *w)
        values, size, nulls = "u.values", "IF(u.type = 1, size(u.values), u.size)", "u IS NULL"
    else:
        from pyspark.sql import functions as sf

        base = df.select(_values_expr(df, spec).alias("v"), *[sf.expr(x) for x in w])
        values, size = "v", "size(v)"
        if spec.kind == "array":
            nulls = "v IS NULL OR exists(v, x -> x IS NULL)"
        else:  # one column per feature: test each element, no lambda
            nulls = " OR ".join(f"v[{j}] IS NULL" for j in range(len(spec.columns)))
    stats = {
        "n": "count(1)",
        "nulls": f"count_if({nulls})",
        "nonfinite": f"count_if(NOT (array_max({values}) < {inf} AND array_min({values}) > -{inf}))",
        "dmin": f"min({size})",
        "dmax": f"max({size})",
    }
    if spec.weight is not None:
        stats |= {
            "wnull": "count_if(w IS NULL)",
            "wbad": f"count_if(isnan(w) OR w = {inf})",
            "wneg": "count_if(w < 0)",
            "wsum": "sum(CASE WHEN w > 0 THEN w ELSE 0D END)",
        }
    row = base.selectExpr(*[f"{expr} AS {name}" for name, expr in stats.items()]).collect()[0]
    n = int(row["n"])
    problems: tuple[tuple[str, int | None], ...] = ()
    total = float(n)
    if spec.weight is not None:
        kinds = (("wnull", "null"), ("wbad", "NaN or infinite"), ("wneg", "negative"))
        problems = tuple((kind, int(row[key])) for key, kind in kinds if row[key])
        total = float(row["wsum"] or 0.0)
    widths = () if n == 0 else (int(row["dmin"]), int(row["dmax"]))
    blocks.check_row_stats(
        blocks.RowStats(n, widths, int(row["nonfinite"] or 0), None, int(row["nulls"] or 0), problems, total), what
    )
    return n, int(row["dmin"]), total


def _from_dataframe(df: Any, sample_weight: Any, features: Any) -> SparkMLDataset:
    """A DataFrame as MLlib reads it; no Spark job runs here.

    Validation is deferred: MLlib checks every row in its first pass (null, NaN or
    infinite vectors, vectors of different lengths, bad weights) and fails; the adapter
    then runs the full validation job (:func:`_validate_frame`), whose error says what is
    wrong and in how many rows. Before the fit, the estimator's distinct-rows check
    reads the first rows, and a bad one there runs that job at once. A separate job
    before MLlib cost 0.2-0.4 s on the raccoon, 5-10% of a 10-iteration fit; checks
    of our own inside MLlib's passes cost more (MLlib reads its input about 8 times).
    """
    from pyspark.ml.functions import array_to_vector

    spec = frames.resolve_features(df, features, sample_weight)
    weight = None if spec.weight is None else frames.column(spec.weight).cast("double")

    def validate() -> tuple[int, int, float]:
        return _validate_frame(df, spec, "the DataFrame")

    if spec.kind == "vector":  # MLlib reads the caller's DataFrame (and its cache) as it is
        frame, features_col, weight_col = df, spec.columns[0], spec.weight
        if not all(map(_plain_name, (features_col, weight_col or ""))):
            # MLlib resolves a.b as field b of column a: hand it the columns under plain names
            frame = df.select(
                frames.column(features_col).alias(_FEATURES),
                *([] if weight_col is None else [frames.column(weight_col).alias(_WEIGHT)]),
            )
            features_col, weight_col = _FEATURES, None if weight_col is None else _WEIGHT
        return SparkMLDataset(
            frame,
            features_col=features_col,
            weight_col=weight_col,
            n_rows=None,
            n_features=None,
            total_weight=None,
            integer_valued=spec.integer,
            source="dataframe",
            owned=False,
            validate=validate,
        )
    values = _values_expr(df, spec)
    cols = [array_to_vector(values).alias(_FEATURES), *([] if weight is None else [weight.alias(_WEIGHT)])]
    return SparkMLDataset(
        df.select(*cols),
        features_col=_FEATURES,
        weight_col=None if weight is None else _WEIGHT,
        n_rows=None,
        n_features=len(spec.columns) if spec.kind == "columns" else None,
        total_weight=None,
        integer_valued=spec.integer,
        source="dataframe",
        owned=True,
        validate=validate,
    )


def _vector_frame(df: Any, values: Any, weighted: bool, partitions: int | None = None) -> Any:
    """``df`` as a cached DataFrame ``(vector features[, weight])``, in ``partitions`` partitions if given.

    Fewer partitions are made by merging neighbours (no shuffle, row order kept); more by
    Spark's deterministic round-robin repartition.
    """
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as sf

    cols = [array_to_vector(values).alias(_FEATURES), *([sf.col(_WEIGHT)] if weighted else [])]
    frame = df.select(*cols)
    if partitions is not None:
        have = frame.rdd.getNumPartitions()
        frame = frame.coalesce(partitions) if have > partitions else frame.repartition(partitions)
    return frame


def _arrow_blocks(handles: tuple[Any, ...], names: list[str], weighted: bool) -> Callable[[Any], Any]:
    """mapInArrow body: partition ``p`` (one ``id`` row) yields block ``p`` from its broadcast."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        for batch in batches:
            for p in batch.column(0).to_pylist():
                points, weights = handles[p].value
                cols = [pa.array(points[:, j]) for j in range(points.shape[1])]
                if weighted:
                    cols.append(pa.array(weights))
                yield pa.RecordBatch.from_arrays(cols, names=names)

    return run


def _from_array(X: Any, sample_weight: Any, num_partitions: int | None) -> SparkMLDataset:
    """An ndarray as a cached vector DataFrame, read from one broadcast per partition.

    Not ``createDataFrame(pandas)``: that keeps the rows inside the partitions of a
    parallelized collection, serialized into every task of every MLlib job (dozens per
    fit); on the raccoon the driver's 1 GiB heap ran out after a few fits and the
    scheduler thread died (see :func:`kmeans.backends._spark.broadcast_slices`).
    """
    from pyspark.sql import functions as sf

    arr = check_points(X)
    weights = check_weights(sample_weight, arr.shape[0])
    points = np.asarray(arr, dtype=np.float64)
    session = spark_session.get_session()
    names = [f"x{j}" for j in range(points.shape[1])]
    parts = max(1, min(points.shape[0], num_partitions or session.sparkContext.defaultParallelism))
    _, handles = blocks.broadcast_slices(session.sparkContext, points, weights, parts)
    schema = ", ".join([*(f"{c} double" for c in names), *([f"{_WEIGHT} double"] if weights is not None else [])])
    columns = [*names, *([_WEIGHT] if weights is not None else [])]
    rows = session.range(0, parts, 1, parts).mapInArrow(_arrow_blocks(handles, columns, weights is not None), schema)
    values = sf.array(*[sf.col(c) for c in names])
    frame = _vector_frame(rows, values, weights is not None)
    return SparkMLDataset(
        frame,
        features_col=_FEATURES,
        weight_col=None if weights is None else _WEIGHT,
        n_rows=points.shape[0],
        n_features=points.shape[1],
        total_weight=float(points.shape[0]) if weights is None else float(weights.sum()),
        integer_valued=arr.dtype.kind in "biu",
        source="array",
        owned=True,
        local=(arr if arr.dtype in (np.float32, np.float64) else points, weights),
        sources=handles,
    )


def _from_rdd(rdd: Any) -> SparkMLDataset:
    data = blocks.blocks_from_rdd(rdd)  # validates every row, in one pass that caches blocks
    try:
        from pyspark.sql import functions as sf

        rows = spark_session.get_session().createDataFrame(data.blocks.flatMap(_block_rows), f"{_VALUES} array<double>")
        frame = _vector_frame(rows, sf.col(_VALUES), False)
    finally:
        data.unpersist()
    return SparkMLDataset(
        frame,
        features_col=_FEATURES,
        weight_col=None,
        n_rows=data.n_rows,
        n_features=data.n_features,
        total_weight=data.total_weight,
        integer_valued=data.integer_valued,
        source="rdd",
        owned=True,
    )


def _block_rows(block: Any) -> list[tuple[list[float]]]:
    return [(row,) for row in np.asarray(block.points, dtype=np.float64).tolist()]


@attrs.frozen
class SparkMLBackend:
    """Hands the fit to Spark MLlib's ``KMeans`` (see the module docstring).

    ``init_steps`` is MLlib's ``initSteps`` for ``init="k-means||"`` (``None``: the rounds of
    the k-means|| initializer, 2 by default). ``solver`` is MLlib's: ``"block"`` (default,
    about 1.5x faster than ``"row"`` on dense vectors here), ``"row"`` or ``"auto"``.
    ``num_partitions`` applies to ndarray input (default: ``defaultParallelism``).
    """

    name: str = "spark-ml"
    array_input = True  # an (n, d) array-like: fit may hand it an exactly rescaled copy
    default_init = "k-means||"  # init="auto": MLlib's own default
    init_steps: int | None = attrs.field(default=None)
    solver: str = attrs.field(default="block")
    num_partitions: int | None = None

    @init_steps.validator
    def _check_init_steps(self, attribute: Any, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValidationError(f"init_steps must be None or an integer >= 1, got {value!r}")

    @solver.validator
    def _check_solver(self, attribute: Any, value: str) -> None:
        if value not in SOLVERS:
            raise ValidationError(f"solver must be one of {SOLVERS}, got {value!r}")

    # -- refusals, before any Spark job -------------------------------------------------

    def check_fit(self, spec: FitSpec, sample_weight: Any = None) -> None:
        """Raise :class:`ValidationError` for anything MLlib cannot do; touches no data."""
        if spec.algorithm is not None:
            raise _refuse("run algorithm='minibatch'", "MLlib's own Lloyd iterations only; use backend='spark-rdd'")
        if _measure(spec.distance) is None:
            name = getattr(spec.distance, "name", repr(spec.distance))
            raise _refuse(
                f"use distance={name!r}",
                "distance='l2' (squared Euclidean, 'euclidean' in MLlib) and distance='cosine' only",
            )
        init = spec.initializer
        supported = "init='random', init='k-means||' or an (n_clusters, n_features) array of initial centers"
        if type(init) not in (Random, KMeansParallel, ExplicitCenters):
            name = getattr(init, "name", type(init).__name__)
            raise _refuse(f"use init={name!r}", supported)
        if isinstance(init, KMeansParallel) and init.oversampling != MLLIB_OVERSAMPLING:
            raise _refuse(
                f"use k-means|| with oversampling={init.oversampling}",
                f"oversampling={MLLIB_OVERSAMPLING} only (2 k candidates per round); set its rounds with init_steps",
            )
        if isinstance(init, ExplicitCenters) and sample_weight is not None and spec.max_iter > 0:
            raise _refuse(
                "combine explicit initial centers with sample_weight",
                "initial centers only through the RDD-based pyspark.mllib API, which takes no weights; "
                "weights work with init='random' or init='k-means||'",
            )
        if spec.callbacks:
            raise _refuse(
                "call callbacks after every iteration",
                "no per-iteration hook (all iterations run inside one JVM call)",
            )
        if spec.compress is True:
            raise _refuse("compress the data", "fitting on the rows as given (compress='auto' leaves them as they are)")
        if spec.n_clusters < 2:
            raise _refuse(f"fit n_clusters={spec.n_clusters}", "k >= 2 only (pyspark.ml.clustering.KMeans)")

    # -- the Backend protocol -------------------------------------------------------------

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> SparkMLDataset:
        if isinstance(X, SparkMLDataset):
            return X
        if inputs.is_dataframe(X):
            return _from_dataframe(X, sample_weight, features)
        if features is not None:
            raise ValidationError("features= selects DataFrame columns; it cannot be used with an array or an RDD")
        if inputs.is_rdd(X):
            if sample_weight is not None:
                raise ValidationError(
                    "sample_weight is not supported with an RDD input (its order cannot be matched to the rows); "
                    "pass a DataFrame with a weight column (sample_weight='column') or an ndarray"
                )
            return _from_rdd(X)
        return _from_array(X, sample_weight, self.num_partitions)

    def fit(self, dataset: Any, spec: FitSpec) -> FitResult:
        """``spec.n_init`` MLlib fits (restart ``r > 0`` seeded ``derive_seed(seed, r)``); lowest inertia wins."""
        self.check_fit(spec, dataset.weight_col)
        dataset.persist()
        inertia: float | Deferred[float]
        weights: Float64Array | Deferred[Float64Array]
        inertias: tuple[float, ...]
        try:
            if spec.n_init == 1 and dataset.source == "dataframe":
                # restart 0 uses the seed itself, so a single fit equals calling MLlib with that seed
                run = self._run(dataset, spec, spec.seed)
                centers, run_seed, inertias = run.centers, spec.seed, ()
                inertia, weights = _lazy_evaluation(dataset, centers, spec.distance)
            else:
                best: tuple[float, Float64Array, Float64Array, mllib.MLlibRun, int] | None = None
                scores: list[float] = []
                for r in range(spec.n_init):
                    run_seed = spec.seed if r == 0 else derive_seed(spec.seed, r)
                    run = self._run(dataset, spec, run_seed)
                    score, sizes = dataset.evaluate(run.centers, spec.distance)
                    scores.append(score)
                    if best is None or score < best[0]:
                        best = (score, sizes, run.centers, run, run_seed)
                assert best is not None
                inertia, weights, centers, run, run_seed = best
                inertias = tuple(scores)
            labels = dataset.labels(centers, spec.distance.assign)
        finally:
            dataset.unpersist()
        return FitResult(
            centers=centers,
            inertia=inertia,
            n_iter=run.n_iter,
            cluster_weights=weights,
            history=(),
            converged=run.n_iter < spec.max_iter,
            seed=run_seed,
            labels=labels,
            restarts=inertias,
        )

    def predict(self, X: Any, centers: Float64Array, assign: AssignStep, *, features: Any = None) -> Any:
        """As on ``spark-rdd``: ndarray -> labels; RDD -> lazy RDD of labels; DataFrame -> + ``prediction``."""
        return SparkRDDBackend().predict(X, centers, assign, features=features)

    # -- MLlib calls ------------------------------------------------------------------------

    def _run(self, dataset: SparkMLDataset, spec: FitSpec, seed: int) -> mllib.MLlibRun:
        init, k = spec.initializer, spec.n_clusters
        measure = _measure(spec.distance) or "euclidean"
        context = dataset.frame.sparkSession.sparkContext
        if isinstance(init, ExplicitCenters):
            dataset.check_rows()  # the RDD-based API checks nothing: NaN rows would give NaN centers
            if spec.max_iter == 0:  # the given centers are the result (MLlib would run no update): no MLlib call
                return mllib.MLlibRun(init.centers.copy(), 0, float("nan"))
            steps = self.init_steps if self.init_steps is not None else 2
            params = mllib.MLlibParams(k, spec.max_iter, spec.tol, seed, measure, steps, self.solver)
            return mllib.fit_rdd(dataset.frame, dataset.features_col, init.centers, params)
        steps = self.init_steps if self.init_steps is not None else getattr(init, "rounds", 2)
        params = mllib.MLlibParams(k, spec.max_iter, spec.tol, seed, measure, steps, self.solver)
        before = mllib.persistent_ids(context)
        try:
            run = mllib.fit_ml(
                dataset.frame, dataset.features_col, dataset.weight_col, dataset.n_features, init.name, params
            )
        except Exception as exc:
            mllib.unpersist_new(context, before)  # a failed MLlib fit leaves its cached training instances behind
            # MLlib fails on null, NaN or infinite vectors, vectors of different lengths and
            # bad weights in its first pass (its own row checks): say which, and how many
            dataset.check_rows()
            _check_range(dataset, None, spec)  # infinite distances make MLlib's draws fail too
            # MLlib's block solver indexes k centers even when its initialization found
            # fewer, and fails with this exception; the row solver returns the fewer centers.
            text = str(exc)
            if "ArrayIndexOutOfBoundsException" in text and "KMeansAggregator" in text:
                raise _fewer_centers(init.name, None, k) from exc
            raise
        _check_range(dataset, run.centers, spec)
        if not np.isfinite(run.centers).all():  # never seen: MLlib checks its rows; but say why if so
            dataset.check_rows()
            raise RuntimeError(f"MLlib returned non-finite centers from valid input: {run.centers.tolist()}")
        if run.centers.shape[0] < k:
            raise _fewer_centers(init.name, run.centers.shape[0], k)
        return run


def _check_range(dataset: SparkMLDataset, centers: Float64Array | None, spec: FitSpec) -> None:
    """Refuse data whose squared distances overflow or underflow in MLlib (it cannot be rescaled there).

    Centers are weighted means of rows, so data in range give centers in range; only
    centers out of range (or non-finite), or a failed MLlib fit (``centers=None``), make the
    adapter read the data's range.
    """
    from kmeans._scale import max_abs, range_exponent, squares

    if not squares(spec.distance) or dataset.dtype.kind != "f":
        return
    if centers is not None:
        finite = centers[np.isfinite(centers)]
        big = max_abs(finite)
        if finite.size == centers.size and range_exponent(big, dataset.dtype, dataset.n_features) == 0:
            return
    largest, _ = dataset.max_values()
    if range_exponent(largest, dataset.dtype, dataset.n_features) != 0:
        raise ValidationError(
            f"backend='spark-ml' cannot fit data of magnitude {largest:g}: squared distances overflow or "
            "underflow in MLlib, which cannot rescale them. Rescale the data, or use backend='spark-rdd' "
            "(rescaled exactly by a power of two)"
        )


def _check_norms(lo: float, hi: float, n_features: int) -> None:
    """Refuse rows MLlib's cosine cannot measure: ``lo``/``hi``, the least and largest row maximum ``|x|``.

    MLlib computes each norm as ``sqrt(sum x^2)`` in doubles (``Vectors.norm``): beyond the
    safe range of :func:`kmeans._scale.safe_range` it is ``inf`` (every cosine 0 or NaN) or
    loses bits to underflow, down to 0 (an assertion failure). Cosine ignores each row's scale,
    but MLlib's rows are the caller's, so it cannot be rescaled here. NaN (``hi``) is left to
    the validation, which names it.
    """
    from kmeans._scale import range_exponent

    dtype = np.dtype(np.float64)
    if not (np.isfinite(hi) and np.isfinite(lo)):
        return
    if range_exponent(hi, dtype, n_features) == 0 and range_exponent(lo, dtype, n_features) == 0:
        return
    raise ValidationError(
        f"backend='spark-ml' cannot fit distance='cosine' on rows whose largest |x| ranges from {lo:g} to "
        f"{hi:g}: MLlib computes row norms as sqrt(sum x^2) in doubles, which overflow or underflow there. "
        "Rescale each row (cosine ignores a row's scale), or use backend='spark-rdd' (rescaled exactly "
        "by a power of two)"
    )


def _measure(distance: Any) -> str | None:
    """MLlib's ``distanceMeasure`` for one of our built-in distances, ``None`` for any other."""
    for name, measure in MLLIB_MEASURES.items():
        if distance == registry.distances[name]:
            return measure
    return None


def _lazy_evaluation(
    dataset: SparkMLDataset, centers: Float64Array, distance: Distance = L2
) -> tuple[Deferred[float], Deferred[Float64Array]]:
    """``(inertia, cluster_weights)`` of ``centers``, made by one pass on the first read of either.

    For DataFrame input only: the pass reads the caller's DataFrame again (cached or
    not), as MLlib's own ``summary`` does; array input is evaluated on the driver and
    RDD input before its cache is dropped.
    """
    both: Deferred[tuple[float, Float64Array]] = Deferred(lambda: dataset.evaluate(centers, distance))
    return Deferred(lambda: both.get()[0]), Deferred(lambda: both.get()[1])
