"""Saving and loading models as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kmeans.io
from kmeans import KMeans, load_model
from kmeans.errors import ModelFormatError, NotFittedError


@pytest.fixture(scope="module")
def fitted() -> KMeans:
    X = np.random.default_rng(0).normal(size=(200, 3))
    return KMeans(4, seed=1, max_iter=5, tol=0.0).fit(X)


@pytest.fixture
def saved(fitted: KMeans, tmp_path: Path) -> Path:
    path = tmp_path / "model.json"
    fitted.save(path)
    return path


def _rewrite(path: Path, **changes: Any) -> Path:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_round_trip_predicts_the_same_labels(distance: str, tmp_path: Path) -> None:
    X = np.random.default_rng(1).normal(size=(300, 2))
    model = KMeans(3, seed=2, distance=distance).fit(X)
    model.save(tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.score(X) == model.score(X)


def test_round_trip_keeps_the_fitted_attributes_exactly(fitted: KMeans, saved: Path) -> None:
    loaded = load_model(saved)
    np.testing.assert_array_equal(loaded.cluster_centers_, fitted.cluster_centers_)  # floats survive JSON exactly
    np.testing.assert_array_equal(loaded.cluster_sizes_, fitted.cluster_sizes_)
    assert (loaded.inertia_, loaded.n_iter_, loaded.seed_, loaded.converged_) == (
        fitted.inertia_,
        fitted.n_iter_,
        fitted.seed_,
        fitted.converged_,
    )
    assert loaded.history_ == fitted.history_
    assert loaded.n_features_in_ == 3 and loaded.n_clusters == 4
    assert loaded.distance_ is fitted.distance_


def test_the_file_is_plain_json_with_a_format_marker(saved: Path) -> None:
    data = json.loads(saved.read_text())
    assert data["format"] == "kmeans-model" and data["version"] == 1
    assert len(data["cluster_centers"]) == 4


def test_save_leaves_no_temporary_file(saved: Path) -> None:
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.json"]


def test_save_replaces_an_existing_file(fitted: KMeans, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("old contents")
    fitted.save(path)
    assert load_model(path).inertia_ == fitted.inertia_


def test_failed_save_keeps_the_existing_file_and_leaves_no_temporary(
    fitted: KMeans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.json"
    path.write_text("precious")

    def disk_full(fd: int) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        fitted.save(path)
    assert path.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_saving_an_unfitted_model_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("precious")
    with pytest.raises(NotFittedError):
        KMeans(2).save(path)
    assert path.read_text() == "precious"


def test_save_accepts_a_string_path_in_the_current_directory(
    fitted: KMeans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fitted.save("here.json")
    assert load_model("here.json").n_iter_ == fitted.n_iter_


def test_model_with_an_unregistered_distance_object_cannot_be_saved(tmp_path: Path) -> None:
    from kmeans.distance.base import Distance
    from kmeans.distance.l2 import SquaredEuclidean, WeightedMean

    custom = Distance(name="custom-l2", assign=SquaredEuclidean(), update=WeightedMean())
    model = KMeans(2, seed=0, distance=custom).fit(np.array([[0.0], [1.0], [5.0]]))
    with pytest.raises(ModelFormatError, match=r"distance 'custom-l2' is not registered"):
        model.save(tmp_path / "m.json")


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(ModelFormatError, match=r"not a valid kmeans model file: invalid JSON"):
        load_model(path)


def test_not_text(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ModelFormatError, match=r"not UTF-8 text"):
        load_model(path)


def test_truncated_file(saved: Path) -> None:
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    with pytest.raises(ModelFormatError, match=r"invalid JSON"):
        load_model(saved)


def test_json_that_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(ModelFormatError, match=r"missing format marker 'kmeans-model'"):
        load_model(path)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_wrong_version(saved: Path, version: Any) -> None:
    _rewrite(saved, version=version)
    with pytest.raises(ModelFormatError, match=rf"unsupported version {version!r} \(this library reads 1\)"):
        load_model(saved)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_center(saved: Path, bad: float) -> None:
    data = json.loads(saved.read_text())
    data["cluster_centers"][1][2] = bad
    saved.write_text(json.dumps(data))  # json writes NaN / Infinity literals
    with pytest.raises(ModelFormatError, match=r"cluster_centers contains NaN or infinite values"):
        load_model(saved)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"n_clusters": 5}, r"cluster_centers has shape \(4, 3\), expected \(5, 3\)"),
        ({"cluster_centers": [[0.0, 1.0]] * 4}, r"cluster_centers has shape \(4, 2\), expected \(4, 3\)"),
        ({"cluster_centers": [[0.0, "x", 1.0]] * 4}, r"could not convert string to float"),
        ({"cluster_sizes": [1.0, -1.0, 0.0, 0.0]}, r"cluster_sizes must be k non-negative numbers"),
        ({"cluster_sizes": [1.0]}, r"cluster_sizes must be k non-negative numbers"),
        ({"inertia": -1.0}, r"inertia must be a finite number >= 0"),
        ({"distance": "l7"}, r"unknown distance 'l7'"),
        ({"history": [{"iteration": 1, "bogus": 2}]}, r"not a valid kmeans model file"),
    ],
)
def test_inconsistent_fields(saved: Path, changes: dict[str, Any], match: str) -> None:
    _rewrite(saved, **changes)
    with pytest.raises(ModelFormatError, match=match):
        load_model(saved)


@pytest.mark.parametrize("field", ["cluster_centers", "n_clusters", "n_features", "inertia", "seed", "distance"])
def test_missing_field(saved: Path, field: str) -> None:
    data = json.loads(saved.read_text())
    del data[field]
    saved.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match=rf"not a valid kmeans model file: KeyError\('{field}'\)"):
        load_model(saved)


def test_write_atomic_writes_bytes(tmp_path: Path) -> None:
    kmeans.io.write_atomic(tmp_path / "f.bin", b"abc")
    assert (tmp_path / "f.bin").read_bytes() == b"abc"


def test_numpy_scalar_parameters_can_be_saved(tmp_path: Path) -> None:
    # Regression: max_iter=np.int64(...) passed validation but json.dumps refused it.
    X = np.random.default_rng(3).normal(size=(40, 2))
    model = KMeans(np.int64(2), max_iter=np.int64(10), tol=np.float32(1e-4), seed=np.int64(3)).fit(X)
    model.save(tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    assert loaded.max_iter == 10 and loaded.tol == pytest.approx(1e-4)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
