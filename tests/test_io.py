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


@pytest.mark.parametrize("version", [3, 0, "1", None])
def test_wrong_version(saved: Path, version: Any) -> None:
    _rewrite(saved, version=version)
    with pytest.raises(ModelFormatError, match=rf"unsupported version {version!r} \(this library reads 1 and 2\)"):
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
        ({"cluster_centers": [[0.0, "x", 1.0]] * 4}, r"cluster_centers is not a list of numbers of that shape"),
        ({"cluster_sizes": [1.0, -1.0, 0.0, 0.0]}, r"cluster_sizes must be k non-negative numbers"),
        ({"cluster_sizes": [1.0]}, r"cluster_sizes has shape \(1,\), expected \(4,\)"),
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
    with pytest.raises(ModelFormatError, match=rf"not a valid kmeans model file: missing field '{field}'"):
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


# -- issue 14: every malformed file raises ModelFormatError ---------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 200_000, r"invalid JSON \(nested too deeply\)"),
        ('{"format": "kmeans-model", "version": 1, "seed": ' + "9" * 5000 + "}", r"invalid JSON \(.*digits"),
    ],
    ids=["deep-nesting", "5000-digit-int"],
)
def test_malformed_json_text(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ModelFormatError, match=match):
        load_model(path)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"params": None}, r"params must be an object, got None"),
        ({"params": {"max_iter": "abc"}}, r"params.max_iter must be an integer >= 0, got 'abc'"),
        ({"params": {"max_iter": True}}, r"params.max_iter must be an integer"),
        ({"params": {"tol": -1}}, r"params.tol must be a finite number >= 0"),
        ({"params": {"init": 3}}, r"params.init must be a string"),
        ({"converged": "no"}, r"converged must be true or false, got 'no'"),
        ({"seed": 1.5}, r"seed must be an integer in"),
        ({"seed": 10**30}, r"seed must be an integer in"),
        ({"seed": 10**4000}, r"seed must be an integer in .*\(4001 characters\)"),
        ({"n_clusters": "4"}, r"n_clusters must be an integer >= 1, got '4'"),
        ({"n_features": 0}, r"n_features must be an integer >= 1, got 0"),
        ({"n_iter": -1}, r"n_iter must be an integer >= 0"),
        ({"inertia": "1"}, r"inertia must be a number, got '1'"),
        ({"inertia": 10**400}, r"inertia is too large for float64"),
        ({"inertia": True}, r"inertia must be a number"),
        ({"distance": 2}, r"distance must be a string"),
        ({"backend": None}, r"backend must be a string"),
        ({"history": {}}, r"history must be a list"),
        ({"history": [None]}, r"history\[0\] must be an object"),
        ({"cluster_centers": [[0.0, 1.0, 10**400]] * 4}, r"cluster_centers holds a number too large"),
        ({"cluster_centers": [[0.0, 1.0, [2.0]]] * 4}, r"cluster_centers is not a list of numbers"),
        ({"cluster_centers": [[0.0, 1.0, True]] * 4}, r"cluster_centers is not a list of numbers"),
        ({"cluster_centers": None}, r"cluster_centers is not a list of numbers"),
        ({"cluster_centers": [[0.0, 1.0], [0.0, 1.0, 2.0]] * 2}, r"cluster_centers is not a list of numbers"),
        ({"cluster_sizes": ["1", 1, 1, 1]}, r"cluster_sizes is not a list of numbers"),
        ({"version": 1.0}, r"unsupported version 1.0"),
        ({"version": True}, r"unsupported version True"),
    ],
)
def test_every_field_is_checked_for_type_and_range(saved: Path, changes: dict[str, Any], match: str) -> None:
    _rewrite(saved, **changes)
    with pytest.raises(ModelFormatError, match=match):
        load_model(saved)


@pytest.mark.parametrize("field", ["inertia", "seed", "n_iter"])
def test_1e400_is_refused(saved: Path, field: str) -> None:
    text = saved.read_text()
    data = json.loads(text)
    saved.write_text(text.replace(f'"{field}": {json.dumps(data[field])}', f'"{field}": 1e400'))
    with pytest.raises(ModelFormatError, match=rf"{field} must be"):
        load_model(saved)


def test_history_records_are_checked(saved: Path) -> None:
    data = json.loads(saved.read_text())
    data["history"][0]["iteration"] = "first"
    saved.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match=r"history\[0\].iteration must be an integer >= 1"):
        load_model(saved)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_not_read_to_the_end() -> None:
    with pytest.raises(ModelFormatError, match=r"longer than 1024 bytes"):
        load_model("/dev/zero", max_bytes=1024)


def test_a_file_over_the_cap_is_refused(saved: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"longer than 100 bytes"):
        load_model(saved, max_bytes=100)
    assert load_model(saved, max_bytes=saved.stat().st_size).n_clusters == 4


def test_an_infinite_inertia_round_trips(tmp_path: Path) -> None:
    X = np.array([[0.0], [1e300], [-1e300]])
    model = KMeans(1, init=[[0.0]], max_iter=1).fit(X)
    assert model.inertia_ == np.inf  # honestly: 2e600 exceeds float64
    model.save(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["inertia"] == "inf"
    assert load_model(tmp_path / "m.json").inertia_ == np.inf


def test_a_converted_model_without_inertia_round_trips(tmp_path: Path) -> None:
    from kmeans.interop import from_centers

    model = from_centers([[0.0, 0.0], [5.0, 5.0]], n_iter=3)
    assert np.isnan(model.inertia_)  # the source recorded none: unknown, not invented
    model.save(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["inertia"] is None  # JSON null
    loaded = load_model(tmp_path / "m.json")
    assert np.isnan(loaded.inertia_) and loaded.n_iter_ == 3
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    points = np.array([[1.0, 1.0], [4.0, 6.0]])
    np.testing.assert_array_equal(loaded.predict(points), model.predict(points))
    assert loaded.score(points) == model.score(points)


_SAVE_UNDER_SIGTERM = """
import sys
from tests.hardening_helpers import save_under_sigterm
save_under_sigterm(sys.argv[1])
print("not reached")
"""


def test_sigterm_during_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", _SAVE_UNDER_SIGTERM, str(tmp_path / "m.json")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr  # still ends as SIGTERM asked
    assert "not reached" not in proc.stdout
    assert list(tmp_path.iterdir()) == []
