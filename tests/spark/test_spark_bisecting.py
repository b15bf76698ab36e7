"""Bisecting k-means on Spark: the same tree as numpy from the same seed, any partitioning and input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from kmeans import BisectingKMeans
from kmeans.backends.spark_rdd import SparkRDDBackend


def _blobs(n: int, k: int, seed: int) -> np.ndarray:
    X, _ = make_blobs(n, centers=k, n_features=3, random_state=seed)
    return X


def _assert_same(a: BisectingKMeans, b: BisectingKMeans, labels_b: Any = None) -> None:
    np.testing.assert_allclose(b.tree_.centers, a.tree_.centers, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(b.tree_.children, a.tree_.children)
    np.testing.assert_array_equal(np.asarray(b.labels_ if labels_b is None else labels_b), a.labels_)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-9)


@pytest.mark.parametrize(("strategy", "distance"), [("biggest_inertia", "l2"), ("largest_cluster", "cosine")])
def test_one_partition_runs_in_one_task_and_agrees(spark: Any, strategy: str, distance: str) -> None:
    X = _blobs(1200, 5, 1)
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    params = {"n_clusters": 5, "seed": 3, "bisecting_strategy": strategy, "distance": distance}
    ref = BisectingKMeans(**params).fit(X, sample_weight=w)
    got = BisectingKMeans(**params, backend="spark-rdd").fit(X, sample_weight=w)
    _assert_same(ref, got)


def test_many_partitions_filter_cached_blocks_and_agree(spark: Any) -> None:
    X = _blobs(300, 3, 2)
    params = {"n_clusters": 3, "seed": 1, "max_iter": 2, "tol": 0.0}  # a job per pass: few passes
    ref = BisectingKMeans(**params).fit(X)
    got = BisectingKMeans(**params, backend=SparkRDDBackend(num_partitions=3)).fit(X)
    _assert_same(ref, got)


def test_rdd_and_dataframe_input_lazy_labels_and_predict(spark: Any) -> None:
    X = _blobs(400, 4, 3)
    ref = BisectingKMeans(4, seed=2).fit(X)
    rdd = spark.sparkContext.parallelize(X.tolist(), 1)
    got = BisectingKMeans(4, seed=2, backend="spark-rdd").fit(rdd)
    _assert_same(ref, got, got.labels_.collect())
    assert got.predict(rdd).collect() == ref.labels_.tolist()
    df = spark.createDataFrame([(float(a), float(b), float(c)) for a, b, c in X], ["a", "b", "c"]).coalesce(1)
    on_ml = BisectingKMeans(4, seed=2, backend="spark-ml").fit(df, features=["a", "b", "c"])
    assert on_ml.backend_.name == "spark-rdd"  # spark-ml runs this driver on the RDD engine
    np.testing.assert_allclose(on_ml.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    rows = on_ml.predict(df).select("prediction").collect()
    assert [r.prediction for r in rows] == ref.labels_.tolist()
