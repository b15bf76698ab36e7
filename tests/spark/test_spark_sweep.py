"""kmeans.sweep on spark-rdd: one dataset for every k, the same scores and sample as numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import make_blobs

from kmeans import sweep


def test_sweep_on_spark_equals_numpy(spark: Any) -> None:
    X, _ = make_blobs(400, centers=3, n_features=3, random_state=0)
    params = {"seed": 2, "init": "random", "n_init": 1, "silhouette_size": 150}
    ref = sweep(X, [2, 3, 4], **params)
    got = sweep(X, [2, 3, 4], backend="spark-rdd", **params)
    np.testing.assert_array_equal(got.sample_rows, ref.sample_rows)
    for a, b in zip(got.centers, ref.centers, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    np.testing.assert_allclose(got.inertia, ref.inertia, rtol=1e-9)
    np.testing.assert_allclose(got.silhouette, ref.silhouette, rtol=1e-9)
    np.testing.assert_allclose(got.calinski_harabasz, ref.calinski_harabasz, rtol=1e-9)
    assert got.suggest() == ref.suggest() == 3
