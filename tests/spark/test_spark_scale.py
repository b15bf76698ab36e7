"""Engine-native input at extreme scales (issue 14): spark-rdd rescales its cached blocks exactly.

The reference is the numpy backend on the same rows, itself checked against exact rational
arithmetic in ``tests/test_hardening_scale.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, ValidationError

RNG = np.random.default_rng(14)
BLOBS = np.concatenate([RNG.normal(loc, 0.5, size=(20, 2)) for loc in ([0, 0], [8, 1], [3, 9])])
START = BLOBS[[0, 20, 40]] + 0.25
PARAMS: dict[str, Any] = {"max_iter": 3, "tol": 0.0}


def _same(got: KMeans, want: KMeans) -> None:
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-12, atol=0)
    assert np.asarray(got.labels_.collect() if hasattr(got.labels_, "collect") else got.labels_).tolist() == (
        want.labels_.tolist()
    )
    assert got.inertia_ == pytest.approx(want.inertia_, rel=1e-12, abs=0)


@pytest.mark.parametrize("scale", [1e200, 1e-300], ids=["1e200", "1e-300"])
def test_an_rdd_at_an_extreme_scale_gives_the_numpy_model(sc: Any, scale: float) -> None:
    X = BLOBS * scale
    want = KMeans(3, init=START * scale, **PARAMS).fit(X)
    model = KMeans(3, init=START * scale, backend="spark-rdd", **PARAMS).fit(sc.parallelize(X.tolist(), 2))
    _same(model, want)
    assert want.labels_.tolist() == KMeans(3, init=START, **PARAMS).fit(BLOBS).labels_.tolist()
    # predict on engine-native rows: each block is rescaled with the centers in its task
    assert model.predict(sc.parallelize(X.tolist(), 2)).collect() == want.labels_.tolist()


def test_a_dataframe_with_huge_weights_and_tiny_values_gives_the_numpy_model(spark: Any) -> None:
    X, w = BLOBS * 2.0**-1000, RNG.uniform(0.5, 2.0, BLOBS.shape[0]) * 1e306
    df = spark.createDataFrame(
        [(*row, float(v)) for row, v in zip(X.tolist(), w.tolist(), strict=True)], "a double, b double, w double"
    )
    want = KMeans(3, init="k-means||", seed=4, n_init=1, **PARAMS).fit(X, sample_weight=w)
    model = KMeans(3, init="k-means||", seed=4, n_init=1, backend="spark-rdd", **PARAMS).fit(
        df, features=["a", "b"], sample_weight="w"
    )
    _same(model, want)
    np.testing.assert_allclose(model.cluster_sizes_, want.cluster_sizes_, rtol=1e-12)
    rows = model.predict(df).select("prediction").collect()
    assert [r[0] for r in rows] == want.labels_.tolist()


def test_cosine_directions_are_scale_free_on_spark(sc: Any) -> None:
    X = BLOBS + 20.0  # no zero rows
    want = KMeans(3, init=START + 20.0, distance="cosine", **PARAMS).fit(X)
    model = KMeans(3, init=START + 20.0, distance="cosine", backend="spark-rdd", **PARAMS)
    model.fit(sc.parallelize((X * 2.0**700).tolist(), 2))  # norms overflow float64 unless rescaled
    np.testing.assert_allclose(model.cluster_centers_, want.cluster_centers_, rtol=1e-12, atol=1e-15)
    assert model.inertia_ == pytest.approx(want.inertia_, rel=1e-9, abs=1e-15)
    assert model.labels_.collect() == want.labels_.tolist()


def test_spark_ml_refuses_a_dataframe_whose_squares_overflow(spark: Any) -> None:
    df = spark.createDataFrame((BLOBS * 1e200).tolist(), "a double, b double")
    with pytest.raises(ValidationError, match="magnitude"):
        KMeans(3, init="k-means||", seed=1, backend="spark-ml", **PARAMS).fit(df, features=["a", "b"])


@pytest.mark.parametrize("exp", [700, -700, -530], ids=["2^700", "2^-700", "2^-530"])
def test_spark_ml_refuses_cosine_rows_whose_norms_overflow_or_underflow(spark: Any, exp: int) -> None:
    # MLlib's norms are sqrt(sum x^2) in doubles: inf at 2^700, 0 at 2^-700, and at 2^-530 the
    # squares are subnormal, so MLlib's centers came back an ulp off, silently
    X = BLOBS + 20.0
    X[:20] = np.ldexp(X[:20], exp)
    df = spark.createDataFrame(X.tolist(), "a double, b double")
    model = KMeans(3, init="k-means||", seed=1, distance="cosine", backend="spark-ml", **PARAMS)
    with pytest.raises(ValidationError, match=r"sqrt\(sum x\^2\).*backend='spark-rdd'"):
        model.fit(df, features=["a", "b"])
    if exp < 0:  # an ndarray is rescaled as a whole first: one scale cannot serve rows 2^-530 apart
        with pytest.raises(ValidationError, match="overflow or underflow"):
            model.fit(X)


def test_spark_ml_cosine_counts_directions_of_a_dataframe(spark: Any) -> None:
    # Regression: distinct rows sharing a direction sent the count of directions over the whole
    # DataFrame in a closure holding the DataFrame, which Spark cannot ship to a task
    from kmeans import registry
    from kmeans.backends.spark_ml import SparkMLBackend
    from kmeans.driver import distinct_points

    rows = [[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [0.0, 1.0], [0.0, 3.0]]  # two directions, exactly
    dataset = SparkMLBackend().dataset(spark.createDataFrame(rows, "a double, b double"), features=["a", "b"])
    assign = registry.distances["cosine"].assign
    assert distinct_points(dataset, 2, assign) is None  # enough for n_clusters=2
    found = distinct_points(dataset, 3, assign)
    assert found is not None and found.tolist() == [[0.0, 1.0], [1.0, 0.0]]


@pytest.mark.parametrize("init", ["k-means++", "k-means||", "random"])
def test_a_seeded_fit_at_a_power_of_two_scale_is_the_unscaled_fit_times_that_power(sc: Any, init: str) -> None:
    # Seeding draws from costs scaled by 2**-1120 (below float64's range unless rescaled); with
    # `tol` in data units scaled alike, the fit is the unscaled one bit for bit: the same
    # iterations, labels and centers. An unscaled tol=1e-3 would instead stop after one update
    # at this scale, since every center moves less than 1e-3 (tol is absolute, as in MLlib).
    s = 2.0**-560
    fit: dict[str, Any] = {"n_clusters": 3, "init": init, "n_init": 1, "seed": 3, "max_iter": 20}
    want = KMeans(**fit, tol=1e-3, backend="spark-rdd").fit(sc.parallelize(BLOBS.tolist(), 2))
    model = KMeans(**fit, tol=1e-3 * s, backend="spark-rdd").fit(sc.parallelize((BLOBS * s).tolist(), 2))
    assert (model.n_iter_, model.converged_) == (want.n_iter_, want.converged_)
    assert model.labels_.collect() == want.labels_.collect()
    assert (model.cluster_centers_ == want.cluster_centers_ * s).all()
    numpy = KMeans(**fit, tol=1e-3 * s).fit(BLOBS * s)
    assert (numpy.cluster_centers_ == model.cluster_centers_).all()
