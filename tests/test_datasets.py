"""kmeans.datasets: .npy and Parquet fits equal the in-memory fit bit for bit; streamed validation."""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmeans.datasets as kd
from kmeans import KMeans, ValidationError
from kmeans.backends.numpy import NumPyBackend

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pafs = pytest.importorskip("pyarrow.fs")

INITS = ["random", "k-means++", "k-means||", "per-partition"]


def blobs(n: int = 6000, d: int = 4, seed: int = 0, dtype: Any = np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) + rng.integers(0, 5, size=(n, 1)) * 4).astype(dtype)


def write_parquet(X: np.ndarray, root: Path, splits: list[int], row_group: int, **extra: np.ndarray) -> list[Path]:
    """``X`` in files cut at ``splits`` (named so that sorting keeps row order), ``row_group`` rows per group."""
    cols = {f"c{j}": X[:, j] for j in range(X.shape[1])} | extra
    table = pa.table(cols)
    paths, edges = [], [0, *splits, X.shape[0]]
    for i, (s, e) in enumerate(itertools.pairwise(edges)):
        path = root / f"part-{i:03d}.parquet"
        pq.write_table(table.slice(s, e - s), path, row_group_size=row_group)
        paths.append(path)
    return paths


def same(a: KMeans, b: KMeans) -> None:
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_
    assert a.n_iter_ == b.n_iter_
    assert np.array_equal(a.cluster_sizes_, b.cluster_sizes_)
    assert np.array_equal(a.labels_, b.labels_)


def fit(X: Any, **kw: Any) -> KMeans:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means++ on a streamed dataset warns about its passes
        return KMeans(**({"n_clusters": 5, "seed": 3, "n_init": 1} | kw)).fit(X)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("files")
    X = blobs()
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=X.shape[0])
    np.save(root / "x.npy", X)
    np.save(root / "w.npy", w)
    write_parquet(X, root, [2500, 2600], 700, w=w)
    return {"root": root, "X": X, "w": w}


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("block_rows", [None, 999])
def test_npy_and_parquet_fits_equal_the_in_memory_fit(files: dict[str, Any], init: str, block_rows: int | None) -> None:
    root, X = files["root"], files["X"]
    ref = fit(X, init=init, backend=NumPyBackend(block_rows=block_rows))
    same(ref, fit(kd.npy(root / "x.npy", block_rows=block_rows), init=init))
    cols = [f"c{j}" for j in range(X.shape[1])]
    same(ref, fit(kd.parquet(str(root / "*.parquet"), columns=cols, block_rows=block_rows), init=init))


def test_weights_explicit_centers_and_l1(files: dict[str, Any]) -> None:
    root, X, w = files["root"], files["X"], files["w"]
    ref = KMeans(n_clusters=5, seed=3, init="k-means||").fit(X, sample_weight=w)
    same(ref, fit(kd.npy(root / "x.npy", weights=root / "w.npy"), init="k-means||"))
    same(ref, fit(kd.npy(root / "x.npy", weights=w), init="k-means||"))
    same(ref, fit(kd.parquet(root, columns=["c0", "c1", "c2", "c3"], weights="w"), init="k-means||"))
    centers = X[:5].astype(np.float64)
    same(fit(X, init=centers, distance="l1"), fit(kd.npy(root / "x.npy"), init=centers, distance="l1"))


def test_predict_on_a_dataset_and_deferred_labels(files: dict[str, Any]) -> None:
    root, X = files["root"], files["X"]
    model = fit(kd.npy(root / "x.npy"), init="random")
    labels = model.predict(kd.parquet(root, columns=["c0", "c1", "c2", "c3"]))
    assert labels.dtype == np.int32
    assert np.array_equal(labels, model.predict(X))
    assert np.array_equal(labels, model.labels_)


def test_integer_files_are_compressed_as_in_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    X = rng.integers(0, 6, size=(5000, 3)).astype(np.int16)
    np.save(tmp_path / "px.npy", X)
    write_parquet(X.astype(np.int32), tmp_path, [1234], 500)
    ref = fit(X, init="random")
    assert ref.inertia_ >= 0
    same(ref, fit(kd.npy(tmp_path / "px.npy"), init="random"))
    same(ref, fit(kd.parquet(sorted(tmp_path.glob("*.parquet"))), init="random"))
    # weighted rows: each distinct row's weight summed in row order, as in memory
    w = rng.uniform(0.1, 2.0, size=X.shape[0])
    np.save(tmp_path / "w.npy", w)
    same(
        KMeans(n_clusters=5, seed=3, n_init=1, init="random").fit(X, sample_weight=w),
        fit(kd.npy(tmp_path / "px.npy", weights=tmp_path / "w.npy"), init="random"),
    )


def test_compress_refuses_beyond_its_memory(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(40000, dtype=np.int64).reshape(-1, 2))
    ds = kd.npy(tmp_path / "x.npy", block_rows=1000, compress_memory=1 << 16)
    with pytest.raises(ValidationError, match="compress=False"):
        fit(ds, init="random")
    assert fit(ds, init="random", compress=False).n_iter_ >= 1


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(20, 300),
    d=st.integers(1, 5),
    block_rows=st.integers(1, 150),
    fortran=st.booleans(),
    dtype=st.sampled_from(["<f4", ">f8", "<f2", "<u1"]),
    seed=st.integers(0, 2**16),
)
def test_property_npy_fit_equals_in_memory(
    tmp_path_factory: pytest.TempPathFactory, n: int, d: int, block_rows: int, fortran: bool, dtype: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * 20).astype(dtype)
    path = tmp_path_factory.mktemp("prop") / "x.npy"
    np.save(path, np.asfortranarray(X) if fortran else X)
    ds = kd.npy(path, block_rows=block_rows, n_threads=2)
    native = X.astype(X.dtype.newbyteorder("="))
    k = min(3, len(np.unique(native, axis=0)))
    same(
        fit(native, n_clusters=k, init="random", backend=NumPyBackend(block_rows=block_rows)),
        fit(ds, n_clusters=k, init="random"),
    )


def test_row_order_and_sources(files: dict[str, Any]) -> None:
    root, X = files["root"], files["X"]
    parts = sorted(root.glob("part-*.parquet"))
    cols = ["c0", "c1", "c2", "c3"]
    by_list = kd.parquet([str(p) for p in parts], columns=cols)
    by_dir = kd.parquet(root, columns=cols)
    by_uri = kd.parquet(f"file://{root}/part-*.parquet", columns=cols)
    by_fs = kd.parquet(
        "part-*.parquet", columns=cols, filesystem=pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
    )
    for ds in (by_list, by_dir, by_uri, by_fs):
        assert ds.n_rows == X.shape[0] and ds.dtype == np.float32
        got = np.concatenate([b.points.copy() for b in ds.blocks()])
        assert np.array_equal(got, X)
    assert kd.parquet(root).n_features == 5  # every column, the weights one included when not named
    assert kd.parquet(root, weights="w").n_features == 4


def test_streamed_validation_names_file_row_and_column(tmp_path: Path) -> None:
    X = blobs(3000)
    X[2222, 2] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ValidationError, match=r"nan\.npy: row 2222, column 2 is NaN"):
        fit(kd.npy(tmp_path / "nan.npy", block_rows=500), init="random")
    X[2222, 2] = np.inf
    (tmp_path / "p").mkdir()
    write_parquet(X, tmp_path / "p", [2000], 300)
    with pytest.raises(ValidationError, match=r"part-001\.parquet: row 222, column 'c2' is infinite"):
        fit(kd.parquet(tmp_path / "p"), init="random")


def test_parquet_schema_and_null_errors(tmp_path: Path) -> None:
    n = 100
    good = np.arange(n, dtype=np.float64)
    pq.write_table(pa.table({"a": good, "s": [str(i) for i in range(n)]}), tmp_path / "str.parquet")
    with pytest.raises(ValidationError, match=r"str\.parquet: column 's' has type string"):
        kd.parquet(tmp_path / "str.parquet")
    assert kd.parquet(tmp_path / "str.parquet", columns=["a"]).n_features == 1
    with pytest.raises(ValidationError, match=r"no column 'b'"):
        kd.parquet(tmp_path / "str.parquet", columns=["a", "b"])
    nulls = pa.array([1.0, None] * (n // 2))
    pq.write_table(pa.table({"a": good, "x": nulls}), tmp_path / "stats.parquet")
    with pytest.raises(ValidationError, match=r"stats\.parquet: column 'x' has 50 missing"):
        kd.parquet(tmp_path / "stats.parquet")
    pq.write_table(pa.table({"a": good, "x": nulls}), tmp_path / "nostats.parquet", write_statistics=False)
    with pytest.raises(ValidationError, match=r"nostats\.parquet: row 1, column 'x' is missing"):
        fit(kd.parquet(tmp_path / "nostats.parquet"), n_clusters=2, init="random")
    pq.write_table(pa.table({"a": good, "w": -good}), tmp_path / "negw.parquet")
    with pytest.raises(ValidationError, match="weights must be finite and >= 0"):
        kd.parquet(tmp_path / "negw.parquet", weights="w")
    with pytest.raises(ValidationError, match="no file matches"):
        kd.parquet(str(tmp_path / "nothing-*.parquet"))
    with pytest.raises(ValidationError, match="does not exist"):
        kd.parquet(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValidationError, match=r"junk\.parquet: cannot be read as Parquet"):
        kd.parquet(tmp_path / "junk.parquet")


def test_npy_header_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.arange(5.0))
    with pytest.raises(ValidationError, match="2-D"):
        kd.npy(tmp_path / "one.npy")
    np.save(tmp_path / "rec.npy", np.zeros(4, dtype=[("a", "f8"), ("b", "f8")]))
    with pytest.raises(ValidationError, match="structured"):
        kd.npy(tmp_path / "rec.npy")
    np.save(tmp_path / "c.npy", np.zeros((4, 2), dtype=np.complex128))
    with pytest.raises(ValidationError, match="not a real number"):
        kd.npy(tmp_path / "c.npy")
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    np.save(tmp_path / "w.npy", np.ones(3))
    with pytest.raises(ValidationError, match=r"expected \(4,\)"):
        kd.npy(tmp_path / "x.npy", weights=tmp_path / "w.npy")
    with pytest.raises(ValidationError, match="does not exist"):
        kd.npy(tmp_path / "none.npy")


def test_changed_file_and_misuse_are_refused(tmp_path: Path) -> None:
    X = blobs(500)
    np.save(tmp_path / "x.npy", X)
    ds = kd.npy(tmp_path / "x.npy")
    with pytest.raises(ValidationError, match="backend='numpy'"):
        KMeans(n_clusters=2, backend="spark-rdd").fit(ds)
    with pytest.raises(ValidationError, match="chosen when it is opened"):
        KMeans(n_clusters=2).fit(ds, sample_weight=np.ones(500))
    np.save(tmp_path / "x.npy", X[:400])
    os.utime(tmp_path / "x.npy", ns=(1, 1))
    with pytest.raises(ValidationError, match="changed since the dataset was opened"):
        fit(ds, n_clusters=2)


def test_a_failing_block_stops_the_pass_cleanly(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", blobs(5000))
    ds = kd.npy(tmp_path / "x.npy", block_rows=100, n_threads=2)

    def fn(block: Any) -> int:
        if block.start == 1200:
            raise RuntimeError("boom")
        return block.n_rows

    with pytest.raises(RuntimeError, match="boom"):
        ds.map_reduce(fn, lambda a, b: a + b)
    assert ds.map_reduce(lambda b: b.n_rows, lambda a, b: a + b) == 5000


def test_an_fsspec_filesystem(files: dict[str, Any]) -> None:
    fsspec = pytest.importorskip("fsspec")
    X = files["X"]
    mem = fsspec.filesystem("memory")
    for i, (s, e) in enumerate([(0, 3000), (3000, X.shape[0])]):
        with mem.open(f"/kd/part-{i}.parquet", "wb") as f:
            pq.write_table(pa.table({f"c{j}": X[s:e, j] for j in range(X.shape[1])}), f, row_group_size=800)
    ds = kd.parquet("/kd/*.parquet", filesystem=mem)
    assert [p for _, p in ds.files] == ["/kd/part-0.parquet", "/kd/part-1.parquet"]
    same(fit(X, init="k-means||"), fit(ds, init="k-means||"))
