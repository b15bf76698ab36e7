"""Spark citizenship: default parameters that fit the engine, and the pyspark.ml Estimator/Model pair."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from kmeans import KMeans

RNG = np.random.default_rng(11)
CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
BLOBS = np.concatenate([RNG.normal(c, 0.5, size=(40, 2)) for c in CENTERS])
PIXELS = RNG.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


# -- init="auto": k-means|| on Spark, quietly ---------------------------------------------------


def test_default_parameters_fit_quietly_on_spark_ml(spark: Any) -> None:
    df = spark.createDataFrame(BLOBS.tolist(), "a double, b double")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = KMeans(3, seed=1, backend="spark-ml").fit(df)  # k-means++ would be refused: MLlib has none
    assert sorted(np.round(model.cluster_centers_).tolist()) == sorted(CENTERS.tolist())


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
