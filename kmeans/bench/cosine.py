"""Spherical k-means benchmark data and engines: normalized blobs and a hashed TF-IDF corpus.

Every engine runs the same Lloyd iterations (``tol=0``) from the same unit initial centers:

- ``kmeans``: ``KMeans(distance="cosine")`` on the rows as given (dense or CSR);
- ``sklearn``: scikit-learn's ``KMeans(algorithm="lloyd")`` on L2-normalized rows (its
  Euclidean means are not renormalized; on unit rows the assignment is the same as by
  cosine similarity to the centers' directions), dense or its sparse path;
- ``faiss``: ``faiss.Kmeans(spherical=True)`` on normalized dense float32 rows (it has no
  sparse input; the TF-IDF matrix would be 100 GB dense).

Normalizing is part of the baselines' time. Quality is compared by one inertia for all:
``sum_i (1 - max_j cos(x_i, c_j))`` against the centers each engine returned.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import KMeans

#: Hashed feature space of the TF-IDF corpus (``2**18``, as scikit-learn's HashingVectorizer default is ``2**20``).
HASH_FEATURES = 1 << 18


@attrs.frozen(eq=False)
class CosineData:
    """Rows (dense ndarray or scipy CSR) and the shared unit initial centers."""

    name: str
    points: Any
    centers: NDArray[np.float64]


def normalized_blobs(n: int, d: int, k: int, seed: int = 0, dtype: Any = np.float32) -> NDArray[Any]:
    """``(n, d)`` unit rows around ``k`` random directions (an embedding-like mixture)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(k, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    x = directions[rng.integers(0, k, n)] + rng.normal(scale=1.5 / np.sqrt(d), size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(dtype)


def hashed_tfidf(n_docs: int, density: float = 0.001, n_features: int = HASH_FEATURES, seed: int = 0) -> Any:
    """A CSR TF-IDF matrix (float64, unit rows) of a generated corpus of ``n_docs`` documents.

    Each document draws about ``density * n_features`` distinct terms: half from its topic's
    Zipf-distributed vocabulary, half from the shared one, hashed into ``n_features`` columns;
    counts are weighted by ``log(n / df) + 1`` and rows normalized (scikit-learn's defaults).
    """
    from scipy import sparse

    rng = np.random.default_rng(seed)
    n_topics = 40
    tokens = max(2, int(density * n_features * 1.55))
    vocab = 50_000
    topic = rng.integers(0, n_topics, n_docs)
    own = rng.random((n_docs, tokens)) < 0.5
    # Zipf-like ranks over a finite vocabulary: the inverse CDF of the density r**-1.1 on [1, vocab]
    a = 1.0 - 1.1
    u = rng.random((n_docs, tokens))
    ranks = np.minimum(((vocab**a - 1.0) * u + 1.0) ** (1.0 / a), vocab).astype(np.int64) - 1
    word = np.where(own, ranks + vocab * (1 + topic[:, None]), ranks)
    cols = ((word.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - 18)).astype(np.int64)
    cols %= n_features
    rows = np.repeat(np.arange(n_docs), tokens)
    counts = sparse.csr_matrix((np.ones(rows.size), (rows, cols.reshape(-1))), shape=(n_docs, n_features))
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=n_features)
    idf = np.log(n_docs / np.maximum(df, 1)) + 1.0
    counts.data *= idf[counts.indices]
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    counts = sparse.diags(1.0 / norms) @ counts
    out = counts.tocsr()
    out.sort_indices()
    return out


def unit_rows(x: Any) -> Any:
    """Rows scaled to unit Euclidean norm (dense or CSR), as the baselines need them."""
    from sklearn.preprocessing import normalize

    return normalize(x, norm="l2", copy=True)


def shared_centers(points: Any, k: int, seed: int = 0) -> NDArray[np.float64]:
    """``k`` distinct rows drawn with ``seed``, normalized: the initial centers every engine starts from."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(points.shape[0], size=k, replace=False))
    rows = points[idx]
    c = np.asarray(rows.toarray() if hasattr(rows, "toarray") else rows, dtype=np.float64)
    out: NDArray[np.float64] = c / np.linalg.norm(c, axis=1, keepdims=True)
    return out


def make_data(kind: str, n: int, k: int, d: int = 768, seed: int = 0) -> CosineData:
    """``kind="blobs"``: normalized float32 blobs ``(n, d)``; ``kind="tfidf"``: the hashed TF-IDF corpus."""
    if kind == "blobs":
        x: Any = normalized_blobs(n, d, k, seed)
        name = f"normalized blobs {n} x {d}, k={k}"
    else:
        x = hashed_tfidf(n, n_features=d, seed=seed)
        name = f"TF-IDF {n} docs x {d}, {x.nnz / (n * d):.2%} dense, k={k}"
    return CosineData(name, x, shared_centers(x, k, seed))


def cosine_inertia(points: Any, centers: NDArray[Any]) -> float:
    """``sum_i (1 - max_j cos(x_i, c_j))`` in float64 (one formula for every engine's centers)."""
    c = np.asarray(centers, dtype=np.float64)
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    total = 0.0
    for s in range(0, points.shape[0], 8192):
        x = points[s : s + 8192]
        if hasattr(x, "toarray"):  # sparse: products and norms without densifying
            x64 = x.astype(np.float64)
            sims = np.asarray(x64 @ c.T)
            norms = np.sqrt(np.asarray(x64.multiply(x64).sum(axis=1)).ravel())
        else:
            x64 = np.asarray(x, dtype=np.float64)
            sims, norms = x64 @ c.T, np.linalg.norm(x64, axis=1)
        total += float(np.sum(1.0 - sims.max(axis=1) / norms))
    return total


Fit = Callable[[CosineData, int], NDArray[np.float64]]


def fit_ours(data: CosineData, iterations: int) -> NDArray[np.float64]:
    model = KMeans(data.centers.shape[0], distance="cosine", init=data.centers, max_iter=iterations, tol=0.0, n_init=1)
    return np.asarray(model.fit(data.points).cluster_centers_)


def fit_sklearn(data: CosineData, iterations: int) -> NDArray[np.float64]:
    from sklearn.cluster import KMeans as SKMeans

    x = unit_rows(data.points)
    model = SKMeans(data.centers.shape[0], init=data.centers, n_init=1, max_iter=iterations, tol=0.0, algorithm="lloyd")
    return np.asarray(model.fit(x).cluster_centers_, dtype=np.float64)


def fit_faiss(data: CosineData, iterations: int) -> NDArray[np.float64]:
    import faiss

    x = np.ascontiguousarray(unit_rows(np.asarray(data.points, dtype=np.float32)), dtype=np.float32)
    k = data.centers.shape[0]
    km = faiss.Kmeans(x.shape[1], k, niter=iterations, spherical=True, verbose=False, max_points_per_centroid=1 << 30)
    km.train(x, init_centroids=np.ascontiguousarray(data.centers, dtype=np.float32))
    return np.asarray(km.centroids, dtype=np.float64)


def engines(sparse_input: bool) -> dict[str, Fit]:
    """Ours and the installed baselines (faiss only for dense input)."""
    out: dict[str, Fit] = {"kmeans": fit_ours}
    if importlib.util.find_spec("sklearn") is not None:
        out["sklearn"] = fit_sklearn
    if not sparse_input and importlib.util.find_spec("faiss") is not None:
        out["faiss"] = fit_faiss
    return out
