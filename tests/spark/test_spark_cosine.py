"""distance="cosine" on Spark: spark-rdd runs our strategy, spark-ml hands it to MLlib's cosine measure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kmeans import KMeans, ValidationError


@settings(max_examples=2, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 40),
    d=st.integers(2, 4),
    k=st.integers(2, 3),
    max_iter=st.integers(1, 4),
)
def test_numpy_spark_rdd_and_mllib_agree_from_the_same_centers(
    spark: Any, seed: int, n: int, d: int, k: int, max_iter: int
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0, size=(n, 1))
    init = X[rng.choice(n, size=k, replace=False)]
    ref = KMeans(k, distance="cosine", init=init, max_iter=max_iter, tol=0).fit(X)
    assume(all(h.n_empty == 0 for h in ref.history_))  # MLlib keeps an empty cluster's center (documented)
    for backend in ("spark-rdd", "spark-ml"):
        model = KMeans(k, distance="cosine", init=init, max_iter=max_iter, tol=0, backend=backend).fit(X)
        np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(model.labels_), ref.labels_)
        assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-9, abs=1e-12)


def test_a_dataframe_fit_with_mllib_cosine_and_its_zero_row_check(spark: Any) -> None:
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(60, 3))) + np.repeat(np.eye(3) * 4, 20, axis=0)
    df = spark.createDataFrame([(row.tolist(),) for row in X], ["v"])
    init = X[[0, 20, 40]]
    model = KMeans(3, distance="cosine", init=init, max_iter=5, tol=0, backend="spark-ml").fit(df, features="v")
    ref = KMeans(3, distance="cosine", init=init, max_iter=5, tol=0).fit(X)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-9)
    zero = spark.createDataFrame([(row.tolist(),) for row in np.vstack([X, np.zeros((2, 3))])], ["v"])
    with pytest.raises(ValidationError, match=r"all-zero rows: 2 row\(s\) are zero; drop them"):
        KMeans(3, distance="cosine", backend="spark-ml").fit(zero, features="v")
