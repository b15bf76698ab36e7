"""spark-rdd's block store: passes read executor-side files of the cached blocks, with the same results."""

from __future__ import annotations

import operator
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, ValidationError
from kmeans._types import Block
from kmeans.backends.spark_rdd import SparkRDDBackend, SparkRDDDataset

RNG = np.random.default_rng(3)
X = np.concatenate([RNG.normal(c, 1.0, size=(300, 5)) for c in range(6)]).astype(np.float32)
W = RNG.uniform(0.5, 2.0, size=X.shape[0])
FIT = {"n_clusters": 30, "seed": 5, "init": "k-means||", "n_init": 1, "max_iter": 6, "tol": 0.0}


@pytest.fixture
def frame(spark: Any) -> Iterator[Any]:
    """A cached 4-partition DataFrame of ``X`` and ``W``, unpersisted after the test (nothing leaks)."""
    rows = [(x.tolist(), float(w)) for x, w in zip(X, W, strict=True)]
    df = spark.createDataFrame(rows, "x array<double>, w double").repartition(4).cache()
    yield df
    df.unpersist(blocking=True)


def _rows(block: Block) -> int:
    return int(block.points.shape[0])


def _partition_dirs(dataset: SparkRDDDataset) -> list[Path]:
    store = dataset._data.store
    assert store is not None
    return sorted(p for p in Path(store.root).iterdir() if p.name.isdigit())


@pytest.mark.parametrize("source", ["array", "dataframe"])
def test_a_fit_with_the_store_equals_one_without(spark: Any, frame: Any, source: str) -> None:
    data: Any = X if source == "array" else frame
    kw: dict[str, Any] = {"sample_weight": W} if source == "array" else {"sample_weight": "w", "features": "x"}
    with_store = KMeans(**FIT, backend=SparkRDDBackend(num_partitions=3)).fit(data, **kw)
    plain = KMeans(**FIT, backend=SparkRDDBackend(num_partitions=3, local_store=False)).fit(data, **kw)
    np.testing.assert_array_equal(with_store.cluster_centers_, plain.cluster_centers_)
    assert with_store.inertia_ == plain.inertia_
    assert with_store.n_iter_ == plain.n_iter_


def test_the_validation_pass_writes_every_partition_and_unpersist_removes_them(frame: Any) -> None:
    dataset = SparkRDDBackend().dataset(frame, features="x")
    dirs = _partition_dirs(dataset)
    assert [d.name for d in dirs] == [str(p) for p in range(dataset.num_partitions)]
    assert dataset.map_reduce(_rows, operator.add) == X.shape[0]
    root = Path(dataset._data.store.root)  # type: ignore[union-attr]
    dataset.unpersist()
    assert not root.exists()
    # a later pass runs from the cache and writes the partitions again
    assert dataset.map_reduce(_rows, operator.add) == X.shape[0]
    assert len(_partition_dirs(dataset)) == dataset.num_partitions
    dataset.unpersist()


def test_a_partition_missing_from_the_store_runs_from_the_cache_and_is_written_again(spark: Any) -> None:
    dataset = SparkRDDBackend(num_partitions=4).dataset(X, W)
    first = dataset.map_reduce(lambda b: (b.start, float(b.weights.sum())), lambda a, b: (a[0], a[1] + b[1]))
    victim = _partition_dirs(dataset)[2]
    shutil.rmtree(victim)
    (victim.parent / "1" / "blocks.json").write_text("not json")  # unreadable: also a miss
    again = dataset.map_reduce(lambda b: (b.start, float(b.weights.sum())), lambda a, b: (a[0], a[1] + b[1]))
    assert again == first  # same partials, merged in the same partition order
    assert victim.exists()
    dataset.unpersist()


def test_an_input_that_changes_between_passes_is_a_clear_error(spark: Any) -> None:
    from pyspark.sql import functions as sf

    coin = sf.udf(lambda _: os.urandom(1)[0] < 128, "boolean").asNondeterministic()
    # every evaluation keeps other rows, and nothing caches it
    df = spark.range(0, 4000, numPartitions=2).filter(coin("id")).select(sf.array("id").alias("x"))
    dataset = SparkRDDBackend().dataset(df, features="x")
    for d in _partition_dirs(dataset):
        shutil.rmtree(d)
    with pytest.raises(ValidationError, match="changed between passes"):
        dataset.map_reduce(_rows, operator.add)
    dataset.unpersist()
