"""The ``spark-ml`` backend: an honest adapter that hands the whole fit to Spark MLlib.

``KMeans(backend="spark-ml")`` translates the parameters, lets MLlib run initialization
and every Lloyd iteration inside the JVM, and returns the same fitted attributes as the
other backends. What MLlib cannot do is refused by :meth:`SparkMLBackend.check_fit`
before any Spark job, with an error naming the backend that can.

**Translation.** ``n_clusters -> k``, ``max_iter -> maxIter``, ``tol -> tol``, ``seed ->
seed`` (always passed: MLlib's default seed changes from process to process),
``init="random"|"k-means||" -> initMode`` (k-means|| rounds -> ``initSteps``),
``sample_weight -> weightCol``, ``distance="l2" -> distanceMeasure="euclidean"``. Our
defaults win over MLlib's (``max_iter=300``, not MLlib's 20). An explicit ``(k, d)`` array
of initial centers goes through the RDD-based ``pyspark.mllib`` API (the JVM entry point
of ``pyspark.mllib.clustering.KMeans.train(..., initialModel=...)``, called directly so
that MLlib's iteration count is kept), since ``pyspark.ml`` cannot take initial centers.

**Meaning of the results.** ``inertia_`` and ``cluster_sizes_`` are computed by this
adapter in one pass against MLlib's *final* centers (MLlib's ``trainingCost`` is the cost
of the centers before its last update), so they mean the same on every backend.
``n_iter_`` is MLlib's iteration count; ``converged_`` is True when MLlib stopped before
``max_iter``. ``history_`` is empty: MLlib reports no per-iteration state.

**Differences that remain** (documented in ``docs/spark-ml.md``): MLlib stops when every
center moved at most ``tol`` (Euclidean), as we do, but with ``tol=0`` it also stops at
an exact fixed point (we run exactly ``max_iter`` updates; the centers are the same); an
empty cluster keeps its old center (we move it to the farthest row); MLlib's random and
k-means|| draws ignore sample weights and depend on the partitioning; its random
initialization may return fewer than ``k`` centers when it draws duplicate rows, which
this adapter reports as an error.
"""

from __future__ import annotations

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
from kmeans.backends import _spark
from kmeans.backends.numpy import NumPyDataset
from kmeans.backends.spark_rdd import SparkRDDBackend, SparkRDDDataset
from kmeans.errors import ValidationError
from kmeans.init._sampling import distinct_rows, first_distinct
from kmeans.init.explicit import ExplicitCenters
from kmeans.init.kmeans_parallel import KMeansParallel
from kmeans.init.random import Random
from kmeans.protocols import AssignStep

_spark.require_pyspark()  # fail at registry lookup with the install hint, not deep inside a fit

#: MLlib's k-means|| draws ``2 k`` candidates per round; other oversampling factors cannot be passed.
MLLIB_OVERSAMPLING = 2.0
#: Rows read first when looking for ``k`` distinct rows (most data has them near the top).
DISTINCT_HEAD_ROWS = 256
SOLVERS = ("auto", "row", "block")
#: Up to this many ``k × d`` terms, costs are plain SQL arithmetic (see :func:`_nearest_sql`).
EXPANDED_TERMS = 1024

_FEATURES = "__kmeans_features"
_VALUES = "__kmeans_values"
_WEIGHT = "__kmeans_weight"

_ALTERNATIVES = "backend='spark-rdd' (the same Spark data, every strategy of this library) or backend='numpy'"


def mllib_seed(seed: int) -> int:
    """``seed`` folded into MLlib's signed 64-bit range (the same seed gives the same fold)."""
    return ((int(seed) + (1 << 63)) % (1 << 64)) - (1 << 63)


def _fewer_centers(init: str, found: int | None, k: int) -> ValidationError:
    got = "fewer than" if found is None else f"only {found}"
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

    Every pass this class runs is plain Spark SQL (no Python workers); :meth:`map_reduce`,
    needed only by strategies MLlib does not use, converts the frame into NumPy blocks
    on first use.
    """

    def __init__(
        self,
        frame: Any,
        *,
        features_col: str,
        weight_col: str | None,
        n_rows: int,
        n_features: int,
        total_weight: float,
        integer_valued: bool,
        source: str,
        owned: bool,
        local: tuple[NDArray[Any], Float64Array | None] | None = None,
        sources: tuple[Any, ...] = (),
    ) -> None:
        self.frame = frame
        #: Broadcasts an array input is read from (see :func:`_from_array`).
        self.sources = sources
        if sources:
            weakref.finalize(self, _spark._destroy_all, sources)
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

    # -- the Dataset protocol ---------------------------------------------------------

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def n_features(self) -> int:
        return self._n_features

    @property
    def total_weight(self) -> float:
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
            values = self.frame.select(self.values().alias(_VALUES), *self._weight_cols())
            weight = _WEIGHT if self.weight_col is not None else None
            data = _spark.blocks_from_dataframe(values, weight, features=_VALUES)
            self._blocks = SparkRDDDataset(data, source=self.source)
        return self._blocks.map_reduce(fn, merge)

    def compress(self) -> SparkMLDataset:
        raise ValidationError(
            f"backend='spark-ml' hands MLlib the rows as given and cannot compress them; use {_ALTERNATIVES}"
        )

    # -- cheap SQL passes -------------------------------------------------------------

    def values(self) -> Any:
        """The features as an ``array<double>`` column expression."""
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as sf

        return vector_to_array(sf.col(self.features_col))

    def weight(self) -> Any:
        """The weight as a double column expression (1.0 without weights)."""
        from pyspark.sql import functions as sf

        return sf.lit(1.0) if self.weight_col is None else sf.col(self.weight_col).cast("double")

    def _weight_cols(self) -> list[Any]:
        return [] if self.weight_col is None else [self.weight().alias(_WEIGHT)]

    def distinct_rows(self, limit: int) -> Float64Array:
        """Up to ``limit`` distinct rows of positive weight: the first rows, else a ``DISTINCT`` query."""
        if self.local is not None:
            points, weights = self.local
            return distinct_rows(NumPyDataset(np.asarray(points, dtype=np.float64), weights), limit)
        from pyspark.sql import functions as sf

        rows = self.frame.where(self.weight() > 0).select(self.values().alias("v"))
        head = _as_matrix(rows.limit(max(DISTINCT_HEAD_ROWS, 4 * limit)).collect(), self.n_features)
        found = head[first_distinct(head, limit)]
        if found.shape[0] >= limit:
            return found
        return _as_matrix(rows.select(sf.col("v")).distinct().limit(limit).collect(), self.n_features)

    def _near_frame(self, centers: Float64Array) -> Any:
        """``(n: struct(cost, label), w: double)`` per row: the closest center and its squared distance.

        Ties go to the lowest center index (``array_min`` compares ``cost``, then ``label``),
        as on every backend; the cost is ``((x_0 - c_0)² + (x_1 - c_1)²) + ...`` computed
        directly in double, in the same order as the other backends (see
        :func:`_nearest_sql`). Each row's array of values is made once, as ``v``.
        """
        from pyspark.sql import functions as sf

        values = self.frame.select(self.values().alias("v"), self.weight().alias("w"))
        return values.select(sf.expr(_nearest_sql(centers, "v")).alias("n"), "w")

    def evaluate(self, centers: Float64Array) -> tuple[float, Float64Array]:
        """``(inertia, cluster_weights)`` of ``centers`` in one SQL job (no Python workers).

        Up to :data:`EXPANDED_TERMS` centers the per-cluster weights are ``k`` conditional
        sums of one aggregation (no shuffle); above, a ``groupBy`` on the label.
        """
        from pyspark.sql import functions as sf

        k = centers.shape[0]
        near = self._near_frame(centers)
        weights = np.zeros(k, dtype=np.float64)
        inertia = 0.0
        if k <= EXPANDED_TERMS:
            sums = [f"sum(CASE WHEN n.label = {c} THEN w ELSE 0D END) AS w{c}" for c in range(k)]
            row = near.selectExpr("sum(w * n.cost) AS cost", *sums).collect()[0]
            weights[:] = [float(row[f"w{c}"]) for c in range(k)]
            return float(row["cost"] or 0.0), weights
        rows = near.groupBy(sf.col("n.label").alias("label")).agg(
            sf.sum("w").alias("weight"), sf.sum(sf.col("w") * sf.col("n.cost")).alias("cost")
        )
        for row in sorted(rows.collect(), key=lambda r: int(r["label"])):
            weights[int(row["label"])] = float(row["weight"])
            inertia += float(row["cost"])
        return inertia, weights

    def labels(self, centers: Float64Array, assign: AssignStep) -> Any:
        """Closest center per row: an ndarray for array input, else a lazy RDD of ints in input order.

        The RDD is made on first use (a :class:`~kmeans._types.Deferred`): planning its
        query costs 0.2-0.5 s, which a fit whose ``labels_`` is never read should not pay.
        """
        if self.local is not None:
            points = self.local[0]
            return assign.assign(points, centers)[0]
        near = self._near_frame(centers)
        return Deferred(lambda: near.select("n.label").rdd.map(_first))

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
            f"SparkMLDataset(n_rows={self.n_rows}, n_features={self.n_features}, source={self.source!r}, "
            f"weighted={self.weight_col is not None})"
        )


def _first(row: Any) -> int:
    return int(row[0])


def _as_matrix(rows: list[Any], d: int) -> Float64Array:
    if not rows:
        return np.empty((0, d), dtype=np.float64)
    return np.array([r[0] for r in rows], dtype=np.float64)


def _sql_double(value: float) -> str:
    """``value`` as a SQL double literal that parses back to the same bits (``repr`` round-trips)."""
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"centers must be finite, got {v!r}")
    return f"({v!r}D)"


def _nearest_sql(centers: Float64Array, column: str) -> str:
    """SQL text of ``struct(cost, label)`` of the closest center, over the ``array<double>`` ``column``.

    Up to :data:`EXPANDED_TERMS` ``k × d`` terms it is plain arithmetic on the array's
    elements (compiled by Spark's code generation: 5-10x faster than the higher-order
    functions ``zip_with`` / ``aggregate`` used above that size). Written as text rather
    than built with ``pyspark.sql.functions``: every Column
    operation is a call into the JVM (about 1-3 ms each here), and the expanded form has
    ``4 k d`` of them: 0.45 s per expression at k=10, d=3, against 1 ms for one parse.
    """
    k, d = centers.shape
    rows = np.asarray(centers, dtype=np.float64).tolist()
    if k * d <= EXPANDED_TERMS:
        entries = []
        for c, row in enumerate(rows):
            diffs = [f"({column}[{j}] - {_sql_double(v)})" for j, v in enumerate(row)]
            terms = [f"{diff} * {diff}" for diff in diffs]
            cost = terms[0]
            for term in terms[1:]:
                cost = f"({cost}) + ({term})"
            entries.append(f"struct({cost} AS cost, {c} AS label)")
        return f"array_min(array({', '.join(entries)}))"
    table = ", ".join("array(" + ", ".join(_sql_double(v) for v in row) + ")" for row in rows)
    cost = f"aggregate(zip_with({column}, c, (x, y) -> (x - y) * (x - y)), 0D, (acc, t) -> acc + t)"
    return f"array_min(transform(array({table}), (c, i) -> struct({cost} AS cost, i AS label)))"


# -- building the dataset --------------------------------------------------------------------


def _values_expr(df: Any, spec: _spark.FeatureSpec) -> Any:
    """The feature columns of ``df`` as one ``array<double>`` expression."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as sf

    if spec.kind == "vector":
        return vector_to_array(sf.col(spec.columns[0]))
    if spec.kind == "array":
        return sf.col(spec.columns[0]).cast("array<double>")
    return sf.array(*[sf.col(c).cast("double") for c in spec.columns])


def _validate_frame(values: Any, weight: Any, df: Any, what: str) -> tuple[int, int, float]:
    """One aggregate job over ``df``: ``(n_rows, n_features, total_weight)``, or a ValidationError.

    The aggregates are SQL text, parsed in one JVM call (see :func:`_nearest_sql`).
    """
    v = values.alias("v")
    base = df.select(v, *([] if weight is None else [weight.alias("w")]))
    inf = "double('Infinity')"
    stats = {
        "n": "count(1)",
        "nulls": "count_if(v IS NULL OR exists(v, x -> x IS NULL))",
        "nonfinite": f"count_if(exists(v, x -> isnan(x) OR x = {inf} OR x = -{inf}))",
        "dmin": "min(size(v))",
        "dmax": "max(size(v))",
    }
    if weight is not None:
        stats |= {
            "wnull": "count_if(w IS NULL)",
            "wbad": f"count_if(isnan(w) OR w = {inf})",
            "wneg": "count_if(w < 0)",
            "wsum": "sum(CASE WHEN w > 0 THEN w ELSE 0D END)",
        }
    row = base.selectExpr(*[f"{expr} AS {name}" for name, expr in stats.items()]).collect()[0]
    n = int(row["n"])
    if n == 0:
        raise ValidationError(f"{what} is empty: it has 0 rows; K-means needs at least one row")
    if row["nulls"]:
        raise ValidationError(
            f"{what} has null feature values in {row['nulls']} of {n} rows; drop or impute them first"
        )
    if row["dmin"] != row["dmax"]:
        raise ValidationError(
            f"{what} has vectors of different lengths ({row['dmin']} to {row['dmax']}); "
            "every row needs the same number of features"
        )
    if int(row["dmin"]) == 0:
        raise ValidationError(f"{what} has 0 features; K-means needs at least one column")
    if row["nonfinite"]:
        raise ValidationError(
            f"{what} contains NaN or infinite values in {row['nonfinite']} of {n} rows; "
            "remove or impute them before clustering"
        )
    total = float(n)
    if weight is not None:
        for key, kind in (("wnull", "null"), ("wbad", "NaN or infinite"), ("wneg", "negative")):
            if row[key]:
                raise ValidationError(
                    f"the sample weights of {what} contain {kind} values in {row[key]} rows; "
                    "weights must be finite and >= 0"
                )
        total = float(row["wsum"])
        if total <= 0:
            raise ValidationError(
                f"the sample weights of {what} are zero for every row; at least one row needs a positive weight"
            )
    return n, int(row["dmin"]), total


def _from_dataframe(df: Any, sample_weight: Any, features: Any) -> SparkMLDataset:
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as sf

    spec = _spark.resolve_features(df, features, sample_weight)
    values = _values_expr(df, spec)
    weight = None if spec.weight is None else sf.col(spec.weight).cast("double")
    n, d, total = _validate_frame(values, weight, df, "the DataFrame")
    if spec.kind == "vector":  # MLlib reads the caller's DataFrame (and its cache) as it is
        frame, features_col, weight_col, owned = df, spec.columns[0], spec.weight, False
    else:
        cols = [array_to_vector(values).alias(_FEATURES), *([] if weight is None else [weight.alias(_WEIGHT)])]
        frame, features_col, owned = df.select(*cols), _FEATURES, True
        weight_col = None if weight is None else _WEIGHT
    return SparkMLDataset(
        frame,
        features_col=features_col,
        weight_col=weight_col,
        n_rows=n,
        n_features=d,
        total_weight=total,
        integer_valued=spec.integer,
        source="dataframe",
        owned=owned,
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
    session = _spark.get_session()
    names = [f"x{j}" for j in range(points.shape[1])]
    parts = max(1, min(points.shape[0], num_partitions or session.sparkContext.defaultParallelism))
    _, handles = _spark.broadcast_slices(session.sparkContext, points, weights, parts)
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
    data = _spark.blocks_from_rdd(rdd)  # validates every row, in one pass that caches blocks
    try:
        from pyspark.sql import functions as sf

        rows = _spark.get_session().createDataFrame(data.blocks.flatMap(_block_rows), f"{_VALUES} array<double>")
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


# -- running MLlib ---------------------------------------------------------------------------


@attrs.frozen(eq=False)
class MLlibRun:
    """What one MLlib fit returned: centers, iterations run, and its ``trainingCost``."""

    centers: Float64Array
    n_iter: int
    training_cost: float


@attrs.frozen
class SparkMLBackend:
    """Hands the fit to Spark MLlib's ``KMeans`` (see the module docstring).

    ``init_steps`` is MLlib's ``initSteps`` for ``init="k-means||"`` (``None``: the rounds of
    the k-means|| initializer, 2 by default). ``solver`` is MLlib's: ``"block"`` (default,
    about 1.5x faster than ``"row"`` on dense vectors here), ``"row"`` or ``"auto"``.
    ``num_partitions`` applies to ndarray input (default: ``defaultParallelism``).
    """

    name: str = "spark-ml"
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
        if spec.distance != registry.distances["l2"]:
            name = getattr(spec.distance, "name", repr(spec.distance))
            raise _refuse(f"use distance={name!r}", "distance='l2' only (squared Euclidean, 'euclidean' in MLlib)")
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
        if isinstance(init, ExplicitCenters) and sample_weight is not None:
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

    # -- the Backend protocol -------------------------------------------------------------

    def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> SparkMLDataset:
        if isinstance(X, SparkMLDataset):
            return X
        if _spark.is_dataframe(X):
            return _from_dataframe(X, sample_weight, features)
        if features is not None:
            raise ValidationError("features= selects DataFrame columns; it cannot be used with an array or an RDD")
        if _spark.is_rdd(X):
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
        try:
            best: tuple[float, Float64Array, Float64Array, MLlibRun, int] | None = None
            inertias: list[float] = []
            for r in range(spec.n_init):
                # restart 0 uses the seed itself, so a single fit equals calling MLlib with that seed
                run_seed = spec.seed if r == 0 else derive_seed(spec.seed, r)
                run = self._run(dataset, spec, run_seed)
                inertia, weights = dataset.evaluate(run.centers)
                inertias.append(inertia)
                if best is None or inertia < best[0]:
                    best = (inertia, weights, run.centers, run, run_seed)
            assert best is not None
            inertia, weights, centers, run, run_seed = best
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
            restarts=tuple(inertias),
        )

    def predict(self, X: Any, centers: Float64Array, assign: AssignStep, *, features: Any = None) -> Any:
        """As on ``spark-rdd``: ndarray -> labels; RDD -> lazy RDD of labels; DataFrame -> + ``prediction``."""
        return SparkRDDBackend().predict(X, centers, assign, features=features)

    # -- MLlib calls ------------------------------------------------------------------------

    def _run(self, dataset: SparkMLDataset, spec: FitSpec, seed: int) -> MLlibRun:
        init, k = spec.initializer, spec.n_clusters
        if isinstance(init, ExplicitCenters):
            return self.run_mllib_rdd(dataset, init.centers, spec.max_iter, spec.tol, seed)
        from py4j.protocol import Py4JJavaError

        context = dataset.frame.sparkSession.sparkContext
        before = set(context._jsc.getPersistentRDDs().keySet())
        try:
            run = self.run_ml(dataset, k, init, spec.max_iter, spec.tol, seed)
        except Py4JJavaError as exc:
            # a failed MLlib fit leaves its cached training instances behind: drop them
            for rdd_id, rdd in context._jsc.getPersistentRDDs().items():
                if rdd_id not in before:
                    rdd.unpersist(False)
            # MLlib's block solver indexes k centers even when its initialization found
            # fewer, and fails with this exception; the row solver returns the fewer centers.
            text = str(exc)
            if "ArrayIndexOutOfBoundsException" in text and "KMeansAggregator" in text:
                raise _fewer_centers(init.name, None, k) from exc
            raise
        if run.centers.shape[0] < k:
            raise _fewer_centers(init.name, run.centers.shape[0], k)
        return run

    def run_ml(self, dataset: SparkMLDataset, k: int, init: Any, max_iter: int, tol: float, seed: int) -> MLlibRun:
        """One ``pyspark.ml.clustering.KMeans`` fit on ``dataset.frame``."""
        from pyspark.ml.clustering import KMeans as MLlibKMeans

        steps = self.init_steps if self.init_steps is not None else getattr(init, "rounds", 2)
        estimator = MLlibKMeans(
            featuresCol=dataset.features_col,
            predictionCol="__kmeans_prediction",
            k=k,
            initMode=init.name,
            initSteps=steps,
            maxIter=max_iter,
            tol=tol,
            seed=mllib_seed(seed),
            distanceMeasure="euclidean",
            solver=self.solver,
        )
        if dataset.weight_col is not None:
            estimator.setWeightCol(dataset.weight_col)
        model = estimator.fit(dataset.frame)
        centers = np.array(model.clusterCenters(), dtype=np.float64).reshape(-1, dataset.n_features)
        return MLlibRun(centers, int(model.summary.numIter), float(model.summary.trainingCost))

    def run_mllib_rdd(
        self, dataset: SparkMLDataset, centers: Float64Array, max_iter: int, tol: float, seed: int
    ) -> MLlibRun:
        """One RDD-based MLlib fit from explicit initial ``centers``.

        Calls ``trainKMeansModel``, the JVM entry point of
        ``pyspark.mllib.clustering.KMeans.train(..., initialModel=KMeansModel(centers))``,
        directly: ``train`` drops the Java model, and with it MLlib's iteration count. The
        rows reach it as a JVM ``RDD[Vector]`` made from the DataFrame inside the JVM
        (:func:`_jvm_vectors`), not through Python workers.
        """
        from pyspark.mllib.common import callJavaFunc, callMLlibFunc
        from pyspark.mllib.linalg import Vectors

        rows = _jvm_vectors(dataset.frame, dataset.features_col)
        initial = [Vectors.dense(c) for c in np.asarray(centers, dtype=np.float64)]
        steps = self.init_steps if self.init_steps is not None else 2
        java_model = callMLlibFunc(
            "trainKMeansModel",
            rows,
            centers.shape[0],
            max_iter,
            "k-means||",
            mllib_seed(seed),
            steps,
            tol,
            initial,
            "euclidean",
        )
        found = callJavaFunc(dataset.frame.sparkSession.sparkContext, java_model.clusterCenters)
        out = np.array([c.toArray() for c in found], dtype=np.float64)
        return MLlibRun(out, int(java_model.numIter()), float(java_model.trainingCost()))


def _jvm_vectors(frame: Any, column: str) -> Any:
    """The vector ``column`` of ``frame`` as a JVM ``JavaRDD[mllib Vector]``.

    Made inside the JVM by ``org.apache.spark.ml.util.DatasetUtils.columnToOldVector``
    (what MLlib's own estimators use; internal, but public in the bytecode since Spark
    3.1). On the raccoon at k=10 and 50 iterations this made the explicit-centers fit
    several times faster than mapping every row through a Python worker, which remains the
    fallback if a Spark version lacks the method.
    """
    from py4j.protocol import Py4JError, Py4JJavaError

    try:
        utils = frame.sparkSession.sparkContext._jvm.org.apache.spark.ml.util.DatasetUtils
        return utils.columnToOldVector(frame._jdf, column).toJavaRDD()
    except Py4JJavaError:  # the JVM ran it and failed: a real error, not a missing method
        raise
    except Py4JError:  # pragma: no cover - Spark versions without the helper
        return frame.select(column).rdd.map(_mllib_vector)


def _mllib_vector(row: Any) -> Any:
    from pyspark.mllib.linalg import Vectors

    return Vectors.fromML(row[0])
