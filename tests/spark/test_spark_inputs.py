"""Conversion of ndarrays, RDDs and DataFrames into validated blocks, and bad-input errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kmeans import ValidationError
from kmeans.backends._spark import blocks, frames, inputs

X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0]])


def _rows(blocks: blocks.SparkBlocks) -> tuple[np.ndarray, np.ndarray, list[int]]:
    collected = sorted(blocks.blocks.collect(), key=lambda b: b.start)
    blocks.unpersist()
    return (
        np.concatenate([b.points for b in collected]),
        np.concatenate([np.asarray(b.weights) for b in collected]),
        [b.start for b in collected],
    )


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_an_array_becomes_contiguous_blocks_with_global_offsets(sc: Any, parts: int) -> None:
    data = blocks.blocks_from_array(sc, X, num_partitions=parts)
    assert data.num_partitions == parts
    points, weights, starts = _rows(data)
    np.testing.assert_array_equal(points, X)
    np.testing.assert_array_equal(weights, np.ones(5))
    assert starts == list(data.offsets)


def test_small_arrays_default_to_one_partition(sc: Any) -> None:
    # Each partition costs a task per Lloyd pass; a million rows take about as long to assign.
    data = blocks.blocks_from_array(sc, X)
    assert data.num_partitions == 1
    data.unpersist()


def test_large_arrays_default_to_one_partition_per_million_rows_up_to_the_cores(sc: Any) -> None:
    big = np.zeros((blocks.ROWS_PER_PARTITION + 1, 1))
    data = blocks.blocks_from_array(sc, big)
    assert data.num_partitions == min(2, sc.defaultParallelism)
    data.unpersist()


def test_never_more_partitions_than_rows(sc: Any) -> None:
    data = blocks.blocks_from_array(sc, X, num_partitions=50)
    assert data.num_partitions == 5
    data.unpersist()


def test_array_weights_travel_with_their_rows(sc: Any) -> None:
    w = np.array([1.0, 0.0, 2.5, 1.0, 3.0])
    data = blocks.blocks_from_array(sc, X, w, num_partitions=2)
    assert data.total_weight == pytest.approx(7.5)
    np.testing.assert_array_equal(_rows(data)[1], w)


def test_integer_arrays_are_float64_and_flagged_integer_valued(sc: Any) -> None:
    data = blocks.blocks_from_array(sc, X.astype(np.uint8), num_partitions=2)
    assert data.integer_valued and data.dtype == np.float64
    data.unpersist()


def test_float32_stays_float32(sc: Any) -> None:
    data = blocks.blocks_from_array(sc, X.astype(np.float32), num_partitions=2)
    assert data.dtype == np.float32 and not data.integer_valued
    assert _rows(data)[0].dtype == np.float32


@pytest.mark.parametrize(
    "convert",
    [list, tuple, np.asarray, lambda r: _vector(r)],
    ids=["lists", "tuples", "ndarrays", "ml-vectors"],
)
def test_rdd_rows_of_every_kind_convert_in_order(sc: Any, convert: Any) -> None:
    rdd = sc.parallelize([convert(r) for r in X.tolist()], 3)
    data = blocks.blocks_from_rdd(rdd)
    assert (data.n_rows, data.n_features, data.num_partitions) == (5, 2, 3)
    np.testing.assert_array_equal(_rows(data)[0], X)


def _vector(row: list[float]) -> Any:
    from pyspark.ml.linalg import Vectors

    return Vectors.dense(row)


def test_rdd_of_2d_array_blocks_is_accepted(sc: Any) -> None:
    data = blocks.blocks_from_rdd(sc.parallelize([X[:2], X[2:]], 2))
    np.testing.assert_array_equal(_rows(data)[0], X)


def test_rdd_of_int_rows_is_integer_valued(sc: Any) -> None:
    data = blocks.blocks_from_rdd(sc.parallelize([[1, 2], [3, 4]], 2))
    assert data.integer_valued and data.dtype == np.float64
    data.unpersist()


def test_rdd_partitions_are_cut_into_blocks_of_at_most_block_rows(sc: Any) -> None:
    data = blocks.blocks_from_rdd(sc.parallelize(X.tolist(), 1), block_rows=2)
    collected = data.blocks.collect()
    data.unpersist()
    assert [b.start for b in collected] == [0, 2, 4]


def test_dataframe_numeric_columns(spark: Any) -> None:
    df = spark.createDataFrame([(float(a), int(b), "x") for a, b in X], ["a", "b", "label"])
    data = frames.blocks_from_dataframe(df, features=["a", "b"])
    np.testing.assert_array_equal(_rows(data)[0], X)


def test_dataframe_vector_column(spark: Any) -> None:
    df = spark.createDataFrame([(_vector(r),) for r in X.tolist()], ["features"])
    data = frames.blocks_from_dataframe(df)
    np.testing.assert_array_equal(_rows(data)[0], X)


def test_dataframe_sparse_and_dense_vectors_keep_their_values(spark: Any) -> None:
    from pyspark.ml.linalg import Vectors

    from kmeans.sparse import is_sparse

    df = spark.createDataFrame([(Vectors.sparse(3, [1], [2.0]),), (Vectors.dense([1.0, 0.0, 0.0]),)], ["v"])
    data = frames.blocks_from_dataframe(df, features="v")
    assert any(is_sparse(b.points) for b in data.blocks.collect())  # a block with a sparse row is CSR
    np.testing.assert_array_equal(_rows(data)[0], [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])


def test_dataframe_weight_column(spark: Any) -> None:
    df = spark.createDataFrame([(1.0, 2.0), (3.0, 0.5)], ["x", "w"])
    data = frames.blocks_from_dataframe(df, "w", features=["x"])
    assert data.total_weight == 2.5
    np.testing.assert_array_equal(_rows(data)[1], [2.0, 0.5])


def test_dataframe_integer_columns_are_integer_valued(spark: Any) -> None:
    df = spark.createDataFrame([(1, 2), (3, 4)], ["r", "g"])
    data = frames.blocks_from_dataframe(df)
    assert data.integer_valued
    data.unpersist()


# -- bad input: a clear error before any iteration --------------------------------------


def test_unknown_feature_columns_are_named(spark: Any) -> None:
    df = spark.createDataFrame([(1.0, 2.0)], ["a", "b"])
    with pytest.raises(ValidationError, match=r"unknown column\(s\) \['c'\].*\['a', 'b'\]"):
        frames.blocks_from_dataframe(df, features=["a", "c"])


def test_non_numeric_columns_are_named(spark: Any) -> None:
    df = spark.createDataFrame([(1.0, "x")], ["a", "s"])
    with pytest.raises(ValidationError, match=r"non-numeric feature column\(s\) \{'s': 'string'\}"):
        frames.blocks_from_dataframe(df)


def test_null_values_are_reported_with_their_column(spark: Any) -> None:
    df = spark.createDataFrame([(1.0, 2.0), (None, 3.0)], "a double, b double")
    with pytest.raises(ValidationError, match="column 'a' has 1 null values"):
        frames.blocks_from_dataframe(df)


def test_nan_in_a_dataframe_is_reported(spark: Any) -> None:
    df = spark.createDataFrame([(1.0,), (float("nan"),)], ["a"])
    with pytest.raises(ValidationError, match="NaN or infinite values in 1 of 2 rows"):
        frames.blocks_from_dataframe(df)


def test_nan_in_an_rdd_is_reported_with_its_global_row(sc: Any) -> None:
    rdd = sc.parallelize([[1.0], [2.0], [3.0], [float("nan")]], 2)
    with pytest.raises(ValidationError, match=r"NaN or infinite values in 1 of 4 rows \(first at row 3\)"):
        blocks.blocks_from_rdd(rdd)


def test_ragged_rows_are_reported(sc: Any) -> None:
    with pytest.raises(ValidationError, match="different lengths"):
        blocks.blocks_from_rdd(sc.parallelize([[1.0, 2.0], [3.0]], 1))


def test_ragged_rows_across_partitions_are_reported(sc: Any) -> None:
    with pytest.raises(ValidationError, match=r"rows of different lengths \(1 to 2\)"):
        blocks.blocks_from_rdd(sc.parallelize([[1.0, 2.0], [3.0]], 2))


def test_non_numeric_rdd_rows_are_reported(sc: Any) -> None:
    with pytest.raises(ValidationError, match="non-numeric values such as 'a'"):
        blocks.blocks_from_rdd(sc.parallelize([[1.0, "a"]], 1))


def test_scalar_rdd_elements_are_not_rows(sc: Any) -> None:
    with pytest.raises(ValidationError, match=r"each RDD element must be a row"):
        blocks.blocks_from_rdd(sc.parallelize([1.0, 2.0], 1))


def test_an_empty_rdd_is_reported(sc: Any) -> None:
    with pytest.raises(ValidationError, match="the RDD is empty"):
        blocks.blocks_from_rdd(sc.parallelize([], 2))


def test_nothing_stays_cached_after_a_validation_error(sc: Any) -> None:
    with pytest.raises(ValidationError):
        blocks.blocks_from_rdd(sc.parallelize([[1.0], [float("inf")]], 2))
    assert sc._jsc.getPersistentRDDs().isEmpty()


def test_rdd_input_rejects_sample_weight(sc: Any) -> None:
    with pytest.raises(ValidationError, match="sample_weight is not supported with an RDD"):
        blocks.blocks_from_rdd(sc.parallelize([[1.0]]), np.ones(1))


def test_features_with_an_array_is_an_error(spark: Any) -> None:
    with pytest.raises(ValidationError, match="features= selects DataFrame columns"):
        inputs.to_blocks(X, features=["a"])


# -- issue 14: null vectors, null features at predict, special column names, spark-ml limits -------


def test_a_null_vector_is_a_clear_error_not_a_java_exception(spark: Any) -> None:
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import StructField, StructType

    schema = StructType([StructField("features", VectorUDT(), True)])
    df = spark.createDataFrame([(_vector([1.0, 2.0]),), (None,), (_vector([3.0, 4.0]),)], schema)
    with pytest.raises(ValidationError, match=r"column 'features' has 1 null values"):
        frames.blocks_from_dataframe(df)
    from kmeans import KMeans

    with pytest.raises(ValidationError, match=r"null feature values in 1 of 3 rows"):
        KMeans(2, backend="spark-ml", init="random", seed=0).fit(df)


def test_predict_gives_a_null_prediction_for_a_row_with_a_null_feature(spark: Any) -> None:
    from kmeans.backends.spark_rdd import SparkRDDBackend
    from kmeans.distance.l2 import SquaredEuclidean
    from tests import oracle

    centers = np.array([[0.0, 1.0], [8.0, 9.0]])
    rows = [(0.5, 1.0), (None, 3.0), (7.0, 9.5), (float("nan"), 1.0), (4.1, 5.0)]
    df = spark.createDataFrame(rows, "a double, b double").repartition(2)
    got = SparkRDDBackend().predict(df, centers, SquaredEuclidean()).collect()
    by_row = {(r["a"], r["b"]): r["prediction"] for r in got}
    expected = oracle.assign(np.array([[0.5, 1.0], [7.0, 9.5], [4.1, 5.0]]), centers)[0].tolist()
    assert [by_row[(0.5, 1.0)], by_row[(7.0, 9.5)], by_row[(4.1, 5.0)]] == expected == [0, 1, 1]
    assert by_row[(None, 3.0)] is None
    assert [r["prediction"] for r in got if r["a"] is not None and r["a"] != r["a"]] == [None]  # NaN row


@pytest.mark.parametrize("backend", ["spark-rdd", "spark-ml"])
def test_column_names_with_dots_and_backticks_work(spark: Any, backend: str) -> None:
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as sf

    from kmeans import KMeans

    start = X[[0, 4]]
    # spark-ml takes explicit centers only without weights (the RDD-based MLlib API)
    weight = "w.x" if backend == "spark-rdd" else None
    reference = KMeans(2, init=start, max_iter=5, tol=0).fit(X, sample_weight=np.arange(1.0, 6.0) if weight else None)
    df = spark.createDataFrame(
        [(*r, float(w)) for r, w in zip(X.tolist(), range(1, 6), strict=True)], ["a.b", "c`d", "w.x"]
    )
    by_columns = KMeans(2, init=start, max_iter=5, tol=0, backend=backend).fit(
        df, sample_weight=weight, features=["a.b", "c`d"]
    )
    vectors = df.select(array_to_vector(sf.array(sf.col("`a.b`"), sf.col("`c``d`"))).alias("f.v"), sf.col("`w.x`"))
    by_vector = KMeans(2, init=start, max_iter=5, tol=0, backend=backend).fit(
        vectors, sample_weight=weight, features="f.v"
    )
    for model in (by_columns, by_vector):
        np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-12)
    labels = [r["prediction"] for r in by_vector.predict(vectors, features="f.v").orderBy("`w.x`").collect()]
    assert labels == reference.labels_.tolist()


def test_spark_ml_refuses_one_cluster_before_any_job() -> None:
    from kmeans import KMeans

    with pytest.raises(ValidationError, match=r"spark-ml' cannot fit n_clusters=1: MLlib supports k >= 2"):
        KMeans(1, backend="spark-ml").fit(X)


def test_the_fewer_centers_message_has_its_number() -> None:
    from kmeans.backends.spark_ml import _fewer_centers

    assert "returned fewer than 5 distinct centers for n_clusters=5" in str(_fewer_centers("random", None, 5))
    assert "returned only 3 distinct centers" in str(_fewer_centers("random", 3, 5))


@pytest.mark.parametrize("backend", ["spark-rdd", "spark-ml"])
def test_max_iter_zero_returns_the_initial_centers_on_spark(spark: Any, backend: str) -> None:
    from kmeans import KMeans
    from tests import oracle

    start = X[[1, 3]]
    model = KMeans(2, init=start, max_iter=0, backend=backend).fit(X)
    assert model.cluster_centers_.tolist() == start.tolist() and model.n_iter_ == 0
    assert model.inertia_ == pytest.approx(oracle.inertia(X, start), rel=1e-12)
