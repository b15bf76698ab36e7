"""Issue 14: strategy objects, estimator parameters and thread layouts that must not break a fit.

Expected values come from the brute-force reference in :mod:`tests.oracle`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans
from kmeans.errors import ValidationError
from kmeans.validation import check_points
from tests import oracle

X5 = np.random.default_rng(0).normal(size=(40, 5))


class FixedInit:
    """An Initializer returning whatever it was given."""

    name = "fixed"

    def __init__(self, centers: Any) -> None:
        self.centers = centers

    def init(self, dataset: Any, k: int, assign: Any, seed: int) -> Any:
        return self.centers


# -- custom initializers: checked before any kernel reads their output ------------------------


@pytest.mark.parametrize(
    ("centers", "message"),
    [
        (X5[:2], r"shape \(2, 5\); expected \(8, 5\)"),  # wrong count
        (X5[:8, :2], r"shape \(8, 2\); expected \(8, 5\)"),  # wrong width: kernels would read past rows
        (X5[:8, 0], r"shape \(8,\); expected \(8, 5\)"),
        (np.vstack([X5[:7], np.full((1, 5), np.nan)]), r"NaN or infinite centers \(rows \[7\]\)"),
        (np.vstack([X5[:7], np.full((1, 5), np.inf)]), r"NaN or infinite"),
        (X5[:8] + 1j, r"dtype complex128; expected real numbers"),
        (np.array([["a"] * 5] * 8), r"dtype <U1; expected real"),
        ([[1.0, 2.0], [3.0]], r"not a numeric \(k, d\) array"),
    ],
    ids=["count", "width", "1d", "nan", "inf", "complex", "strings", "ragged"],
)
def test_a_wrong_initializer_output_is_refused_naming_the_strategy(centers: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=r"initializer 'fixed' \(FixedInit\) returned .*" + message):
        KMeans(8, init=FixedInit(centers), seed=0).fit(X5)


def test_a_right_initializer_output_of_another_real_dtype_is_used_as_float64() -> None:
    start = np.round(X5[:3]).astype(np.int64)
    model = KMeans(3, init=FixedInit(start), max_iter=2, tol=0, seed=0).fit(X5)
    centers, labels, inertia = oracle.lloyd(X5, start.astype(np.float64), 2)
    np.testing.assert_allclose(model.cluster_centers_, centers, rtol=1e-12)
    assert model.labels_.tolist() == labels.tolist()
    assert model.inertia_ == pytest.approx(inertia, rel=1e-12)


@pytest.mark.parametrize(
    "centers",
    [np.zeros((3, 2)), np.zeros((3, 5, 1)), np.zeros((0, 5)), np.full((3, 5), np.nan), np.zeros((3, 5), complex)],
    ids=["width", "3d", "none", "nan", "complex"],
)
@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_tampered_fitted_centers_never_reach_a_kernel(centers: Any, method: str) -> None:
    model = KMeans(3, seed=0).fit(X5)
    model.cluster_centers_ = centers
    with pytest.raises(ValidationError, match=r"cluster_centers_"):
        getattr(model, method)(X5)


# -- estimator parameters checked up front -------------------------------------------------------


class CountingInit(FixedInit):
    calls = 0

    def init(self, dataset: Any, k: int, assign: Any, seed: int) -> Any:
        CountingInit.calls += 1
        return super().init(dataset, k, assign, seed)


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [([1], r"callbacks\[0\] is 1, which is not callable"), (print, r"wrap a single one"), (3, r"sequence of")],
)
def test_bad_callbacks_are_refused_before_initialization(callbacks: Any, message: str) -> None:
    CountingInit.calls = 0
    with pytest.raises(ValidationError, match=message):
        KMeans(3, init=CountingInit(X5[:3]), callbacks=callbacks, seed=0).fit(X5)
    assert CountingInit.calls == 0


def test_complex_init_is_refused_not_truncated_to_its_real_part() -> None:
    with pytest.raises(ValidationError, match=r"init holds complex numbers"):
        KMeans(3, init=X5[:3] + 0.5j).fit(X5)
    with pytest.raises(ValidationError, match=r"init holds complex numbers"):
        KMeans(1, init=[[1 + 0j] * 5]).fit(X5)


# -- reproducibility: the same bits for any thread count and any usable cores ------------------

_REPRO = """
import hashlib, json, os, sys
cores, threads = json.loads(sys.argv[1])
os.sched_setaffinity(0, cores)  # before NumPy loads, so BLAS sees these cores too
import numpy as np
from kmeans import KMeans
from kmeans.backends.numpy import NumPyBackend
rng = np.random.default_rng(3)
out = {}
for name, d, distance in (("l2-direct", 3, "l2"), ("l2-gemm", 16, "l2"), ("l1", 3, "l1")):
    X = rng.normal(size=(17_000, d))  # > 4 x 4096 rows: four blocks * rng.uniform(0.1, 100.0, size=d)
    m = KMeans(5, distance=distance, max_iter=8, tol=0, seed=11,
               backend=NumPyBackend(n_threads=threads)).fit(X)
    labels = hashlib.sha256(m.labels_.tobytes()).hexdigest()
    out[name] = [m.cluster_centers_.tobytes().hex(), labels, float(m.inertia_).hex()]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_same_seed_gives_the_same_bits_for_any_threads_and_usable_cores(tmp_path: Path) -> None:
    cores = sorted(os.sched_getaffinity(0))
    layouts = [([cores[0]], None), (cores, None), (cores, 3)]  # 1, min(4, cores) and 3 threads
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _REPRO, json.dumps(layout)], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for layout in layouts
    ]
    for layout, result in zip(layouts[1:], results[1:], strict=True):
        assert result == results[0], f"cores/threads {layout} differ from {layouts[0]}"


# -- documented rules: the empty-cluster tie and max_iter=0 -----------------------------------


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [2, 0, 1, 3], [3, 2, 1, 0]])
def test_empty_cluster_ties_go_to_the_smaller_point_whatever_the_row_order(order: list[int]) -> None:
    X = np.array([[0.0], [1.0], [10.0], [11.0]])[order]
    start = np.array([[0.0], [11.0], [100.0]])
    model = KMeans(3, init=start, max_iter=1).fit(X)
    expected, labels, _ = oracle.lloyd(X, start, 1)
    assert model.cluster_centers_.ravel().tolist() == expected.ravel().tolist() == [0.0, 10.5, 1.0]
    assert model.labels_.tolist() == labels.tolist()


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_max_iter_zero_returns_the_initial_centers_with_their_labels_and_inertia(distance: str) -> None:
    start = X5[[3, 17, 29]]
    model = KMeans(3, init=start, max_iter=0, distance=distance).fit(X5)
    labels, _ = oracle.assign(X5, start, distance)
    assert model.cluster_centers_.tolist() == start.tolist()
    assert model.labels_.tolist() == labels.tolist()
    assert model.inertia_ == pytest.approx(oracle.inertia(X5, start, distance=distance), rel=1e-12)
    assert (model.n_iter_, model.converged_, model.history_) == (0, False, [])
    assert model.cluster_sizes_.tolist() == np.bincount(labels, minlength=3).tolist()


# -- inputs whose generic conversion would mislead ------------------------------------------------


def test_masked_arrays_with_masked_values_are_refused() -> None:
    X = np.ma.masked_array(X5, mask=np.zeros_like(X5, dtype=bool))
    X.mask[3, 1] = X.mask[7, 0] = True
    X.data[3, 1] = X.data[7, 0] = 1e9  # would become a center if used
    with pytest.raises(ValidationError, match=r"masked array with masked values in 2 rows \(first at row 3\)"):
        KMeans(3, seed=0).fit(X)
    with pytest.raises(ValidationError, match=r"masked array with masked values"):
        KMeans(3, seed=0).fit(X5).predict(X)
    clean = KMeans(3, init=X5[:3], max_iter=2, tol=0).fit(np.ma.masked_array(X5))  # nothing masked: the data
    assert clean.cluster_centers_.tolist() == oracle.lloyd(X5, X5[:3], 2)[0].tolist()


def test_missing_values_of_a_nullable_pandas_column_are_named() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": pd.array([1, 2, None, 4], dtype="Int64"), "b": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValidationError, match=r"missing values \(pd.NA or None\) in 1 of 4 rows \(first at row 2\)"):
        KMeans(2, seed=0).fit(df)
    with pytest.raises(ValidationError, match=r"missing values .* in 1 of 2 rows \(first at row 1\)"):
        KMeans(1, seed=0).fit([[1.0, 2.0], [None, 3.0]])  # an object array of None is NaN, as in sklearn


def test_sparse_input_is_named_as_unsupported_off_the_numpy_backend() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValidationError, match=r"scipy.sparse csr_matrix; sparse input is supported by backend='numpy'"):
        check_points(sparse.csr_matrix(X5))  # what the Spark backends call on in-memory input
    with pytest.raises(ValidationError, match=r"distance='l1' cannot read sparse rows"):
        KMeans(2, seed=0, distance="l1").fit(sparse.csr_matrix(X5))
