"""The spark-rdd backend: fits, labels, predictions, caching, compress and the Spark initializers."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, ValidationError
from kmeans.backends.numpy import NumPyBackend
from kmeans.backends.spark_rdd import SparkRDDBackend, SparkRDDDataset, range_of
from kmeans.distance.l2 import L2
from kmeans.driver import evaluate
from kmeans.init.take_sample import TakeSample

RNG = np.random.default_rng(7)
X = np.concatenate([RNG.normal(c, 0.4, size=(40, 2)) for c in [(0, 0), (6, 6), (0, 6)]])
FIT = {"n_clusters": 3, "seed": 11, "init": "random", "n_init": 1, "max_iter": 5, "tol": 0.0}


def _numpy(**kw: Any) -> KMeans:
    return KMeans(**{**FIT, **kw}).fit(X)


def test_array_input_gives_the_numpy_centers_labels_and_inertia(spark: Any) -> None:
    ref = _numpy()
    model = KMeans(**FIT, backend=SparkRDDBackend(num_partitions=3)).fit(X)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    assert isinstance(model.labels_, np.ndarray) and model.labels_.dtype == np.int32
    np.testing.assert_array_equal(model.labels_, ref.labels_)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)


def test_rdd_input_gives_a_lazy_rdd_of_labels_in_input_order(sc: Any) -> None:
    ref = _numpy()
    rdd = sc.parallelize(X.tolist(), 4)
    model = KMeans(**FIT, backend="spark-rdd").fit(rdd)
    assert type(model.labels_).__name__ in ("RDD", "PipelinedRDD")
    pairs = rdd.zip(model.labels_).collect()
    assert [label for _, label in pairs] == ref.labels_.tolist()
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12)


def test_dataframe_input_fits_on_the_named_columns(spark: Any) -> None:
    ref = _numpy()
    df = spark.createDataFrame([(float(a), float(b), "x") for a, b in X], ["a", "b", "tag"])
    model = KMeans(**FIT, backend="spark-rdd").fit(df, features=["a", "b"])
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    assert model.labels_.collect() == ref.labels_.tolist()


def test_dataframe_weight_column_matches_numpy_sample_weight(spark: Any) -> None:
    w = RNG.integers(0, 4, size=X.shape[0]).astype(float)
    ref = KMeans(**FIT).fit(X, sample_weight=w)
    df = spark.createDataFrame(
        [(float(a), float(b), float(c)) for (a, b), c in zip(X, w, strict=True)], ["a", "b", "w"]
    )
    model = KMeans(**FIT, backend="spark-rdd").fit(df, sample_weight="w", features=["a", "b"])
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)


def test_predict_maps_an_rdd_to_an_rdd_of_labels(sc: Any) -> None:
    model = KMeans(**FIT, backend="spark-rdd").fit(X)
    labels = model.predict(sc.parallelize(X.tolist(), 3))
    assert labels.collect() == model.predict(X).tolist()


def test_predict_adds_a_prediction_column_to_a_dataframe(spark: Any) -> None:
    from pyspark.ml.linalg import Vectors

    model = KMeans(**FIT, backend="spark-rdd").fit(X)
    df = spark.createDataFrame([(i, Vectors.dense(r)) for i, r in enumerate(X.tolist())], ["id", "features"])
    out = model.predict(df).orderBy("id").collect()
    assert [r.prediction for r in out] == model.predict(X).tolist()
    assert [r.id for r in out] == list(range(X.shape[0]))


def test_predict_on_an_array_returns_an_array(spark: Any) -> None:
    model = KMeans(**FIT, backend="spark-rdd").fit(X)
    labels = SparkRDDBackend().predict(X, model.cluster_centers_, L2.assign)
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, model.labels_)


def test_predict_rejects_a_dataframe_with_a_prediction_column(spark: Any) -> None:
    model = KMeans(**FIT, backend="spark-rdd").fit(X)
    df = spark.createDataFrame([(1.0, 2.0, 0)], ["a", "b", "prediction"])
    with pytest.raises(ValidationError, match="already has a 'prediction' column"):
        model.predict(df, features=["a", "b"])


def test_no_cached_rdd_is_left_after_a_fit(sc: Any) -> None:
    KMeans(**FIT, backend="spark-rdd").fit(sc.parallelize(X.tolist(), 2))
    KMeans(**{**FIT, "init": "k-means||"}, backend="spark-rdd").fit((X * 10).astype(np.int64))  # compressed too
    assert sc._jsc.getPersistentRDDs().isEmpty()


def test_large_closures_are_broadcast_and_destroyed(sc: Any) -> None:
    ds = SparkRDDBackend(num_partitions=2).dataset(X)
    big = np.ones(100_000)  # 800 kB, above the broadcast threshold
    before = set(os.listdir(sc._temp_dir))
    total = ds.map_reduce(lambda b: float(b.n_rows) + big[0] - 1.0, lambda a, b: a + b)
    ds.unpersist()
    assert total == X.shape[0]
    assert set(os.listdir(sc._temp_dir)) <= before  # the broadcast file is gone


def test_many_partitions_merge_in_a_tree_with_the_same_result(spark: Any) -> None:
    centers = X[:3]
    ds = SparkRDDBackend(num_partitions=40).dataset(X)
    inertia, weights = evaluate(ds, centers, L2.assign)
    ds.unpersist()
    ref_inertia, ref_weights = evaluate(NumPyBackend().dataset(X), centers, L2.assign)
    assert inertia == pytest.approx(ref_inertia, rel=1e-12)
    np.testing.assert_array_equal(weights, ref_weights)


def test_the_dataset_is_recached_when_reused_after_a_fit(spark: Any) -> None:
    ds = SparkRDDBackend(num_partitions=2).dataset(X)
    backend = SparkRDDBackend()
    KMeans(**FIT, backend=backend).fit(ds)
    assert not ds.is_cached
    assert evaluate(ds, X[:3], L2.assign)[0] > 0
    ds.unpersist()


# -- compress ------------------------------------------------------------------------------


def _dup_data(integer: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 6, size=(200, 3))
    data = base if integer else base * 0.25 - 0.5
    return data, rng.uniform(0.5, 2.0, size=200)


@pytest.mark.parametrize("parts", [1, 3, 7])
@pytest.mark.parametrize("integer", [True, False], ids=["int", "float"])
def test_compress_gives_numpys_rows_in_the_same_order_with_the_same_weights(
    spark: Any, parts: int, integer: bool
) -> None:
    data, w = _dup_data(integer)
    ref = NumPyBackend().dataset(data, w).compress()
    ds = SparkRDDBackend(num_partitions=parts).dataset(data, w)
    comp = ds.compress()
    blocks = sorted(comp.blocks.collect(), key=lambda b: b.start)
    comp.unpersist()
    ds.unpersist()
    assert comp.distinct and comp.n_rows == ref.n_rows
    np.testing.assert_array_equal(np.concatenate([b.points for b in blocks]), ref.points)
    np.testing.assert_allclose(np.concatenate([b.weights for b in blocks]), ref.weights, rtol=1e-14)
    assert [b.start for b in blocks] == np.cumsum([0] + [b.n_rows for b in blocks])[:-1].tolist()


def test_range_of_puts_a_row_equal_to_a_boundary_in_the_upper_range() -> None:
    bounds = np.array([[1.0, 0.0], [2.0, 5.0]])
    rows = np.array([[0.0, 9.0], [1.0, 0.0], [1.0, 7.0], [2.0, 5.0], [3.0, 0.0]])
    assert range_of(rows, bounds).tolist() == [0, 1, 1, 2, 2]


# -- Spark initializers ----------------------------------------------------------------------


def test_take_sample_returns_k_distinct_data_rows_reproducibly(spark: Any) -> None:
    ds = SparkRDDBackend(num_partitions=3).dataset(X)
    a = TakeSample().init(ds, 3, L2.assign, seed=5)
    b = TakeSample().init(ds, 3, L2.assign, seed=5)
    ds.unpersist()
    np.testing.assert_array_equal(a, b)
    assert np.unique(a, axis=0).shape[0] == 3
    assert all((row == X).all(axis=1).any() for row in a)


def test_take_sample_fits_on_spark(spark: Any) -> None:
    model = KMeans(**{**FIT, "init": "take-sample"}, backend="spark-rdd").fit(X)
    assert model.cluster_centers_.shape == (3, 2)


def test_per_partition_fits_on_spark(spark: Any) -> None:
    model = KMeans(**{**FIT, "init": "per-partition", "max_iter": 20, "tol": 1e-6}, backend="spark-rdd").fit(X)
    assert model.inertia_ == pytest.approx(_numpy(init="k-means||", max_iter=20, tol=1e-6).inertia_, rel=1e-9)


def test_k_means_plus_plus_warns_about_its_k_passes_on_spark(spark: Any) -> None:
    with pytest.warns(UserWarning, match="k-means\\+\\+ on this engine costs 5 passes"):
        KMeans(**{**FIT, "init": "k-means++"}, backend="spark-rdd").fit(X)


def test_the_dataset_is_a_spark_rdd_dataset(spark: Any) -> None:
    ds = SparkRDDBackend(num_partitions=2).dataset(X)
    assert isinstance(ds, SparkRDDDataset) and "partitions=2" in repr(ds)
    ds.unpersist()


# -- one task per restart for single-partition data -------------------------------------------


def _jobs_during(sc: Any, fn: Any) -> int:
    group = f"kmeans-test-{os.getpid()}-{RNG.integers(1 << 30)}"
    sc.setJobGroup(group, "count jobs")
    try:
        fn()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return len(sc.statusTracker().getJobIdsForGroup(group))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"distance": "l1"},  # the exact median refines inside the task
        {"init": "k-means||", "n_init": 2},
        {"n_clusters": 8, "init": X[[0, 1, 2, 3, 4, 5, 6, 7]] * 0 + 50.0 + np.arange(8.0)[:, None]},  # empties
    ],
    ids=["l2", "l1", "kmeans-parallel-2-restarts", "relocations"],
)
def test_one_task_fit_equals_one_job_per_iteration(spark: Any, params: dict[str, Any]) -> None:
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    kw = {**FIT, **params}
    one = KMeans(**kw, backend=SparkRDDBackend(num_partitions=1)).fit(X, sample_weight=w)
    per_iteration = KMeans(**kw, backend=SparkRDDBackend(num_partitions=1, one_task=False)).fit(X, sample_weight=w)
    np.testing.assert_array_equal(one.cluster_centers_, per_iteration.cluster_centers_)
    np.testing.assert_array_equal(one.labels_, per_iteration.labels_)
    assert one.inertia_ == per_iteration.inertia_
    assert [(r.iteration, r.inertia, r.n_empty) for r in one.history_] == [
        (r.iteration, r.inertia, r.n_empty) for r in per_iteration.history_
    ]
    ref = KMeans(**kw).fit(X, sample_weight=w)
    np.testing.assert_allclose(one.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    if "n_clusters" in params:
        assert one.history_[0].n_empty > 0


#: Uniform rows: k-means keeps moving the centers for a while (no fixed point within 12 updates).
SLOW = np.random.default_rng(7).uniform(0, 10, size=(600, 2))


def test_one_task_fit_runs_one_job_instead_of_one_per_iteration(sc: Any) -> None:
    kw = {**FIT, "n_clusters": 5, "init": SLOW[:5], "max_iter": 12}
    one = _jobs_during(sc, lambda: KMeans(**kw, backend=SparkRDDBackend(num_partitions=1)).fit(SLOW))
    per_iteration = _jobs_during(
        sc, lambda: KMeans(**kw, backend=SparkRDDBackend(num_partitions=1, one_task=False)).fit(SLOW)
    )
    two_parts = _jobs_during(sc, lambda: KMeans(**kw, backend=SparkRDDBackend(num_partitions=2)).fit(SLOW))
    assert KMeans(**kw).fit(SLOW).n_iter_ == 12
    assert per_iteration >= 12 and two_parts >= 12  # one job per iteration (and a few more)
    assert one <= per_iteration - 11  # the 12 iterations + final pass are one task


def test_one_task_fit_replays_every_iteration_to_the_callbacks(spark: Any) -> None:
    seen: list[Any] = []
    kw = {**FIT, "n_clusters": 5, "init": SLOW[:5]}
    model = KMeans(**kw, callbacks=[seen.append], backend=SparkRDDBackend(num_partitions=1)).fit(SLOW)
    assert [r.iteration for r in seen] == [1, 2, 3, 4, 5]
    assert seen == model.history_


def test_array_partitions_come_from_broadcasts_released_with_the_dataset(sc: Any) -> None:
    # Regression: sc.parallelize(blocks) put the rows into every task of every pass; the
    # blocks are now broadcasts (tasks carry ids), destroyed when the dataset is collected.
    import gc

    before = set(os.listdir(sc._temp_dir))
    ds = SparkRDDBackend(num_partitions=3).dataset(X)
    sources = ds._data.sources
    assert len(sources) == 3
    assert set(os.listdir(sc._temp_dir)) - before  # the broadcasts' pickled blocks
    model = KMeans(**FIT, backend=SparkRDDBackend()).fit(ds)
    ref = _numpy()
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    assert evaluate(ds, X[:3], L2.assign)[0] > 0  # recomputed from the broadcasts after the fit
    ds.unpersist()
    del ds, sources, model
    gc.collect()
    assert set(os.listdir(sc._temp_dir)) <= before  # the broadcasts' files are gone


def test_spark_ml_array_input_is_read_from_broadcasts_released_with_the_dataset(sc: Any) -> None:
    import gc

    from kmeans.backends.spark_ml import SparkMLBackend

    before = set(os.listdir(sc._temp_dir))
    ds = SparkMLBackend(num_partitions=2).dataset(X, sample_weight=np.ones(X.shape[0]))
    assert len(ds.sources) == 2
    assert set(os.listdir(sc._temp_dir)) - before
    assert ds.frame.count() == X.shape[0]
    ds.unpersist()
    del ds
    gc.collect()
    assert set(os.listdir(sc._temp_dir)) <= before
