"""Bisecting k-means: scikit-learn's semantics, MLlib's minimum divisible size, the split tree."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.cluster import BisectingKMeans as SklearnBisectingKMeans
from sklearn.datasets import make_blobs

from kmeans import BisectingKMeans, ModelFormatError, ValidationError, load_model
from kmeans.backends.numpy import NumPyBackend
from kmeans.bisecting import SplitTree


def blobs(n: int = 1500, centers: int = 6, d: int = 3, seed: int = 0) -> np.ndarray:
    X, _ = make_blobs(n, centers=centers, n_features=d, random_state=seed)
    return X


def check_tree(model: BisectingKMeans, X: np.ndarray, weights: np.ndarray | None = None) -> None:
    """The tree agrees with the fitted attributes and with the rows (descent = labels)."""
    tree: SplitTree = model.tree_
    w = np.ones(X.shape[0]) if weights is None else weights
    inner = np.flatnonzero(tree.children[:, 0] >= 0)
    for node in inner.tolist():
        left, right = tree.children[node]
        assert tree.parent[left] == tree.parent[right] == node
        assert tree.weight[node] == pytest.approx(tree.weight[left] + tree.weight[right])
        assert left == 2 * np.flatnonzero(inner == node)[0] + 1 or left > node  # children after parents
    leaves = tree.leaves
    k = model.cluster_centers_.shape[0]
    assert sorted(tree.label[leaves].tolist()) == list(range(k))
    np.testing.assert_array_equal(tree.centers[leaves], model.cluster_centers_)
    np.testing.assert_allclose(np.bincount(model.labels_, weights=w, minlength=k), model.cluster_sizes_)
    np.testing.assert_allclose(tree.weight[leaves], model.cluster_sizes_)
    # each node's rows are those whose descent passes through it: check the path of every row
    for row in range(0, X.shape[0], max(1, X.shape[0] // 50)):
        node = 0
        while tree.children[node, 0] >= 0:
            kids = tree.children[node]
            dist = ((tree.centers[kids] - X[row]) ** 2).sum(axis=1)
            node = kids[int(np.argmin(dist))]
        assert tree.label[node] == model.labels_[row]
    own = ((X - model.cluster_centers_[model.labels_]) ** 2).sum(axis=1)
    assert model.inertia_ == pytest.approx(float(w @ own), rel=1e-9)
    np.testing.assert_array_equal(model.predict(X), model.labels_)


@pytest.mark.parametrize("strategy", ["biggest_inertia", "largest_cluster"])
def test_inertia_close_to_sklearn_on_blobs(strategy: str) -> None:
    X = blobs()
    # a bisection keeps its first splits, so single seeds vary: compare the medians over seeds
    fits = [BisectingKMeans(6, seed=s, bisecting_strategy=strategy).fit(X) for s in range(5)]
    theirs = [SklearnBisectingKMeans(6, random_state=s, bisecting_strategy=strategy).fit(X).inertia_ for s in range(5)]
    ours = float(np.median([m.inertia_ for m in fits]))
    assert abs(ours - float(np.median(theirs))) <= 0.03 * float(np.median(theirs))
    check_tree(fits[0], X)


def test_tree_matches_labels_with_weights() -> None:
    X = blobs(600, centers=5, d=2, seed=3)
    w = np.random.default_rng(0).uniform(0.5, 3.0, X.shape[0])
    model = BisectingKMeans(5, seed=1, bisecting_strategy="largest_cluster").fit(X, sample_weight=w)
    check_tree(model, X, w)
    assert model.n_iter_ == 4  # splits
    assert model.tree_.n_nodes == 9


def test_split_choice_follows_the_strategy() -> None:
    # a big tight cluster and a small spread-out one: inertia splits the spread one, size the big one
    rng = np.random.default_rng(0)
    big = rng.normal(0.0, 0.1, (400, 2))
    spread = rng.normal(0.0, 3.0, (60, 2)) + np.array([50.0, 0.0])
    X = np.vstack([big, spread])
    by_inertia = BisectingKMeans(3, seed=0).fit(X)
    by_size = BisectingKMeans(3, seed=0, bisecting_strategy="largest_cluster").fit(X)
    sizes_inertia = sorted(by_inertia.cluster_sizes_.tolist())
    sizes_size = sorted(by_size.cluster_sizes_.tolist())
    assert sizes_inertia[-1] == 400  # the big cluster stayed whole
    assert 60 in sizes_size and sizes_size[-1] < 400  # the big cluster was split, the spread one kept


def test_predict_descends_the_tree_not_the_nearest_leaf() -> None:
    X = blobs(800, centers=4, d=2, seed=5)
    model = BisectingKMeans(4, seed=0).fit(X)
    rng = np.random.default_rng(1)
    Y = rng.uniform(X.min(axis=0) - 5, X.max(axis=0) + 5, (2000, 2))
    labels = model.predict(Y)
    nearest = ((Y[:, None, :] - model.cluster_centers_[None]) ** 2).sum(axis=2).argmin(axis=1)
    tree = model.tree_
    expected = np.empty(Y.shape[0], dtype=int)
    for i, y in enumerate(Y):
        node = 0
        while tree.children[node, 0] >= 0:
            kids = tree.children[node]
            node = kids[int(np.argmin(((tree.centers[kids] - y) ** 2).sum(axis=1)))]
        expected[i] = tree.label[node]
    np.testing.assert_array_equal(labels, expected)
    assert model.score(Y) == pytest.approx(-float(((Y - model.cluster_centers_[labels]) ** 2).sum()))
    assert (labels != nearest).any()  # the two rules differ somewhere on this grid


def test_min_divisible_cluster_size_stops_early() -> None:
    X = blobs(400, centers=4, d=2, seed=2)
    with pytest.warns(RuntimeWarning, match="stopped at 2 clusters"):
        model = BisectingKMeans(8, seed=0, min_divisible_cluster_size=0.8).fit(X)  # only the root is divisible
    assert model.cluster_centers_.shape[0] == 2
    check_tree(model, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BisectingKMeans(4, seed=0, min_divisible_cluster_size=10).fit(X)


def test_duplicates_stop_at_the_distinct_rows() -> None:
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]]), 10, axis=0)
    with pytest.warns(RuntimeWarning, match="stopped at 3 clusters"):
        model = BisectingKMeans(5, seed=0).fit(X)
    assert model.inertia_ == 0.0
    check_tree(model, X)


def test_l1_distance_and_integer_data() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.integers(0, 20, (200, 3)), rng.integers(100, 120, (200, 3))]).astype(np.uint8)
    model = BisectingKMeans(4, seed=0, distance="l1").fit(X)  # compress="auto" folds the uint8 rows
    own = np.abs(X - model.cluster_centers_[model.labels_]).sum(axis=1)
    assert model.inertia_ == pytest.approx(float(own.sum()))
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert np.bincount(model.labels_).sum() == 400


@settings(max_examples=8, deadline=None)
@given(block_rows=st.integers(7, 300), seed=st.integers(0, 2**31))
def test_same_seed_same_tree_whatever_the_blocks(block_rows: int, seed: int) -> None:
    X = blobs(500, centers=5, d=2, seed=7)
    a = BisectingKMeans(5, seed=seed, backend=NumPyBackend(n_threads=1)).fit(X)
    b = BisectingKMeans(5, seed=seed, backend=NumPyBackend(n_threads=2, block_rows=block_rows)).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.tree_.centers, b.tree_.centers, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a.tree_.children, b.tree_.children)


def test_validation() -> None:
    X = blobs(50)
    with pytest.raises(ValidationError, match="bisecting_strategy"):
        BisectingKMeans(3, bisecting_strategy="biggest_sse").fit(X)
    with pytest.raises(ValidationError, match="min_divisible_cluster_size"):
        BisectingKMeans(3, min_divisible_cluster_size=0).fit(X)
    with pytest.raises(ValidationError, match="larger than the number of rows"):
        BisectingKMeans(51).fit(X)
    with pytest.raises(ValidationError, match="algorithm='lloyd'"):
        BisectingKMeans(3, algorithm="minibatch").fit(X)


def test_sklearn_params_and_single_cluster() -> None:
    model = BisectingKMeans(3, seed=0, bisecting_strategy="largest_cluster")
    copy = clone(model)
    assert copy.get_params()["bisecting_strategy"] == "largest_cluster"
    assert repr(copy) == "BisectingKMeans(n_clusters=3, seed=0, bisecting_strategy='largest_cluster')"
    X = blobs(100)
    one = BisectingKMeans(1, seed=0).fit(X)
    np.testing.assert_allclose(one.cluster_centers_[0], X.mean(axis=0))
    assert (one.labels_ == 0).all()
    assert one.inertia_ == pytest.approx(float(((X - X.mean(axis=0)) ** 2).sum()))


def test_cosine_bisecting() -> None:
    rng = np.random.default_rng(0)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    X = np.concatenate([d + rng.normal(0, 0.08, (150, 3)) for d in directions]) * rng.uniform(0.5, 4, (600, 1))
    model = BisectingKMeans(4, distance="cosine", seed=0).fit(X)
    np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0)  # spherical: unit centers
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    own = 1.0 - np.einsum("ij,ij->i", unit, model.cluster_centers_[model.labels_])
    assert model.inertia_ == pytest.approx(float(own.sum()), rel=1e-9)
    assert sorted(model.cluster_sizes_.tolist()) == [150.0] * 4
    np.testing.assert_array_equal(model.predict(X * 7.0), model.labels_)  # scale of rows is irrelevant
    with pytest.raises(ValidationError, match="all-zero rows"):
        BisectingKMeans(2, distance="cosine").fit(np.vstack([X, np.zeros((1, 3))]))


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_save_and_load_keep_the_tree(tmp_path: Path, distance: str) -> None:
    X = blobs(600, centers=5, d=3, seed=2) + (10.0 if distance == "cosine" else 0.0)
    model = BisectingKMeans(5, seed=0, distance=distance, bisecting_strategy="largest_cluster").fit(X)
    model.save(tmp_path / "b.json")
    loaded = load_model(tmp_path / "b.json")
    assert type(loaded) is BisectingKMeans and json.loads((tmp_path / "b.json").read_text())["version"] == 2
    assert loaded.get_params()["bisecting_strategy"] == "largest_cluster"
    for name in ("centers", "children", "parent", "weight", "cost", "label"):
        np.testing.assert_array_equal(getattr(loaded.tree_, name), getattr(model.tree_, name))
    Y = np.random.default_rng(3).uniform(X.min() - 5, X.max() + 5, (3000, 3))
    np.testing.assert_array_equal(loaded.predict(Y), model.predict(Y))  # the descent, not the nearest leaf
    np.testing.assert_array_equal(loaded.predict(X), model.labels_)


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _tree(data: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = data["bisecting"]["tree"]
    return tree


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("bisecting"), "version 2 .* has the field 'bisecting'"),
        (lambda d: d.update(version=1), "version 2 .* has the field 'bisecting'"),
        (lambda d: d["bisecting"].update(bisecting_strategy="biggest_sse"), "bisecting_strategy must be one of"),
        (lambda d: d["bisecting"].update(min_divisible_cluster_size=-1), "min_divisible_cluster_size"),
        (lambda d: d["bisecting"].pop("tree"), "an object with bisecting_strategy"),
        (lambda d: _tree(d)["centers"].pop(), r"centers has shape \(6, 2\), expected \(7, 2\)"),
        (
            lambda d: _tree(d).update(children=[[1, 2], [3, 4], [5, 6], [-1, -1], [-1, -1], [-1, -1], [0, 1]]),
            "not a split tree",
        ),
        (
            lambda d: _tree(d).update(children=[[3, 4], [-1, -1], [-1, -1], [1, 2], [5, 6], [-1, -1], [-1, -1]]),
            "not a split tree",
        ),
        (
            lambda d: _tree(d).update(children=[[1, 2], [5, 6], [3, 4], [-1, -1], [-1, -1], [-1, -1], [-1.5, -1]]),
            "node ids or -1",
        ),
        (lambda d: _tree(d)["weight"].__setitem__(0, -1.0), "weights and costs >= 0"),
        (lambda d: _tree(d)["centers"].__setitem__(6, [1e3, 1e3]), "leaf centers differ"),
    ],
)
def test_malformed_trees_are_refused(tmp_path: Path, change: Any, message: str) -> None:
    path = tmp_path / "b.json"
    BisectingKMeans(4, seed=0).fit(blobs(400, centers=4, d=2, seed=1)).save(path)
    load_model(path)
    _edit(path, change)
    with pytest.raises(ModelFormatError, match=message):
        load_model(path)
