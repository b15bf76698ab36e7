"""Issue 14 for kmeans.datasets: a file fit equals the in-memory fit bit for bit at any finite scale.

The in-memory fits are checked against exact rational arithmetic in ``tests/test_hardening_scale.py``;
here the files must give the same bits: data at 1e-300, 1e200, 1e300 and subnormal, weights of 1e306.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmeans.datasets as kd
from kmeans import KMeans
from kmeans.backends.numpy import NumPyBackend

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

RNG = np.random.default_rng(14)
BLOBS = np.concatenate([RNG.normal(loc, 0.5, size=(40, 2)) for loc in ([0, 0], [8, 1], [3, 9])])
WEIGHTS = RNG.uniform(0.5, 2.0, size=BLOBS.shape[0])
BLOCK_ROWS = 50  # three blocks: the range and the rescaling span blocks

CASES = {
    "1e-300": (1e-300, 1.0),
    "1e200": (1e200, 1.0),
    "1e300": (1e300, 1.0),
    "subnormal": (2.0**-1066, 1.0),
    "1e306 weights": (1.0, 1e306),
}


def same(a: KMeans, b: KMeans) -> None:
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_ or (np.isnan(a.inertia_) and np.isnan(b.inertia_))
    assert a.n_iter_ == b.n_iter_
    assert np.array_equal(a.cluster_sizes_, b.cluster_sizes_)
    assert np.array_equal(a.labels_, b.labels_)


def fit(X: Any, sample_weight: Any = None, **kw: Any) -> KMeans:
    params = {"n_clusters": 3, "seed": 5, "n_init": 1, "init": "k-means||", "max_iter": 5} | kw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # totals of 1e306 weights overflow, honestly
        return KMeans(**params).fit(X, sample_weight=sample_weight)


def in_memory(X: np.ndarray, w: Any, **kw: Any) -> KMeans:
    return fit(X, w, backend=NumPyBackend(block_rows=BLOCK_ROWS), **kw)


def write(root: Path, X: np.ndarray, w: np.ndarray | None, **options: Any) -> tuple[Any, Any]:
    """``(npy dataset, parquet dataset)`` of the same rows (weights as a file and as a column)."""
    np.save(root / "x.npy", X)
    cols = {f"c{j}": X[:, j] for j in range(X.shape[1])}
    if w is not None:
        np.save(root / "w.npy", w)
        cols["w"] = w
    pq.write_table(pa.table(cols), root / "x.parquet", row_group_size=70, **options)
    npy = kd.npy(root / "x.npy", weights=None if w is None else root / "w.npy", block_rows=BLOCK_ROWS)
    features = [f"c{j}" for j in range(X.shape[1])]
    parquet = kd.parquet(
        root / "x.parquet", columns=features, weights=None if w is None else "w", block_rows=BLOCK_ROWS
    )
    return npy, parquet


@pytest.mark.parametrize("scale, weight", CASES.values(), ids=CASES.keys())
def test_file_fits_equal_the_in_memory_fit_at_extreme_scales(tmp_path: Path, scale: float, weight: float) -> None:
    X = BLOBS * scale
    w = WEIGHTS * weight if weight != 1.0 else None
    want = in_memory(X, w)
    assert want.labels_.tolist() == in_memory(BLOBS, WEIGHTS if w is not None else None).labels_.tolist()
    for ds in write(tmp_path, X, w):
        same(fit(ds), want)
        assert np.array_equal(KMeans.predict(want, ds), want.labels_)  # each block rescaled with the centers


def test_l1_and_explicit_centers_from_a_file_at_1e300(tmp_path: Path) -> None:
    # the old streamed check refused values above the L2 safe range even for L1, exact at every scale
    X = BLOBS * 1e300
    npy, _ = write(tmp_path, X, None)
    same(fit(npy, distance="l1", init=X[[0, 40, 80]]), in_memory(X, None, distance="l1", init=X[[0, 40, 80]]))
    same(fit(npy, init=X[[0, 40, 80]]), in_memory(X, None, init=X[[0, 40, 80]]))


def test_cosine_from_a_file_at_2_to_the_minus_700(tmp_path: Path) -> None:
    # the rows' norms underflow to 0: before rescaling, cosine's zero-row check refused them
    X = np.ldexp(BLOBS + 20.0, -700)
    npy, _ = write(tmp_path, X, None)
    same(fit(npy, distance="cosine"), in_memory(X, None, distance="cosine"))


def test_integer_files_with_huge_weights_compress_as_in_memory(tmp_path: Path) -> None:
    X = RNG.integers(0, 4, size=(300, 2)).astype(np.int16)
    w = RNG.uniform(0.5, 2.0, size=300) * 1e306
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "w.npy", w)
    ds = kd.npy(tmp_path / "x.npy", weights=tmp_path / "w.npy", block_rows=BLOCK_ROWS)
    same(fit(ds, init="random"), in_memory(X, w, init="random"))


def test_the_range_takes_one_pass_and_parquet_statistics_take_none(tmp_path: Path) -> None:
    npy, parquet = write(tmp_path, BLOBS * 1e-300, None)
    assert npy.value_range() == (float(np.max(np.abs(BLOBS * 1e-300))), 1.0)

    def unread(*args: Any) -> Any:
        raise AssertionError("read the files again")

    npy._read_blocks = unread  # type: ignore[method-assign]
    parquet._read_blocks = unread  # type: ignore[method-assign]
    assert npy.value_range() == parquet.value_range()  # remembered; from the row groups' min and max
    scaled = npy.scaled(1000, 3)  # a view: the same range, times its powers of two
    assert scaled.value_range() == (float(np.ldexp(npy.value_range()[0], 1000)), 8.0)
    assert scaled.total_weight == 8.0 * npy.total_weight


def test_parquet_without_statistics_reads_its_range(tmp_path: Path) -> None:
    X, w = BLOBS * 2.0**-1066, WEIGHTS * 1e306
    _, parquet = write(tmp_path, X, w, write_statistics=False)
    assert parquet._known_range() is None
    assert parquet.value_range() == (float(np.max(np.abs(X))), float(np.max(w)))
    same(fit(parquet), in_memory(X, w))


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(8, 60),
    d=st.integers(1, 3),
    exp=st.one_of(st.integers(-1070, -430), st.integers(480, 1020)),
    weight_exp=st.sampled_from([0, 0, 1015, -1000]),
    dtype=st.sampled_from(["<f8", ">f8", "<f4"]),
    block_rows=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_property_npy_fit_equals_in_memory_at_any_scale(
    tmp_path_factory: pytest.TempPathFactory,
    n: int,
    d: int,
    exp: int,
    weight_exp: int,
    dtype: str,
    block_rows: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    if dtype == "<f4":
        exp = int(np.clip(exp, -145, 125))  # float32's own extreme range (subnormals below 2^-126)
    with np.errstate(over="ignore", under="ignore"):
        X = np.ldexp(rng.normal(size=(n, d)), exp).astype(dtype)
    w = np.ldexp(rng.uniform(0.5, 2.0, size=n), weight_exp) if weight_exp else None
    root = tmp_path_factory.mktemp("scale")
    np.save(root / "x.npy", X)
    ds = kd.npy(root / "x.npy", weights=w, block_rows=block_rows, n_threads=2)
    native = X.astype(X.dtype.newbyteorder("="))
    k = min(3, len(np.unique(native, axis=0)))
    same(
        fit(native, w, n_clusters=k, init="random", backend=NumPyBackend(block_rows=block_rows)),
        fit(ds, n_clusters=k, init="random"),
    )
