"""The spark-ml backend: MLlib does the fit; the adapter translates, refuses and reports like every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kmeans import ConvergenceWarning, Distance, KMeans, ValidationError, load_model
from kmeans._types import Deferred
from kmeans.backends._spark.mllib import mllib_seed
from kmeans.backends.numpy import NumPyDataset
from kmeans.backends.spark_ml import SparkMLBackend, SparkMLDataset
from kmeans.distance.l1 import L1
from kmeans.distance.l2 import L2
from kmeans.init.kmeans_parallel import KMeansParallel

RNG = np.random.default_rng(3)
CENTERS = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
BLOBS = np.concatenate([RNG.normal(c, 0.5, size=(60, 2)) for c in CENTERS])


def _direct_cost(X: np.ndarray, centers: np.ndarray, w: np.ndarray | None = None) -> float:
    costs = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    return float(costs.sum() if w is None else np.dot(w, costs))


def _last_job(sc: Any) -> int:
    return max(sc.statusTracker().getJobIdsForGroup(), default=-1)


# -- agreement ---------------------------------------------------------------------------------


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 60),
    d=st.integers(1, 4),
    k=st.integers(2, 4),
    max_iter=st.integers(1, 6),
)
def test_from_the_same_initial_centers_mllib_equals_numpy(
    spark: Any, seed: int, n: int, d: int, k: int, max_iter: int
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-5.0, 5.0, size=(n, d))
    init = X[rng.choice(n, size=k, replace=False)]
    ref = KMeans(k, init=init, max_iter=max_iter, tol=0).fit(X)
    # MLlib leaves an empty cluster where it was; numpy moves it (documented difference)
    assume(all(h.n_empty == 0 for h in ref.history_))
    model = KMeans(k, init=init, max_iter=max_iter, tol=0, backend="spark-ml").fit(X)
    scale = float(np.abs(X).max())
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-6, atol=1e-9 * scale)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_allclose(model.cluster_sizes_, ref.cluster_sizes_)


def test_explicit_centers_reach_mllib_as_a_jvm_rdd_not_through_python_workers(spark: Any) -> None:
    # Regression: every row used to go through a Python worker (2x slower on the raccoon).
    from py4j.java_gateway import JavaObject

    from kmeans.backends._spark.mllib import jvm_vectors

    ds = SparkMLBackend().dataset(BLOBS)
    rows = jvm_vectors(ds.frame, ds.features_col)
    assert isinstance(rows, JavaObject) and rows.count() == BLOBS.shape[0]
    ds.unpersist()


def test_an_explicit_centers_fit_goes_through_the_jvm_rdd(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmeans.backends._spark import mllib

    made: list[Any] = []
    real = mllib.jvm_vectors

    def spy(frame: Any, column: str) -> Any:
        made.append(real(frame, column))
        return made[-1]

    monkeypatch.setattr(mllib, "jvm_vectors", spy)
    KMeans(3, init=BLOBS[[0, 60, 120]], max_iter=2, tol=0, backend="spark-ml").fit(BLOBS)
    assert len(made) == 1 and type(made[0]).__name__ == "JavaObject"


def test_kmeans_parallel_on_separated_blobs_is_within_one_percent_of_numpy_kmeans_plus_plus(spark: Any) -> None:
    ref = KMeans(4, init="k-means++", seed=5).fit(BLOBS)
    model = KMeans(4, init="k-means||", seed=5, backend="spark-ml").fit(BLOBS)
    assert model.inertia_ <= ref.inertia_ * 1.01


def test_a_single_fit_equals_calling_mllib_directly_with_the_same_seed(spark: Any) -> None:
    from pyspark.ml.clustering import KMeans as MLlibKMeans
    from pyspark.ml.linalg import Vectors

    df = spark.createDataFrame([(Vectors.dense(r),) for r in BLOBS.tolist()], ["features"]).repartition(3).cache()
    direct = MLlibKMeans(k=4, seed=17, maxIter=300, tol=1e-4, solver="block").fit(df)
    model = KMeans(4, init="k-means||", seed=17, backend="spark-ml").fit(df)
    np.testing.assert_allclose(model.cluster_centers_, np.array(direct.clusterCenters()), rtol=1e-12)
    assert model.n_iter_ == direct.summary.numIter
    assert df.is_cached  # the caller's cache is the caller's
    df.unpersist()


def test_inertia_is_the_cost_of_the_final_centers(spark: Any) -> None:
    model = KMeans(4, init="random", n_init=1, max_iter=2, tol=0, seed=1, backend="spark-ml").fit(BLOBS)
    assert model.inertia_ == pytest.approx(_direct_cost(BLOBS, model.cluster_centers_), rel=1e-12)
    np.testing.assert_array_equal(model.cluster_sizes_, np.bincount(model.labels_, minlength=4))
    assert model.history_ == []


def test_dataframe_fit_reads_inertia_and_sizes_in_one_pass_on_first_read(spark: Any, sc: Any) -> None:
    df = spark.createDataFrame(BLOBS.tolist(), "a double, b double").cache()
    model = KMeans(4, init=BLOBS[::60], max_iter=3, tol=0, backend="spark-ml").fit(df)
    assert isinstance(model.__dict__["_inertia_"], Deferred)  # the fit itself ran no pass for them
    last = _last_job(sc)
    assert model.inertia_ == pytest.approx(_direct_cost(BLOBS, model.cluster_centers_), rel=1e-12)
    after_inertia = _last_job(sc)
    assert after_inertia > last  # the pass ran on this read ...
    ref = KMeans(4, init=BLOBS[::60], max_iter=3, tol=0).fit(BLOBS)
    np.testing.assert_array_equal(model.cluster_sizes_, ref.cluster_sizes_)
    assert _last_job(sc) == after_inertia  # ... and gave the sizes too
    df.unpersist()


def test_a_lazy_inertia_survives_save_and_is_not_recomputed(spark: Any, sc: Any, tmp_path: Path) -> None:
    df = spark.createDataFrame(BLOBS.tolist(), "a double, b double")
    model = KMeans(4, init=BLOBS[::60], max_iter=3, tol=0, backend="spark-ml").fit(df)
    model.save(tmp_path / "m.json")  # saving reads inertia_ and cluster_sizes_
    last = _last_job(sc)
    loaded = load_model(tmp_path / "m.json")
    assert loaded.inertia_ == model.inertia_ and _last_job(sc) == last
    np.testing.assert_array_equal(loaded.cluster_sizes_, model.cluster_sizes_)


def test_n_iter_and_converged_come_from_mllib(spark: Any) -> None:
    model = KMeans(4, init="k-means||", seed=2, tol=1e-4, backend="spark-ml").fit(BLOBS)
    assert 1 <= model.n_iter_ < 300 and model.converged_
    capped = KMeans(4, init=BLOBS[:4], max_iter=1, tol=0, backend="spark-ml").fit(BLOBS)
    assert capped.n_iter_ == 1 and not capped.converged_


def test_more_restarts_never_give_a_higher_inertia(spark: Any) -> None:
    X = RNG.uniform(0, 1, size=(150, 2))
    one = KMeans(6, init="random", n_init=1, seed=4, max_iter=3, tol=0, backend="spark-ml").fit(X)
    three = KMeans(6, init="random", n_init=3, seed=4, max_iter=3, tol=0, backend="spark-ml").fit(X)
    assert three.inertia_ <= one.inertia_


# -- inputs --------------------------------------------------------------------------------------


def test_array_input_gives_ndarray_labels_like_numpy(spark: Any) -> None:
    model = KMeans(4, init=BLOBS[::60], max_iter=5, tol=0, backend="spark-ml").fit(BLOBS)
    ref = KMeans(4, init=BLOBS[::60], max_iter=5, tol=0).fit(BLOBS)
    assert isinstance(model.labels_, np.ndarray)
    np.testing.assert_array_equal(model.labels_, ref.labels_)


def test_rdd_input_gives_a_lazy_rdd_of_labels_in_input_order(sc: Any) -> None:
    rdd = sc.parallelize(BLOBS.tolist(), 3)
    model = KMeans(4, init=BLOBS[::60], max_iter=5, tol=0, backend="spark-ml").fit(rdd)
    ref = KMeans(4, init=BLOBS[::60], max_iter=5, tol=0).fit(BLOBS)
    assert [label for _, label in rdd.zip(model.labels_).collect()] == ref.labels_.tolist()


@pytest.mark.parametrize("kind", ["columns", "array", "vector"])
def test_every_dataframe_feature_layout_fits_the_same(spark: Any, kind: str) -> None:
    from pyspark.ml.linalg import Vectors

    rows = BLOBS.tolist()
    if kind == "columns":
        df, features = spark.createDataFrame([(a, b, "t") for a, b in rows], ["a", "b", "tag"]), ["a", "b"]
    elif kind == "array":
        df, features = spark.createDataFrame([(r,) for r in rows], ["xy"]), "xy"
    else:
        df, features = spark.createDataFrame([(Vectors.dense(r),) for r in rows], ["v"]), "v"
    model = KMeans(4, init=BLOBS[::60], max_iter=5, tol=0, backend="spark-ml").fit(df, features=features)
    ref = KMeans(4, init=BLOBS[::60], max_iter=5, tol=0).fit(BLOBS)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    assert model.labels_.collect() == ref.labels_.tolist()


def test_sparse_and_dense_vectors_fit_and_evaluate_the_same(spark: Any) -> None:
    from pyspark.ml.linalg import Vectors

    X = BLOBS.copy()
    X[::7, 1] = 0.0  # some rows with a zero, stored as sparse vectors
    rows = [
        (Vectors.sparse(2, {j: v for j, v in enumerate(r) if v}) if i % 7 == 0 else Vectors.dense(r),)
        for i, r in enumerate(X.tolist())
    ]
    df = spark.createDataFrame(rows, ["v"])
    ds = SparkMLBackend().dataset(df, features="v")
    np.testing.assert_array_equal([r.v for r in ds.values_frame().collect()], X)  # sparse rows expanded
    model = KMeans(4, init=X[::60], max_iter=4, tol=0, backend="spark-ml").fit(df, features="v")
    ref = KMeans(4, init=X[::60], max_iter=4, tol=0).fit(X)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-9)
    assert model.labels_.collect() == ref.labels_.tolist()
    bad = [*rows[:-1], (Vectors.sparse(2, {1: float("inf")}),)]
    with pytest.raises(ValidationError, match="NaN or infinite values in 1 of 240 rows"):
        KMeans(4, backend="spark-ml", init="k-means||").fit(spark.createDataFrame(bad, ["v"]))


def test_a_weight_column_is_mllibs_weight_col(spark: Any) -> None:
    w = RNG.integers(0, 4, size=BLOBS.shape[0]).astype(float)
    df = spark.createDataFrame(
        [(a, b, c) for (a, b), c in zip(BLOBS.tolist(), w.tolist(), strict=True)], ["a", "b", "w"]
    )
    model = KMeans(4, init="k-means||", seed=8, backend="spark-ml").fit(df, sample_weight="w", features=["a", "b"])
    ref = KMeans(4, seed=8).fit(BLOBS, sample_weight=w)
    assert model.inertia_ == pytest.approx(_direct_cost(BLOBS, model.cluster_centers_, w), rel=1e-12)
    assert model.inertia_ <= ref.inertia_ * 1.01
    assert model.cluster_sizes_.sum() == pytest.approx(w.sum())


@pytest.mark.parametrize(
    ("bad", "message"),
    [(float("nan"), "NaN or infinite values in 1 of 240 rows"), (None, "null feature values in 1 of 240 rows")],
)
def test_bad_dataframe_values_are_reported_before_mllib_runs(spark: Any, bad: Any, message: str) -> None:
    rows: list[tuple[Any, Any]] = [(a, b) for a, b in BLOBS.tolist()]
    rows[7] = (bad, 1.0)
    df = spark.createDataFrame(rows, "a double, b double")
    with pytest.raises(ValidationError, match=message):
        KMeans(4, init="k-means||", seed=1, backend="spark-ml").fit(df)


def _rows_with(kind: str, bad: Any, at: int, n: int = 600) -> tuple[Any, Any, Any]:
    """``n`` rows (columns "a", "b", "w", or a vector "v" and "w") with row ``at`` replaced by ``bad``."""
    X = RNG.normal(0, 1, size=(n, 2)).tolist()
    rows: list[Any] = [(a, b, 1.0) for a, b in X]
    rows[at] = bad
    if kind == "columns":
        return rows, "a double, b double, w double", ["a", "b"]
    from pyspark.ml.linalg import Vectors

    vectors = [(None if r[0] is None else Vectors.dense(r[:-1]), r[-1]) for r in rows]
    return vectors, ["v", "w"], "v"


@pytest.fixture
def validation_jobs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the runs of the full validation job."""
    from kmeans.backends import spark_ml

    runs: list[int] = []
    validate = spark_ml._validate_frame
    monkeypatch.setattr(spark_ml, "_validate_frame", lambda *a: runs.append(1) or validate(*a))
    return runs


@pytest.mark.parametrize(
    ("kind", "bad", "message"),
    [
        ("columns", (float("nan"), 1.0, 1.0), r"NaN or infinite values in 1 of 600 rows"),
        ("columns", (None, 1.0, 1.0), r"null feature values in 1 of 600 rows"),
        ("columns", (1.0, 1.0, -2.0), r"sample weights of the DataFrame contain negative values in 1 rows"),
        ("vector", (1.0, float("inf"), 1.0), r"NaN or infinite values in 1 of 600 rows"),
        ("vector", (1.0, 1.0, 2.0, 1.0), r"rows of different lengths \(2 to 3\)"),
        ("vector", (None, 1.0), r"null feature values in 1 of 600 rows"),
    ],
)
def test_bad_rows_past_the_first_rows_fail_mllibs_first_pass_then_validation_says_why(
    spark: Any, sc: Any, validation_jobs: list[int], kind: str, bad: Any, message: str
) -> None:
    # The first rows are clean, so no job checks the data before MLlib: MLlib's own row
    # checks fail its first pass, and the adapter's validation job then names the problem.
    rows, schema, features = _rows_with(kind, bad, at=500)
    df = spark.createDataFrame(rows, schema)
    with pytest.raises(ValidationError, match=message):
        KMeans(3, init="k-means||", seed=1, backend="spark-ml").fit(df, sample_weight="w", features=features)
    assert validation_jobs == [1]
    assert sc._jsc.getPersistentRDDs().isEmpty()


@pytest.mark.parametrize("bad", [(1.0, float("nan"), 1.0), (1.0, 1.0, 2.0, 1.0)], ids=["nan", "length"])
def test_mllibs_row_solver_also_fails_on_bad_rows_so_validation_says_why(spark: Any, bad: Any) -> None:
    rows, schema, features = _rows_with("vector", bad, at=500)
    backend = SparkMLBackend(solver="row")
    with pytest.raises(ValidationError, match=r"NaN or infinite values in 1 of 600 rows|different lengths"):
        KMeans(3, init="random", seed=1, backend=backend).fit(spark.createDataFrame(rows, schema), features=features)


def test_a_clean_dataframe_fit_runs_no_validation_job_but_explicit_centers_do(
    spark: Any, validation_jobs: list[int]
) -> None:
    rows, schema, features = _rows_with("vector", (1.0, 1.0, 1.0), at=0)
    df = spark.createDataFrame(rows, schema)
    model = KMeans(3, init="k-means||", seed=1, max_iter=3, backend="spark-ml").fit(df, features=features)
    assert validation_jobs == [] and model.cluster_centers_.shape == (3, 2)
    # the RDD-based API behind explicit centers checks no row: NaN rows would give NaN centers
    bad_rows, _, _ = _rows_with("vector", (float("nan"), 1.0, 1.0), at=500)
    init = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 1.0]])
    with pytest.raises(ValidationError, match="NaN or infinite values in 1 of 600 rows"):
        KMeans(3, init=init, backend="spark-ml").fit(spark.createDataFrame(bad_rows, schema), features=features)
    assert validation_jobs == [1]


def test_a_count_or_bad_first_rows_run_the_full_validation_first(spark: Any) -> None:
    rows, schema, features = _rows_with("vector", (float("nan"), 1.0, 1.0), at=3)
    with pytest.raises(ValidationError, match=r"NaN or infinite values in 1 of 600 rows"):
        KMeans(3, init="k-means||", backend="spark-ml").fit(spark.createDataFrame(rows, schema), features=features)
    ds = SparkMLBackend().dataset(
        spark.createDataFrame(_rows_with("vector", (1.0, 1.0, 3.0), at=0)[0], schema), "w", features="v"
    )
    assert (ds.n_rows, ds.n_features, ds.total_weight) == (600, 2, 602.0)
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import StructField, StructType

    empty = StructType([StructField("v", VectorUDT())])
    for k in (2, 3):  # regression: k=2 read the (empty) first rows and failed in NumPy (k=1 is refused first)
        with pytest.raises(ValidationError, match=r"empty: it has 0 rows"):
            KMeans(k, backend="spark-ml", init="k-means||").fit(spark.createDataFrame([], empty), features="v")
    zero = [(v, 0.0) for v, _ in _rows_with("vector", (1.0, 1.0, 0.0), at=0)[0]]
    with pytest.raises(ValidationError, match=r"weights of the DataFrame are zero for every row"):
        KMeans(2, backend="spark-ml", init="k-means||").fit(
            spark.createDataFrame(zero, schema), sample_weight="w", features="v"
        )


# -- fewer than k distinct rows ------------------------------------------------------------------


@pytest.mark.parametrize(("backend", "distance"), [("spark-ml", "cosine"), ("spark-rdd", "l1")])
def test_fewer_distinct_rows_than_clusters_give_the_numpy_model(spark: Any, backend: str, distance: str) -> None:
    # a weighted DataFrame with 2 distinct rows for k=3: no MLlib fit, the rule's model (docs/rules.md);
    # arrays with every distance on both backends: tests/conformance
    X = np.repeat(np.array([[2.0, 3.0], [0.0, 1.0]]), 20, axis=0)
    w = np.linspace(0.5, 2.0, X.shape[0])
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(2\) found smaller than"):
        ref = KMeans(3, distance=distance, seed=0).fit(X, sample_weight=w)
    rows = [(*row, float(wi)) for row, wi in zip(X.tolist(), w, strict=True)]
    df = spark.createDataFrame(rows, "a double, b double, w double")
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(2\) found smaller than"):
        got = KMeans(3, distance=distance, seed=0, backend=backend).fit(df, sample_weight="w", features=["a", "b"])
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    assert got.inertia_ == ref.inertia_ == 0.0
    np.testing.assert_allclose(got.cluster_sizes_, ref.cluster_sizes_, rtol=1e-12)
    assert (got.n_iter_, got.converged_) == (0, True)
    assert got.labels_.collect() == ref.labels_.tolist()  # arrays on every backend: tests/conformance


@pytest.mark.parametrize("solver", ["block", "row"])
def test_mllib_random_init_returning_fewer_centers_is_an_error(spark: Any, solver: str) -> None:
    X = np.concatenate([np.zeros((2000, 2)), [[5.0, 5.0], [9.0, 9.0]]])
    backend = SparkMLBackend(solver=solver)
    with pytest.raises(ValidationError, match=r"returned (only \d|fewer than 3) distinct centers for n_clusters=3"):
        KMeans(3, init="random", n_init=1, seed=0, backend=backend).fit(X)


# -- refusals, before any Spark job ---------------------------------------------------------------


class _CustomInit:
    name = "mine"

    def init(self, dataset: Any, k: int, assign: Any, seed: int) -> np.ndarray:
        return BLOBS[:k]


REFUSALS: list[tuple[str, dict[str, Any], Callable[[], Any], str]] = [
    (
        "l1",
        {"distance": "l1"},
        lambda: None,
        r"cannot use distance='l1'.*distance='l2' .*and distance='cosine' only.*spark-rdd",
    ),
    (
        "custom-distance",
        {"distance": Distance("mine", L1.assign, L2.update)},
        lambda: None,
        r"cannot use distance='mine'.*spark-rdd",
    ),
    ("per-partition", {"init": "per-partition"}, lambda: None, r"cannot use init='per-partition'.*'k-means\|\|'"),
    ("take-sample", {"init": "take-sample"}, lambda: None, r"cannot use init='take-sample'.*spark-rdd"),
    ("k-means++", {"init": "k-means++"}, lambda: None, r"cannot use init='k-means\+\+'.*numpy"),
    ("custom-init", {"init": _CustomInit()}, lambda: None, r"cannot use init='mine'.*init='random'"),
    (
        "oversampling",
        {"init": KMeansParallel(oversampling=3.0)},
        lambda: None,
        r"oversampling=3.0.*init_steps",
    ),
    (
        "explicit-and-weights",
        {"init": BLOBS[:4]},
        lambda: np.ones(BLOBS.shape[0]),
        r"explicit initial centers with sample_weight.*takes no weights",
    ),
    (
        "callbacks",
        {"init": "k-means||", "callbacks": [print]},
        lambda: None,
        r"cannot call callbacks.*no per-iteration hook",
    ),
    ("compress", {"init": "k-means||", "compress": True}, lambda: None, r"cannot compress the data.*spark-rdd"),
]


@pytest.mark.parametrize(("params", "weights", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_what_mllib_cannot_do_is_refused_before_any_spark_job(
    sc: Any, spark: Any, params: dict[str, Any], weights: Callable[[], Any], message: str
) -> None:
    df = spark.createDataFrame(BLOBS.tolist(), "a double, b double")
    before = _last_job(sc)
    with pytest.raises(ValidationError, match=message):
        KMeans(4, seed=0, backend="spark-ml", **params).fit(df if weights() is None else BLOBS, sample_weight=weights())
    assert _last_job(sc) == before


def test_backend_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="solver must be one of"):
        SparkMLBackend(solver="fast")
    with pytest.raises(ValidationError, match="init_steps must be None or an integer >= 1"):
        SparkMLBackend(init_steps=0)


def test_seeds_fold_into_mllibs_signed_64_bit_range() -> None:
    assert mllib_seed(5) == 5 and mllib_seed(-5) == -5
    assert mllib_seed(2**64 - 1) == -1 and mllib_seed(2**63) == -(2**63)


# -- using the fitted model -----------------------------------------------------------------------


def test_predict_transform_and_save_work_like_on_every_backend(spark: Any, tmp_path: Path) -> None:
    model = KMeans(4, init="k-means||", seed=3, backend="spark-ml").fit(BLOBS)
    np.testing.assert_array_equal(model.predict(BLOBS), model.labels_)
    expected = np.sqrt(((BLOBS[:5, None, :] - model.cluster_centers_[None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(model.transform(BLOBS[:5]), expected, rtol=1e-9)
    df = spark.createDataFrame(BLOBS.tolist(), "a double, b double")
    assert [r.prediction for r in model.predict(df).collect()] == model.labels_.tolist()
    model.save(tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    assert loaded.inertia_ == model.inertia_


def test_the_dataset_caches_its_own_frame_only_during_a_fit(spark: Any) -> None:
    ds = SparkMLBackend().dataset(BLOBS)
    assert isinstance(ds, SparkMLDataset) and ds.owned and not ds.frame.is_cached
    ds.persist()
    assert ds.frame.is_cached
    ds.unpersist()
    assert not ds.frame.is_cached


def test_no_cached_rdd_is_left_after_fits_and_failed_fits(sc: Any, spark: Any) -> None:
    X = np.concatenate([np.zeros((2000, 2)), [[5.0, 5.0], [9.0, 9.0]]])
    with pytest.raises(ValidationError):  # MLlib's block solver fails on fewer than k centers
        KMeans(3, init="random", n_init=1, seed=0, backend="spark-ml").fit(X)
    with pytest.raises(ValidationError, match="larger than the number of rows"):  # between dataset() and fit()
        KMeans(11, init="k-means||", seed=0, backend="spark-ml").fit(np.zeros((10, 2)))
    with pytest.warns(ConvergenceWarning):  # fewer distinct rows than k: no MLlib fit, the rule's model
        KMeans(3, init="k-means||", seed=0, backend="spark-ml").fit(np.zeros((10, 2)))
    KMeans(4, init="k-means||", seed=0, backend="spark-ml").fit(sc.parallelize(BLOBS.tolist(), 2))
    assert sc._jsc.getPersistentRDDs().isEmpty()


def test_the_arrow_pass_and_map_reduce_agree_with_numpy(spark: Any) -> None:
    from kmeans.driver import evaluate

    w = RNG.integers(0, 4, size=BLOBS.shape[0]).astype(float)
    df = spark.createDataFrame(
        [(a, b, c) for (a, b), c in zip(BLOBS.tolist(), w.tolist(), strict=True)], "a double, b double, w double"
    ).repartition(3)
    ds = SparkMLBackend().dataset(df, "w", features=["a", "b"])
    centers = BLOBS[[0, 70, 130, 200]]
    inertia, weights = ds.evaluate(centers)
    ref = evaluate(NumPyDataset(BLOBS, w), centers, L2.assign)
    assert inertia == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_array_equal(weights, ref[1])
    via_blocks = evaluate(ds, centers, L2.assign)  # map_reduce converts the frame into blocks
    assert via_blocks[0] == pytest.approx(ref[0], rel=1e-12)
    ds.unpersist()


@pytest.mark.parametrize("k", [3, 40])
def test_labels_and_sizes_of_any_k_are_the_numpy_kernels(spark: Any, k: int) -> None:
    # Regression: as generated SQL, k=32 took 15 s on the raccoon (now any k runs NumPy's kernel).
    X = RNG.uniform(0, 10, size=(500, 3)).round(1)  # rounded: many exact ties between centers
    centers = np.concatenate([X[:k], X[:2]])  # duplicated centers: ties go to the lowest index
    df = spark.createDataFrame(X.tolist(), "a double, b double, c double")  # in order, 2 partitions
    ds = SparkMLBackend().dataset(df)
    labels = ds.labels(centers, L2.assign)
    assert isinstance(labels, Deferred)  # the RDD's query is planned on first read of labels_
    ref_labels, ref_costs = L2.assign.assign(X, centers)
    assert labels.get().collect() == ref_labels.tolist()
    inertia, weights = ds.evaluate(centers)
    assert inertia == pytest.approx(ref_costs.sum(), rel=1e-12)
    np.testing.assert_array_equal(weights, np.bincount(ref_labels, minlength=k + 2))
    ds.unpersist()
