"""Spark citizenship: default parameters that fit the engine, and the pyspark.ml Estimator/Model pair."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, load_model

RNG = np.random.default_rng(11)
CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
BLOBS = np.concatenate([RNG.normal(c, 0.5, size=(40, 2)) for c in CENTERS])
PIXELS = RNG.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


# -- init="auto": k-means|| on Spark, quietly ---------------------------------------------------


@pytest.fixture(scope="module")
def spark_ml_default(spark: Any) -> KMeans:
    """``KMeans(3, backend="spark-ml")`` with default parameters on a DataFrame of the blobs, fitted quietly.

    Also the reference of the spark-ml pipeline test (one MLlib fit for both): the same rows
    in the same partitions as :func:`_frame`, so MLlib's partition-seeded k-means|| agrees.
    """
    df = spark.createDataFrame(BLOBS.tolist(), "a double, b double")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return KMeans(3, seed=4, backend="spark-ml").fit(df)  # k-means++ would be refused: MLlib has none


def test_default_parameters_fit_quietly_on_spark_ml(spark_ml_default: KMeans) -> None:
    assert spark_ml_default.init == "auto" and spark_ml_default.max_iter == 300  # the defaults, fitted quietly
    assert sorted(np.round(spark_ml_default.cluster_centers_).tolist()) == sorted(CENTERS.tolist())


def test_spark_backends_declare_kmeans_parallel_as_their_default_init() -> None:
    from kmeans.backends.spark_ml import SparkMLBackend
    from kmeans.backends.spark_rdd import SparkRDDBackend
    from kmeans.estimator import resolve_init

    assert resolve_init("auto", SparkMLBackend()).name == "k-means||"
    assert resolve_init("auto", SparkRDDBackend()).name == "k-means||"


def test_default_parameters_fit_pixels_quietly_on_spark_rdd(spark: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # k-means++ would warn about its 2k - 1 passes
        model = KMeans(backend="spark-rdd", seed=0).fit(PIXELS)
    reference = KMeans(seed=0, init="k-means||").fit(PIXELS)  # the same rule on NumPy
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-9, atol=0)
    assert model.labels_.shape == (600,)


# -- the pyspark.ml Estimator/Model pair -------------------------------------------------------


def _frame(spark: Any, weights: np.ndarray | None = None) -> Any:
    w = np.ones(len(BLOBS)) if weights is None else weights
    return spark.createDataFrame(np.column_stack([BLOBS, w]).tolist(), "a double, b double, w double")


def _labels(df: Any, column: str = "prediction") -> list[int]:
    return [row[column] for row in df.select(column).collect()]


@pytest.mark.parametrize("backend", ["spark-rdd", "spark-ml"])
def test_pipeline_fits_transforms_saves_and_loads(
    spark: Any, tmp_path: Path, backend: str, spark_ml_default: KMeans
) -> None:
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import VectorAssembler

    from kmeans.spark import KMeans as SparkKMeans
    from kmeans.spark import KMeansModel

    # spark-rdd on one partition runs each Lloyd run in one task (the same model: any layout gives numpy's);
    # spark-ml keeps _frame's partitions, which its MLlib reference was fitted on
    df = _frame(spark) if backend == "spark-ml" else _frame(spark).coalesce(1)
    stages = [VectorAssembler(inputCols=["a", "b"], outputCol="features"), SparkKMeans(k=3, seed=4, backend=backend)]
    fitted = Pipeline(stages=stages).fit(df)
    labels = _labels(fitted.transform(df))
    # the same fit without the Pipeline: spark-rdd's model is numpy's (same seed, any layout); spark-ml's is
    # MLlib's from KMeans(backend="spark-ml") (it converges well before either maxIter, 20 or 300)
    if backend == "spark-rdd":
        reference = KMeans(3, seed=4, init="k-means||", max_iter=20).fit(BLOBS)
    else:
        reference = spark_ml_default
    np.testing.assert_allclose(fitted.stages[-1].clusterCenters(), reference.cluster_centers_, rtol=1e-9)
    assert labels == reference.predict(BLOBS).tolist()  # the training labels (spark-ml's labels_ is an RDD here)

    fitted.save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    model = loaded.stages[-1]
    assert isinstance(model, KMeansModel) and model.getBackend() == backend and model.getK() == 3
    np.testing.assert_array_equal(np.array(model.clusterCenters()), np.array(fitted.stages[-1].clusterCenters()))
    assert model.kmeans_model.inertia_ == pytest.approx(reference.inertia_, rel=1e-9)
    assert _labels(loaded.transform(df)) == labels


def test_cross_validator_with_clustering_evaluator_picks_the_true_k(spark: Any) -> None:
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from kmeans.spark import KMeans as SparkKMeans

    # one partition: each spark-rdd fit of the search runs its Lloyd iterations in one task
    df = VectorAssembler(inputCols=["a", "b"], outputCol="features").transform(_frame(spark).coalesce(1))
    estimator = SparkKMeans(seed=1, maxIter=10)
    grid = ParamGridBuilder().addGrid(estimator.k, [2, 3]).build()
    cv = CrossValidator(
        estimator=estimator, estimatorParamMaps=grid, evaluator=ClusteringEvaluator(), numFolds=2, seed=0
    )
    best = cv.fit(df).bestModel
    assert best.getK() == 3
    assert len(best.clusterCenters()) == 3


def test_weight_col_and_prediction_col_are_honoured_and_features_remembered(spark: Any) -> None:
    from pyspark.sql import functions as sf

    from kmeans.spark import KMeans as SparkKMeans

    w = RNG.uniform(0.5, 2.0, len(BLOBS))
    df = _frame(spark, w).coalesce(1).withColumn("features", sf.array("a", "b"))  # one task per Lloyd run
    model = SparkKMeans(k=3, seed=2, weightCol="w", predictionCol="cluster").fit(df)
    reference = KMeans(3, seed=2, init="k-means||", max_iter=20).fit(BLOBS, sample_weight=w)
    np.testing.assert_allclose(np.array(model.clusterCenters()), reference.cluster_centers_, rtol=1e-9)
    assert _labels(model.transform(df), "cluster") == reference.labels_.tolist()
    assert model.predict(BLOBS[0]) == reference.labels_[0]
    ours = model.kmeans_model  # fitted with features="features": predict(df) needs no repetition
    assert ours.features_ == "features"
    assert _labels(ours.predict(df.drop("a"))) == reference.labels_.tolist()


# -- interchange with Spark's own KMeansModel --------------------------------------------------


def test_round_trip_through_sparks_kmeans_model_keeps_predictions(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.clustering import KMeansModel as SparkKMeansModel
    from pyspark.ml.feature import VectorAssembler

    from kmeans.interop import from_spark, to_spark

    ours = KMeans(3, seed=5).fit(BLOBS)
    theirs = to_spark(ours)
    assert isinstance(theirs, SparkKMeansModel)
    np.testing.assert_array_equal(np.array(theirs.clusterCenters()), ours.cluster_centers_)
    df = VectorAssembler(inputCols=["a", "b"], outputCol="features").transform(_frame(spark))
    assert _labels(theirs.transform(df)) == ours.labels_.tolist()
    back = from_spark(theirs)
    np.testing.assert_array_equal(back.cluster_centers_, ours.cluster_centers_)
    np.testing.assert_array_equal(back.predict(BLOBS), ours.labels_)
    assert _labels(back.predict(df)) == ours.labels_.tolist()  # through featuresCol, remembered
    assert np.isnan(back.inertia_)  # Spark's model keeps no training cost: unknown, saved as null
    back.save(tmp_path / "from_spark.json")
    np.testing.assert_array_equal(load_model(tmp_path / "from_spark.json").predict(BLOBS), ours.labels_)
