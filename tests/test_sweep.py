"""kmeans.sweep: fits equal to KMeans, scikit-learn's silhouette and Calinski-Harabasz, suggestion rules, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, silhouette_score

from kmeans import KMeans, ValidationError
from kmeans.cli import main
from kmeans.sweep import parse_ks, silhouette, sweep


@pytest.fixture(scope="module")
def blobs5() -> np.ndarray:
    X, _ = make_blobs(1500, centers=5, n_features=4, random_state=0)
    return X


@pytest.fixture(scope="module")
def result5(blobs5: np.ndarray):  # type: ignore[no-untyped-def]
    return sweep(blobs5, range(2, 9), seed=0, silhouette_size=600)


@pytest.mark.parametrize("rule", ["silhouette", "calinski-harabasz", "elbow"])
def test_suggestion_finds_the_known_k(result5, rule: str) -> None:  # type: ignore[no-untyped-def]
    assert result5.suggest(rule) == 5


def test_other_known_k() -> None:
    X, _ = make_blobs(900, centers=[[0, 0], [10, 0], [0, 10]], n_features=2, random_state=4)
    result = sweep(X, range(2, 7), seed=1, silhouette_size=400)
    assert result.suggest() == 3 and result.suggest("calinski-harabasz") == 3


def test_scores_equal_sklearn_and_fits_equal_kmeans(blobs5: np.ndarray, result5) -> None:  # type: ignore[no-untyped-def]
    assert result5.sample.shape == (600, 4)
    np.testing.assert_array_equal(result5.sample, blobs5[result5.sample_rows])
    for i, k in enumerate(result5.ks.tolist()):
        model = KMeans(k, seed=0).fit(blobs5)
        np.testing.assert_array_equal(result5.centers[i], model.cluster_centers_)
        assert result5.inertia[i] == pytest.approx(model.inertia_, rel=1e-12)
        assert result5.silhouette[i] == pytest.approx(
            silhouette_score(result5.sample, result5.sample_labels[i]), rel=1e-9, abs=1e-12
        )
        np.testing.assert_array_equal(result5.sample_labels[i], model.predict(result5.sample))
        assert result5.calinski_harabasz[i] == pytest.approx(calinski_harabasz_score(blobs5, model.labels_), rel=1e-9)


def test_silhouette_l1_matches_sklearn_manhattan_and_singletons() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    labels = rng.integers(0, 4, 80)
    labels[0] = 9  # a singleton cluster scores 0
    manhattan = lambda a, b: np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2)  # noqa: E731
    assert silhouette(X, labels, manhattan) == pytest.approx(silhouette_score(X, labels, metric="manhattan"))
    assert np.isnan(silhouette(X, np.zeros(80, dtype=int), manhattan))
    result = sweep(X, [2, 3], distance="l1", seed=0, silhouette_size=50)
    for i in range(2):
        expected = silhouette_score(result.sample, result.sample_labels[i], metric="manhattan")
        assert result.silhouette[i] == pytest.approx(expected)


def test_same_sample_whatever_the_blocks(blobs5: np.ndarray, result5) -> None:  # type: ignore[no-untyped-def]
    from kmeans.backends.numpy import NumPyBackend

    other = sweep(blobs5, range(2, 9), seed=0, silhouette_size=600, backend=NumPyBackend(block_rows=97))
    np.testing.assert_array_equal(other.sample_rows, result5.sample_rows)
    np.testing.assert_allclose(other.silhouette, result5.silhouette, rtol=1e-12)


def test_weights_count_in_calinski_harabasz() -> None:
    X, _ = make_blobs(300, centers=3, n_features=2, random_state=2)
    doubled = sweep(np.vstack([X, X[:50]]), [3], seed=0, init="random", n_init=1)
    weighted = sweep(X, [3], seed=0, init="random", n_init=1, sample_weight=np.r_[np.full(50, 2.0), np.ones(250)])
    # the same points with the same centers: the index depends on the weights only through the totals
    labels = KMeans(3, init=weighted.centers[0], n_init=1, max_iter=0).fit(np.vstack([X, X[:50]])).labels_
    assert weighted.calinski_harabasz[0] == pytest.approx(calinski_harabasz_score(np.vstack([X, X[:50]]), labels))
    assert doubled.calinski_harabasz[0] > 0


def test_warm_start_is_deterministic_and_finds_k(blobs5: np.ndarray) -> None:
    a = sweep(blobs5, range(2, 9), seed=0, silhouette_size=600, warm_start=True)
    b = sweep(blobs5, range(2, 9), seed=0, silhouette_size=600, warm_start=True)
    np.testing.assert_array_equal(a.inertia, b.inertia)
    assert a.suggest() == 5 and a.warm_start


def test_plot_and_validation(result5, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fig = result5.plot(tmp_path / "elbow.png")
    assert len(fig.axes) == 2
    assert (tmp_path / "elbow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValidationError, match="rule"):
        result5.suggest("gap")
    with pytest.raises(ValidationError, match=">= 2"):
        sweep(np.zeros((10, 2)), [1, 2])
    with pytest.raises(ValidationError, match="larger than the number of rows"):
        sweep(np.arange(10.0).reshape(5, 2), range(2, 7))
    assert parse_ks("2..5,8") == [2, 3, 4, 5, 8]
    with pytest.raises(ValidationError, match=r"2\.\.20"):
        parse_ks("two")


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_cli(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    X, _ = make_blobs(400, centers=4, n_features=3, random_state=3, cluster_std=0.5)
    path = tmp_path / f"data{suffix}"
    if suffix == ".npy":
        np.save(path, X)
    elif suffix == ".csv":
        np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "name": ["x"] * 400}), path)
    code = main(
        ["sweep", str(path), "-k", "2..7", "--plot", str(tmp_path / "e.png"), "--json", str(tmp_path / "s.json")]
    )
    out = capsys.readouterr().out
    assert code == 0 and "suggested k: 4 (silhouette)" in out
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["k"] == [2, 3, 4, 5, 6, 7] and doc["suggested_k"] == 4
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("1,2\n")
    assert main(["sweep", str(tmp_path / "x.txt")]) == 2
    assert "unknown format .txt" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    assert main(["sweep", str(tmp_path / "x.npy"), "--plot", str(tmp_path / "e.gif")]) == 2
    assert "--plot" in capsys.readouterr().err
    assert not (tmp_path / "e.gif").exists()


def test_cosine_sweep_silhouette_is_sklearns_cosine() -> None:
    rng = np.random.default_rng(1)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    X = np.concatenate([d + rng.normal(0, 0.1, (100, 3)) for d in directions]) * rng.uniform(1, 3, (300, 1))
    result = sweep(X, range(2, 6), distance="cosine", seed=0, silhouette_size=200)
    for i in range(4):
        expected = silhouette_score(result.sample, result.sample_labels[i], metric="cosine")
        assert result.silhouette[i] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.suggest() == 3
    from scipy.sparse import csr_matrix

    with pytest.raises(ValidationError, match="sparse"):
        sweep(csr_matrix(X), [2, 3], distance="cosine")
