"""Spark SparseVector rows (RDDs and DataFrame vector columns) on spark-rdd: CSR blocks (never dense), the
same model as numpy on the CSR matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from kmeans import KMeans, ValidationError
from kmeans.backends._spark import frames
from kmeans.backends._spark.blocks import rows_to_array
from kmeans.backends._spark.inputs import to_blocks
from kmeans.sparse import SparseRows


def _csr(seed: int, n: int = 60, d: int = 40, density: float = 0.15) -> Any:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    X.data = np.round(X.data * 8, 2) + 0.5
    X = (
        X + sp.csr_matrix((np.ones(n), (np.arange(n), rng.integers(0, d, size=n))), shape=(n, d))
    ).tocsr()  # no zero rows
    return X.tocsr()


def _vectors(X: Any, module: str = "ml") -> list[Any]:
    linalg = __import__(f"pyspark.{module}.linalg", fromlist=["Vectors"])
    return [
        linalg.Vectors.sparse(X.shape[1], X.indices[s:e].tolist(), X.data[s:e].tolist())
        for s, e in zip(X.indptr[:-1], X.indptr[1:], strict=True)
    ]


def _frame(spark: Any, X: Any, *, weights: Any = None, dense_every: int = 0, nulls: tuple[int, ...] = ()) -> Any:
    """A 2-partition DataFrame of ``X``'s rows as a ``features`` vector column (every ``dense_every``-th
    row a DenseVector, rows in ``nulls`` null), with a weight column ``w`` when ``weights`` is given."""
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import DoubleType, StructField, StructType

    vectors: list[Any] = _vectors(X)
    if dense_every:
        vectors = [
            Vectors.dense(v.toArray()) if i % dense_every == dense_every - 1 else v for i, v in enumerate(vectors)
        ]
    vectors = [None if i in nulls else v for i, v in enumerate(vectors)]
    fields = [StructField("features", VectorUDT(), True)]
    if weights is None:
        return spark.createDataFrame([(v,) for v in vectors], StructType(fields)).coalesce(2)
    fields.append(StructField("w", DoubleType(), False))
    rows = [(v, float(w)) for v, w in zip(vectors, weights, strict=True)]
    return spark.createDataFrame(rows, StructType(fields)).coalesce(2)


def _declared(df: Any, size: int) -> Any:
    """``df`` with its ``features`` column declared ``size`` wide, as ``VectorAssembler`` or ``HashingTF`` declare."""
    from pyspark.sql import functions as sf

    return df.select(sf.col("features").alias("features", metadata={"ml_attr": {"num_attrs": size}}))


def _assert_same_model(model: Any, ref: Any) -> None:
    """A Spark fit (lazy labels) is the numpy fit: labels equal, centers and inertia to rounding."""
    np.testing.assert_array_equal(np.asarray(model.labels_.collect()), ref.labels_)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12, atol=1e-14)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)


def test_the_block_builder_keeps_sparse_vectors_in_csr_near_its_size() -> None:
    X = _csr(0, n=2000, d=5000, density=0.002)
    rows = _vectors(X)
    block = rows_to_array(rows)
    assert isinstance(block, SparseRows)
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    assert block.nbytes <= 2 * csr_bytes < X.shape[0] * X.shape[1] * 8 // 100
    np.testing.assert_array_equal(block.toarray(), X.toarray())
    from pyspark.ml.linalg import Vectors

    mixed = rows_to_array([Vectors.dense([0.0, 2.0, 0.0]), Vectors.sparse(3, [0], [0.0])])  # explicit zero dropped
    assert isinstance(mixed, SparseRows) and mixed.nnz == 1
    dense = rows_to_array([Vectors.dense([1.0, 2.0]), Vectors.dense([3.0, 4.0])])
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float64  # dense-only input: unchanged


@pytest.mark.parametrize(
    ("source", "distance", "init"),
    [
        ("rdd-ml", "l2", "k-means++"),
        ("rdd-mllib", "l2", "k-means||"),
        ("rdd-ml", "cosine", "random"),
        ("frame", "l2", "k-means||"),
        ("frame", "cosine", "k-means++"),
        ("frame-mixed", "l2", "k-means||"),  # every third vector dense
    ],
)
def test_sparse_vectors_equal_numpy_on_the_csr_matrix(spark: Any, source: str, distance: str, init: str) -> None:
    X = _csr(1)
    fit = {"n_clusters": 3, "init": init, "n_init": 1, "seed": 5, "max_iter": 8, "distance": distance}
    ref = KMeans(**fit).fit(X)
    if source.startswith("rdd"):
        rdd = spark.sparkContext.parallelize(_vectors(X, source.removeprefix("rdd-")), 2)
        model = KMeans(**fit, backend="spark-rdd").fit(rdd)
        predicted = model.predict(rdd).collect()
    else:
        df = _frame(spark, X, dense_every=3 if source == "frame-mixed" else 0)
        assert df.rdd.getNumPartitions() == 2
        model = KMeans(**fit, backend="spark-rdd").fit(df)
        predicted = [r.prediction for r in model.predict(df).select("prediction").collect()]
    _assert_same_model(model, ref)
    assert predicted == ref.labels_.tolist()


def test_sparse_blocks_are_csr_in_the_cache_and_in_the_store(sc: Any) -> None:
    X = _csr(2)
    data = to_blocks(sc.parallelize(_vectors(X), 2))
    try:
        assert data.sparse and not data.integer_valued
        stored = data.cached.collect()
        assert all(isinstance(points, SparseRows) for points, *_ in stored)
        assert data.store is not None  # local master: the partitions' CSR arrays are files too
        files = [item for p in range(data.num_partitions) for item in data.store.read(p) or []]
        assert len(files) == len(stored)
        for (points, *rest), (cached, *cached_rest) in zip(files, stored, strict=True):
            assert isinstance(points, SparseRows) and rest == cached_rest
            assert points.indices.dtype == np.int32 and points.indptr.dtype == np.int64
            np.testing.assert_array_equal(points.toarray(), cached.toarray())
        assert data.max_abs == pytest.approx(float(np.abs(X.data).max()))
    finally:
        data.unpersist()


def test_a_sparse_fit_with_the_store_equals_one_without(sc: Any) -> None:
    from kmeans.backends.spark_rdd import SparkRDDBackend

    rdd = sc.parallelize(_vectors(_csr(6)), 2)
    fit = {"n_clusters": 3, "init": "k-means||", "n_init": 1, "seed": 2, "max_iter": 6, "tol": 0.0}
    with_store = KMeans(**fit, backend=SparkRDDBackend()).fit(rdd)
    plain = KMeans(**fit, backend=SparkRDDBackend(local_store=False)).fit(rdd)
    np.testing.assert_array_equal(with_store.cluster_centers_, plain.cluster_centers_)
    assert with_store.inertia_ == plain.inertia_ and with_store.n_iter_ == plain.n_iter_


def test_bad_sparse_rows_give_the_dense_messages(sc: Any) -> None:
    from pyspark.ml.linalg import Vectors

    nan = [Vectors.sparse(3, [0], [1.0]), Vectors.sparse(3, [2], [float("nan")])]
    with pytest.raises(ValidationError, match=r"NaN or infinite values in 1 of 2 rows \(first at row 1\)"):
        KMeans(2, backend="spark-rdd").fit(sc.parallelize(nan, 1))
    ragged = [Vectors.sparse(3, [0], [1.0]), Vectors.sparse(4, [2], [1.0])]
    with pytest.raises(ValidationError, match="different lengths"):
        KMeans(2, backend="spark-rdd").fit(sc.parallelize(ragged, 1))
    rows = sc.parallelize(_vectors(_csr(3, n=10)), 1)
    with pytest.raises(ValidationError, match="cannot read sparse rows"):
        KMeans(2, distance="l1", backend="spark-rdd").fit(rows)
    with pytest.raises(ValidationError, match="compress=True needs dense rows"):
        KMeans(2, compress=True, backend="spark-rdd").fit(rows)


def test_every_other_initializer_and_transform_score_on_sparse_rows(sc: Any) -> None:
    X = _csr(4)
    rdd = sc.parallelize(_vectors(X), 2)
    dense = sc.parallelize(X.toarray().tolist(), 2)
    explicit = X[:3].toarray()
    for init in ("take-sample", "per-partition", explicit):
        fit = {"n_clusters": 3, "init": init, "n_init": 1, "seed": 7, "max_iter": 6}
        model = KMeans(**fit, backend="spark-rdd").fit(rdd)
        ref = KMeans(**fit, backend="spark-rdd").fit(dense)  # the dense Spark fit of the same rows
        assert model.labels_.collect() == ref.labels_.collect()
        np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12, atol=1e-14)
    # transform and score run in process (on the CSR matrix itself: it stays sparse there too)
    np.testing.assert_allclose(np.asarray(model.transform(X)), np.asarray(ref.transform(X.toarray())), rtol=1e-12)
    assert model.score(X) == pytest.approx(ref.score(X.toarray()), rel=1e-10)


def test_sparse_rows_at_an_extreme_scale_are_rescaled_exactly(sc: Any) -> None:
    tiny = _csr(5) * 2.0**-560  # squared distances underflow unless rescaled (#14)
    fit = {"n_clusters": 3, "init": "k-means||", "n_init": 1, "seed": 3, "max_iter": 6}
    model = KMeans(**fit, backend="spark-rdd").fit(sc.parallelize(_vectors(tiny), 2))
    ref = KMeans(**fit, backend="spark-rdd").fit(sc.parallelize(tiny.toarray().tolist(), 2))
    assert model.labels_.collect() == ref.labels_.collect()
    assert np.all(model.cluster_centers_.max(axis=1) > 0)  # no cost underflowed into an empty or zero center
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12, atol=0)


# -- DataFrames: a vector column of SparseVectors --------------------------------------------------


def test_a_sparse_vector_dataframe_is_cached_and_stored_as_csr_near_its_size(spark: Any) -> None:
    X = _csr(8, n=40, d=1 << 18, density=4 / (1 << 18))  # HashingTF's default width, and its declaration
    csr_bytes = X.data.nbytes + X.indices.astype(np.int32).nbytes + X.indptr.astype(np.int64).nbytes
    df = _declared(_frame(spark, X), 1 << 18)
    for store in (True, False):
        data = frames.blocks_from_dataframe(df, store=store)
        try:
            assert data.sparse and data.n_features == 1 << 18 and (data.store is not None) == store
            cached = [points for points, *_ in data.cached.collect()]
            assert all(isinstance(points, SparseRows) for points in cached)
            assert sum(points.nbytes for points in cached) <= csr_bytes + 8 * len(cached)  # one indptr entry per block
            got = sp.vstack([points.to_scipy() for points in cached]).tocsr()
            assert (got != X).nnz == 0
            if data.store is not None:
                files = [points for p in range(2) for points, *_ in data.store.read(p) or []]
                assert len(files) == len(cached) and all(isinstance(points, SparseRows) for points in files)
                on_disk = sum(f.stat().st_size for f in Path(data.store.root).rglob("*.npy"))
                assert on_disk < csr_bytes + 1024 * len(files)  # npy headers only beyond the CSR arrays
        finally:
            data.unpersist()


@pytest.mark.parametrize("why", ["first-rows-dense", "declared-narrow"])
def test_a_dataframe_read_dense_has_the_same_model(spark: Any, why: str) -> None:
    from pyspark.ml.linalg import Vectors

    X = sp.vstack([_csr(9)] * 2).tocsr()
    if why == "first-rows-dense":  # the rows that choose the form are all dense
        rows = [Vectors.dense(v.toArray()) if i < frames.SPARSE_PROBE_ROWS else v for i, v in enumerate(_vectors(X))]
        df = spark.createDataFrame([(v,) for v in rows], ["features"]).coalesce(2)
    else:  # every vector sparse, but at most DENSE_WIDTH features: no probe
        df = _declared(_frame(spark, X), X.shape[1])
        assert X.shape[1] <= frames.DENSE_WIDTH
    data = frames.blocks_from_dataframe(df)
    try:
        assert not data.sparse
        assert all(isinstance(points, np.ndarray) for points, *_ in data.cached.collect())
    finally:
        data.unpersist()
    fit = {"n_clusters": 3, "init": "k-means||", "n_init": 1, "seed": 1, "max_iter": 6}
    _assert_same_model(KMeans(**fit, backend="spark-rdd").fit(df), KMeans(**fit).fit(X))


def test_the_arrow_vector_reader_builds_canonical_csr_and_refuses_bad_vectors() -> None:
    import pyarrow as pa
    from pyspark.ml.linalg import VectorUDT

    struct = pa.struct(
        [
            ("type", pa.int8()),
            ("size", pa.int32()),
            ("indices", pa.list_(pa.int32())),
            ("values", pa.list_(pa.float64())),
        ]
    )
    assert [f.name for f in VectorUDT().sqlType().fields] == struct.names  # the UDT's own layout

    def vectors(*rows: tuple[int, Any, Any, Any]) -> Any:
        return pa.array([dict(zip(struct.names, r, strict=True)) for r in rows], type=struct)

    mixed = frames.vector_rows(vectors((1, None, None, [0.0, 2.0, 0.0]), (0, 3, [0, 2], [0.0, 5.0])), "v")
    assert isinstance(mixed, SparseRows) and mixed.nnz == 2  # zeros dropped, dense or explicit
    np.testing.assert_array_equal(mixed.toarray(), [[0.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    dense = frames.vector_rows(vectors((1, None, None, [1.0, 2.0])), "v")
    assert isinstance(dense, np.ndarray) and dense.shape == (1, 2)
    with pytest.raises(ValueError, match=r"column 'v' has vectors of different lengths \[3, 4\]"):
        frames.vector_rows(vectors((0, 3, [0], [1.0]), (1, None, None, [1.0, 2.0, 3.0, 4.0])), "v")
    with pytest.raises(ValueError, match=r"indices outside 0\.\.2"):
        frames.vector_rows(vectors((0, 3, [5], [1.0])), "v")


def test_a_weight_column_with_sparse_vectors_equals_numpy_with_sample_weight(spark: Any) -> None:
    X = _csr(10)
    w = np.random.default_rng(10).uniform(0.25, 3.0, size=X.shape[0]).round(2)
    fit = {"n_clusters": 3, "init": "k-means||", "n_init": 1, "seed": 6, "max_iter": 8}
    ref = KMeans(**fit).fit(X, sample_weight=w)
    model = KMeans(**fit, backend="spark-rdd").fit(_frame(spark, X, weights=w), sample_weight="w")
    _assert_same_model(model, ref)


def test_a_sparse_vector_dataframe_at_an_extreme_scale_is_the_unscaled_fit_scaled(spark: Any) -> None:
    X = _csr(11)
    fit = {"n_clusters": 3, "init": "k-means||", "n_init": 1, "seed": 8, "max_iter": 6, "tol": 0.0}
    ref = KMeans(**fit).fit(X)
    model = KMeans(**fit, backend="spark-rdd").fit(_frame(spark, X * 2.0**-560))  # squared distances underflow (#14)
    np.testing.assert_array_equal(np.asarray(model.labels_.collect()), ref.labels_)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_ * 2.0**-560, rtol=1e-12, atol=0)
    assert model.inertia_ == pytest.approx(ref.inertia_ * 2.0**-1120, rel=1e-10)


def test_bad_sparse_vector_dataframes_give_the_dense_messages(spark: Any) -> None:
    X = _csr(12, n=40)
    with pytest.raises(ValidationError) as sparse_null:
        frames.blocks_from_dataframe(_frame(spark, X, nulls=(25,)))
    with pytest.raises(ValidationError) as dense_null:
        frames.blocks_from_dataframe(_frame(spark, X, dense_every=1, nulls=(25,)))
    assert str(sparse_null.value) == str(dense_null.value)
    assert "column 'features' has 1 null values" in str(sparse_null.value)
    nan = X.copy()
    nan.data[nan.indptr[30]] = np.nan
    with pytest.raises(ValidationError, match=r"NaN or infinite values in 1 of 40 rows \(first at row 30\)"):
        frames.blocks_from_dataframe(_frame(spark, nan))
    from pyspark.ml.linalg import Vectors

    ragged = spark.createDataFrame([(Vectors.sparse(3, [0], [1.0]),), (Vectors.sparse(4, [2], [1.0]),)], ["features"])
    with pytest.raises(ValidationError, match="different lengths"):
        frames.blocks_from_dataframe(ragged.coalesce(1))


def test_predict_on_a_sparse_vector_column_stays_sparse_and_nulls_bad_rows(spark: Any) -> None:
    # predict(df) reads a sparse column's struct form batch by batch (CSR, never n x d): the
    # labels of the in-process model on the CSR rows; a null vector or one holding NaN gets null.
    import pyspark.sql.functions as sf

    X = _csr(6, n=40, d=3000, density=0.01)
    bad = X.copy().tolil()
    bad[7, 5] = np.nan
    model = KMeans(n_clusters=3, init="k-means++", seed=2, max_iter=5).fit(X)  # numpy: the reference
    df = _frame(spark, bad.tocsr(), dense_every=5, nulls=(3,)).withColumn("tag", sf.lit("x"))
    spark_model = KMeans(n_clusters=3, init=model.cluster_centers_, max_iter=0, backend="spark-rdd")
    spark_model.fit(_frame(spark, X))
    out = spark_model.predict(df).collect()
    assert [r.tag for r in out] == ["x"] * 40 and out[0].features is not None  # every column kept
    got = [r.prediction for r in out]
    want = model.predict(X).tolist()
    assert got[3] is None and got[7] is None
    assert [g for i, g in enumerate(got) if i not in (3, 7)] == [w for i, w in enumerate(want) if i not in (3, 7)]
    assert spark_model.predict(_frame(spark, X)).select("prediction").rdd.map(lambda r: r[0]).collect() == want
