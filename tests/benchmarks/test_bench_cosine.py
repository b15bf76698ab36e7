"""Spherical k-means vs scikit-learn and faiss, and the memory of a sparse fit (issue #16).

Cells: 100k x 768 normalized float32 blobs (k=100, 20 iterations) against scikit-learn
(normalized rows + Lloyd) and faiss (``spherical=True``); a hashed TF-IDF corpus of 100k
documents x 2**18 features at 0.1% density (k=20, 10 iterations) against scikit-learn's
sparse KMeans. Every engine starts from the same unit centers and runs a fixed number of
iterations (``tol=0``); one round of every baseline runs before each of ours (interleaved).
Goal: at least 1.0x the faster baseline. Memory: the traced peak of a sparse fit, over the
CSR size, in a subprocess.

Smoke mode (the default run): small stand-ins, checked against the brute-force spherical
reference (dense) and for agreement between the CSR and the dense fit.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmeans.bench.cosine import HASH_FEATURES, CosineData, cosine_inertia, engines, fit_ours, make_data
from tests import oracle
from tests.benchmarks.conftest import Book, Sizes

ROOT = Path(__file__).resolve().parents[2]


def _cell(kind: str, sizes: Sizes) -> tuple[Any, int]:
    if kind == "blobs":
        data = make_data("blobs", 100_000, 100, 768) if sizes.full else make_data("blobs", 3_000, 8, 64)
        return data, 20 if sizes.full else 3
    data = make_data("tfidf", 100_000, 20, HASH_FEATURES) if sizes.full else make_data("tfidf", 2_000, 6, 1 << 14)
    return data, 10 if sizes.full else 3


@pytest.mark.parametrize("kind", ["blobs", "tfidf"])
def test_cosine_fit_time_vs_sklearn_and_faiss(benchmark: Any, book: Book, sizes: Sizes, kind: str) -> None:
    data, iterations = _cell(kind, sizes)
    group = f"cosine {data.name}"
    benchmark.group = group
    refs = {name: fit for name, fit in engines(kind == "tfidf").items() if name != "kmeans"}
    ref_times: dict[str, list[float]] = {name: [] for name in refs}
    ref_centers: dict[str, np.ndarray] = {}

    def references() -> None:
        for name, fit in refs.items():
            t0 = time.perf_counter()
            ref_centers[name] = fit(data, iterations)
            ref_times[name].append(time.perf_counter() - t0)

    fit_ours(data, 1)  # warm-up: compiled kernels
    out: list[np.ndarray] = []
    if not sizes.full:
        references()
    benchmark.pedantic(
        lambda: out.append(fit_ours(data, iterations)),
        setup=references if sizes.full else None,
        rounds=3 if sizes.full else 1,
        iterations=1,
    )
    ours = cosine_inertia(data.points, out[-1])
    rec = book.record(benchmark, group, "kmeans", ours)
    if "faiss" in ref_centers:  # the same algorithm in float32: the same centers up to rounding
        assert ours <= cosine_inertia(data.points, ref_centers["faiss"]) * (1 + 1e-4)
    if not sizes.full and kind == "blobs":
        _, _, want = oracle.lloyd(data.points, data.centers, iterations, distance="cosine")
        assert ours == pytest.approx(want, rel=1e-9)
    if not sizes.full and kind == "tfidf":  # the CSR fit equals the dense fit of the same matrix
        dense = CosineData(data.name, data.points.toarray(), data.centers)
        np.testing.assert_allclose(fit_ours(dense, iterations), out[-1], rtol=1e-12, atol=1e-14)
    for name, times in ref_times.items():
        benchmark.extra_info[f"{name}_median"] = statistics.median(times)
        benchmark.extra_info[f"{name}_inertia"] = cosine_inertia(data.points, ref_centers[name])
    if sizes.full and rec.median is not None and ref_times:
        fastest = min(statistics.median(t) for t in ref_times.values())
        ratio = fastest / rec.median
        benchmark.extra_info["ratio_vs_fastest"] = ratio
        book.targets.append((group, "kmeans", "faster baseline", 1.0, ratio))
        book.goal(f"{group}: kmeans vs the faster baseline", round(ratio, 3), ratio >= 1.0, ">= 1.0")


_MEMORY_SCRIPT = """
import json, sys
from kmeans import KMeans
from kmeans.bench._common import measure_memory
from kmeans.bench.cosine import hashed_tfidf, shared_centers
n, d, k, distance = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
X = hashed_tfidf(n, n_features=d)
init = shared_centers(X, k)
KMeans(k, distance=distance, init=init, max_iter=1, tol=0).fit(X[:2000])  # compile outside the measurement
with measure_memory() as peak:
    model = KMeans(k, distance=distance, init=init, max_iter=5, tol=0).fit(X)
csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
print(json.dumps({"csr": csr, "traced_peak": peak.traced, "centers": k * d * 8, "nnz": X.nnz}))
"""


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_peak_memory_of_a_sparse_fit_is_o_nnz(benchmark: Any, book: Book, sizes: Sizes, distance: str) -> None:
    """A sparse fit allocates about the CSR size, never the dense matrix (tracemalloc, in a subprocess)."""
    n, d, k = (100_000, HASH_FEATURES, 20) if sizes.full else (3_000, 1 << 14, 5)
    benchmark.group = f"memory sparse {distance}"
    proc = benchmark.pedantic(
        lambda: subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, str(n), str(d), str(k), distance],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ),
        rounds=1,
        iterations=1,
    )
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = m["traced_peak"] / m["csr"]
    dense = n * d * 8
    book.record(benchmark, f"memory sparse {distance}", f"kmeans-{n}", float("nan"), peak_over_csr=round(ratio, 3), **m)
    assert m["traced_peak"] < dense / 20  # never anywhere near densifying
    # O(nnz): the CSR-sized per-pass work plus the dense (k, d) centers and their per-block sums
    book.goal(f"sparse {distance} fit: traced peak / CSR size", round(ratio, 3), ratio <= 2.0, "<= 2")
