"""Mini-batch on spark-rdd: the same rows drawn, the same centers as numpy, any partitioning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kmeans import KMeans
from kmeans.backends.spark_rdd import SparkRDDBackend
from kmeans.errors import ValidationError
from kmeans.minibatch import MiniBatch

rng = np.random.default_rng(3)
X = (rng.uniform(-8, 8, size=(5, 3))[rng.integers(0, 5, 1500)] + rng.normal(size=(1500, 3))).astype(np.float32)
W = rng.uniform(0.0, 2.0, X.shape[0])


@pytest.mark.parametrize(("parts", "weighted"), [(1, False), (3, True)])
def test_spark_rdd_draws_the_same_batches_and_centers_as_numpy(spark: Any, parts: int, weighted: bool) -> None:
    w = W if weighted else None
    # small gathers: several Spark jobs, each serving several steps
    params: dict[str, Any] = {
        "algorithm": MiniBatch(batch_size=64, max_no_improvement=None, gather_rows=1000),
        "max_iter": 1,
        "tol": 0.0,
        "seed": 7,
        "init": "k-means++",  # the backends' defaults differ (k-means|| on Spark)
    }
    ref = KMeans(5, **params).fit(X, sample_weight=w)
    got = KMeans(5, **params, backend=SparkRDDBackend(num_partitions=parts)).fit(X, sample_weight=w)
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    assert got.n_steps_ == ref.n_steps_ == 1500 // 64
    assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)
    np.testing.assert_allclose(got.cluster_sizes_, ref.cluster_sizes_, rtol=1e-12)


def test_spark_ml_refuses_minibatch(spark: Any) -> None:
    with pytest.raises(ValidationError, match="spark-rdd"):
        KMeans(3, algorithm="minibatch", backend="spark-ml").fit(X)
