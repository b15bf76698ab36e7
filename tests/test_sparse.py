"""Sparse input (scipy.sparse CSR/CSC) on the numpy backend: CSR blocks, never densified."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from kmeans import KMeans, ValidationError
from kmeans.backends.numpy import NumPyBackend
from kmeans.distance.l2 import SquaredEuclidean
from kmeans.sparse import SparseRows, rows_equal
from tests import oracle


def _sparse_blobs(seed: int, n: int = 900, d: int = 40, density: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 3, size=(5, d)) * (rng.random((5, d)) < 0.5)
    X = centers[rng.integers(0, 5, n)] + rng.normal(scale=0.3, size=(n, d))
    X[rng.random((n, d)) > density] = 0.0
    X[:, 0] += 0.1  # no all-zero rows (cosine refuses them)
    return X


X = _sparse_blobs(0)
W = np.random.default_rng(1).uniform(0.2, 3.0, X.shape[0])


def test_sparse_rows_index_like_the_dense_rows() -> None:
    rows = SparseRows.from_scipy(sparse.csr_matrix(X))
    np.testing.assert_array_equal(np.asarray(rows), X)
    for key in (slice(10, 50), slice(3, 90, 7), np.array([5, 2, 2, 800]), X[:, 1] > 0):
        np.testing.assert_array_equal(np.asarray(rows[key]), X[key])
    assert rows[10:50][5:8].shape == (3, X.shape[1])
    np.testing.assert_array_equal(np.asarray(rows[10:50][5:8]), X[15:18])
    np.testing.assert_array_equal(rows_equal(rows, X[4]), np.all(X[4] == X, axis=1))
    np.testing.assert_array_equal(rows.to_scipy().toarray(), X)


def test_non_canonical_input_is_made_canonical() -> None:
    # duplicate entries, unsorted indices, explicit zeros: summed, sorted, dropped
    m = sparse.csr_matrix((np.array([1.0, 2.0, 0.0, 3.0]), np.array([2, 2, 0, 1]), np.array([0, 3, 4])), shape=(2, 3))
    rows = SparseRows.from_scipy(m)
    np.testing.assert_array_equal(np.asarray(rows), [[0.0, 0.0, 3.0], [0.0, 3.0, 0.0]])
    assert rows.nnz == 2


@pytest.mark.parametrize("distance", ["l2", "cosine"])
@pytest.mark.parametrize("init", ["random", "k-means++", "k-means||", "per-partition"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_csr_fit_equals_the_dense_fit(distance: str, init: str, dtype: type) -> None:
    data = X.astype(dtype)
    kw = {"distance": distance, "init": init, "seed": 4, "max_iter": 30, "backend": NumPyBackend(block_rows=200)}
    dense = KMeans(5, **kw).fit(data, sample_weight=W)  # type: ignore[arg-type]
    csr = KMeans(5, **kw).fit(sparse.csr_matrix(data), sample_weight=W)  # type: ignore[arg-type]
    np.testing.assert_array_equal(csr.labels_, dense.labels_)
    np.testing.assert_allclose(csr.cluster_centers_, dense.cluster_centers_, rtol=1e-12, atol=1e-13)
    assert csr.inertia_ == pytest.approx(dense.inertia_, rel=1e-12)
    assert csr.n_iter_ == dense.n_iter_
    np.testing.assert_array_equal(csr.predict(sparse.csc_matrix(data)), dense.predict(data))
    np.testing.assert_allclose(csr.transform(sparse.csr_matrix(data[:50])), dense.transform(data[:50]), rtol=1e-9)
    assert csr.score(sparse.csr_matrix(data)) == pytest.approx(dense.score(data), rel=1e-12)


def test_sparse_l2_labels_equal_the_dense_kernels_at_near_ties() -> None:
    # rows equidistant from two centers (up to rounding): the window re-checks them in feature order
    rng = np.random.default_rng(2)
    centers = np.zeros((3, 30))
    centers[0, 0], centers[1, 1], centers[2, 2] = 1.0, 1.0 + 1e-13, 5.0
    points = np.zeros((200, 30))
    points[:, 0] = points[:, 1] = rng.uniform(0.5, 2.0, 200)
    points[:, 5] = rng.normal(size=200)
    labels, costs = SquaredEuclidean().assign(SparseRows.from_scipy(sparse.csr_matrix(points)), centers)  # type: ignore[arg-type]
    want_labels, want_costs = oracle.assign(points, centers)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(costs, want_costs, rtol=1e-12)


def test_an_empty_cluster_moves_to_the_farthest_sparse_row_as_dense() -> None:
    init = np.vstack([X[:4], np.full(X.shape[1], 50.0)])  # the last center attracts no row
    dense = KMeans(5, init=init, max_iter=3, tol=0).fit(X)
    csr = KMeans(5, init=init, max_iter=3, tol=0).fit(sparse.csr_matrix(X))
    assert dense.history_[0].n_empty == csr.history_[0].n_empty == 1
    np.testing.assert_allclose(csr.cluster_centers_, dense.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(csr.labels_, dense.labels_)


def test_sparse_input_is_validated() -> None:
    bad = sparse.csr_matrix(X)
    bad.data[3] = np.nan
    with pytest.raises(ValidationError, match=r"NaN or infinite values \(1 stored values, first in row 0\)"):
        KMeans(2, seed=0).fit(bad)
    with pytest.raises(ValidationError, match=r"compress=True needs dense rows"):
        KMeans(2, seed=0, compress=True).fit(sparse.csr_matrix(X))
    with pytest.raises(ValidationError, match=r"0 rows"):
        KMeans(2, seed=0).fit(sparse.csr_matrix((0, 3)))
    zero = sparse.csr_matrix(np.vstack([X[:10], np.zeros((1, X.shape[1]))]))
    with pytest.raises(ValidationError, match=r"all-zero rows: 1 row\(s\) are zero \(first at row 10\)"):
        KMeans(2, seed=0, distance="cosine").fit(zero)
    model = KMeans(2, seed=0).fit(sparse.csr_matrix(X))
    with pytest.raises(ValidationError, match=r"X has 3 features, but KMeans is expecting 40"):
        model.predict(sparse.csr_matrix(np.ones((2, 3))))


def test_integer_sparse_input_is_fitted_as_float64() -> None:
    dense = np.rint(np.abs(X) * 3).astype(np.int64)
    dense[:, 0] += 1
    counts = sparse.csr_matrix(dense)
    model = KMeans(3, seed=0, distance="cosine").fit(counts)
    want = KMeans(3, seed=0, distance="cosine").fit(counts.toarray().astype(np.float64))
    np.testing.assert_allclose(model.cluster_centers_, want.cluster_centers_, rtol=1e-12)


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_bisecting_and_minibatch_fits_of_csr_equal_their_dense_fits(distance: str) -> None:
    from kmeans import BisectingKMeans

    csr = sparse.csr_matrix(X)
    a, b = (BisectingKMeans(5, distance=distance, seed=0).fit(data) for data in (X, csr))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12, atol=1e-14)
    a, b = (KMeans(5, distance=distance, algorithm="minibatch", batch_size=128, seed=0).fit(data) for data in (X, csr))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12, atol=1e-14)
