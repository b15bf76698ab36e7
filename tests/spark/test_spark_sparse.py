"""Spark SparseVector rows on spark-rdd: CSR blocks (never dense), the same model as numpy on the CSR matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from kmeans import KMeans, ValidationError
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
    ("distance", "init", "module"),
    [
        ("l2", "k-means++", "ml"),
        ("l2", "k-means||", "mllib"),
        ("cosine", "random", "ml"),
    ],
)
def test_spark_rdd_on_sparse_vectors_equals_numpy_on_the_csr_matrix(
    sc: Any, distance: str, init: str, module: str
) -> None:
    X = _csr(1)
    fit = {"n_clusters": 3, "init": init, "n_init": 1, "seed": 5, "max_iter": 8, "distance": distance}
    ref = KMeans(**fit).fit(X)
    rdd = sc.parallelize(_vectors(X, module), 2)
    model = KMeans(**fit, backend="spark-rdd").fit(rdd)
    np.testing.assert_array_equal(np.asarray(model.labels_.collect()), ref.labels_)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-12, atol=1e-14)
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
    assert model.predict(rdd).collect() == ref.labels_.tolist()


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
