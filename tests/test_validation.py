"""Every bad input named in issue 2 part 7 is rejected before any expensive work, with a clear message."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans
from kmeans.errors import NotFittedError, UnknownStrategyError, ValidationError

X = np.arange(20.0).reshape(10, 2)


def _fit(data: Any = X, **params: Any) -> KMeans:
    sample_weight = params.pop("sample_weight", None)
    params.setdefault("seed", 0)
    return KMeans(**params).fit(data, sample_weight=sample_weight)


# -- the data ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [np.zeros((0, 2)), [], [[]], np.zeros((0, 0, 3))], ids=["0x2", "list", "1x0", "image"])
def test_empty_input(data: Any) -> None:
    with pytest.raises(ValidationError, match=r"X is empty|X has 0 features"):
        _fit(data, n_clusters=1)


def test_empty_list_is_reported_as_empty_not_as_1d() -> None:
    with pytest.raises(ValidationError, match=r"X is empty"):
        _fit([], n_clusters=1)


def test_image_with_zero_channels_is_rejected_clearly() -> None:
    with pytest.raises(ValidationError, match=r"X has 0 features"):
        _fit(np.zeros((2, 2, 0)), n_clusters=1)


def test_one_dimensional_input_suggests_reshape() -> None:
    with pytest.raises(ValidationError, match=r"X is 1-D with shape \(5,\).*reshape\(-1, 1\)"):
        _fit(np.arange(5.0), n_clusters=2)


@pytest.mark.parametrize("shape", [(2, 2, 2, 2), (1, 2, 3, 4, 5)])
def test_four_or_more_dimensions(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValidationError, match=rf"X has {len(shape)} dimensions"):
        _fit(np.zeros(shape), n_clusters=1)


def test_an_image_array_is_flattened_to_pixels() -> None:
    img = np.zeros((4, 5, 3), dtype=np.uint8)
    img[:2] = 200
    model = _fit(img, n_clusters=2)
    assert model.n_features_in_ == 3
    assert model.labels_.shape == (20,)
    assert sorted(model.cluster_centers_.tolist()) == [[0.0, 0.0, 0.0], [200.0, 200.0, 200.0]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.array([["a", "b"], ["c", "d"]]), r"X has non-numeric dtype <U1"),
        (np.array([[1 + 2j, 0j]]), r"Complex data not supported: X has dtype complex128"),
        (
            np.array([[None, 1]], dtype=object),
            r"X contains NaN values in 1 of 1 rows",
        ),  # None is missing, as in sklearn
    ],
)
def test_non_numeric_dtype(data: np.ndarray, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _fit(data, n_clusters=1)


def test_complex_data_is_refused_without_advice_that_drops_the_imaginary_part() -> None:
    with pytest.raises(ValidationError, match=r"X holds complex numbers \(dtype complex128\)") as info:
        _fit([[1 + 2j, 0j]], n_clusters=1)  # a list reaches check_points itself
    assert "dtype=float" not in str(info.value)


def test_ragged_rows() -> None:
    with pytest.raises(ValidationError, match=r"rows must all have the same length"):
        _fit([[1.0, 2.0], [3.0]], n_clusters=1)


def test_nan_rows_are_counted() -> None:
    data = X.copy()
    data[3, 0] = data[3, 1] = data[7, 1] = np.nan
    with pytest.raises(ValidationError, match=r"X contains NaN values in 2 of 10 rows \(first at row 3\)"):
        _fit(data, n_clusters=2)


def test_inf_rows_are_counted() -> None:
    data = X.astype(np.float32)
    data[5, 0] = -np.inf
    with pytest.raises(ValidationError, match=r"X contains infinite values in 1 of 10 rows \(first at row 5\)"):
        _fit(data, n_clusters=2)


def test_nan_and_inf_are_both_named() -> None:
    data = X.copy()
    data[0, 0], data[1, 1] = np.nan, np.inf
    with pytest.raises(ValidationError, match=r"NaN and infinite values in 2 of 10 rows"):
        _fit(data, n_clusters=2)


# -- n_clusters and other parameters -----------------------------------------------------------


@pytest.mark.parametrize("k", [0, -3])
def test_n_clusters_below_one(k: int) -> None:
    with pytest.raises(ValidationError, match=rf"n_clusters must be >= 1, got {k}"):
        _fit(n_clusters=k)


@pytest.mark.parametrize("k", [2.0, "3", True, None])
def test_n_clusters_must_be_an_integer(k: Any) -> None:
    with pytest.raises(ValidationError, match=r"n_clusters must be an integer >= 1"):
        _fit(n_clusters=k)


def test_n_clusters_above_the_number_of_rows() -> None:
    with pytest.raises(ValidationError, match=r"n_clusters=11 is larger than the number of rows \(10\)"):
        _fit(n_clusters=11)


# fewer distinct rows than n_clusters is accepted (with a warning): tests/test_few_distinct.py


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_iter": -1}, r"max_iter must be >= 0, got -1"),
        ({"n_init": 0}, r"n_init must be >= 1, got 0"),
        ({"n_init": "many"}, r"n_init must be an integer >= 1, got 'many'"),
        ({"tol": -1.0}, r"tol must be a finite number >= 0, got -1.0"),
        ({"tol": float("nan")}, r"tol must be a finite number >= 0"),
        ({"seed": 1.5}, r"seed must be an integer or None, got 1.5"),
        ({"compress": "yes"}, r"compress must be True, False or 'auto', got 'yes'"),
    ],
)
def test_bad_parameters(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        _fit(n_clusters=2, **params)


# -- weights --------------------------------------------------------------------------------


def test_negative_weights() -> None:
    w = np.ones(10)
    w[[4, 6]] = -1.0
    with pytest.raises(ValidationError, match=r"sample_weight contains negative values in 2 rows \(first at row 4\)"):
        _fit(n_clusters=2, sample_weight=w)


def test_nan_weights() -> None:
    w = np.ones(10)
    w[2] = np.nan
    with pytest.raises(ValidationError, match=r"sample_weight contains NaN in 1 rows"):
        _fit(n_clusters=2, sample_weight=w)


def test_infinite_weights() -> None:
    w = np.ones(10)
    w[2] = np.inf
    with pytest.raises(ValidationError, match=r"sample_weight contains infinite values in 1 rows"):
        _fit(n_clusters=2, sample_weight=w)


def test_all_zero_weights() -> None:
    with pytest.raises(ValidationError, match=r"sample_weight is zero for every row"):
        _fit(n_clusters=2, sample_weight=np.zeros(10))


@pytest.mark.parametrize("w", [np.ones(9), np.ones(11), np.ones((10, 1))], ids=["short", "long", "2d"])
def test_weights_of_the_wrong_shape(w: np.ndarray) -> None:
    with pytest.raises(ValidationError, match=rf"sample_weight has shape {re.escape(str(w.shape))} but X has 10 rows"):
        _fit(n_clusters=2, sample_weight=w)


def test_non_numeric_weights() -> None:
    with pytest.raises(ValidationError, match=r"sample_weight has non-numeric dtype"):
        _fit(n_clusters=2, sample_weight=["a"] * 10)


def test_scalar_weight_applies_to_every_row() -> None:
    a, b = _fit(n_clusters=2, sample_weight=3.0), _fit(n_clusters=2)
    assert a.inertia_ == pytest.approx(3 * b.inertia_)


# -- explicit init --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "match"),
    [
        (np.zeros((3, 2)), r"init has 3 centers but n_clusters=2"),
        (np.zeros((2, 3)), r"init has shape \(2, 3\); expected \(2, 2\)"),
        (np.zeros((2, 2, 1)), r"init has shape \(2, 2, 1\); expected \(2, 2\)"),
        (np.zeros(2), r"init has shape \(2,\); expected \(2, 2\)"),
        ([[0.0, 1.0], [2.0]], r"init could not be read as a numeric \(k, d\) array"),
        ([["a", "b"], ["c", "d"]], r"init could not be read as a numeric \(k, d\) array"),
        ([[0.0, np.nan], [1.0, 1.0]], r"init contains NaN or infinite values"),
    ],
    ids=["k", "d", "3d", "1d", "ragged", "strings", "nan"],
)
def test_init_array_of_the_wrong_shape_or_content(init: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        _fit(n_clusters=2, init=init)


def test_init_of_an_unsupported_type() -> None:
    with pytest.raises(ValidationError, match=r"init must be a registered name \('k-means\+\+', .*'random'"):
        _fit(n_clusters=2, init=42)


# -- strategy names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "kind", "known"),
    [
        ("backend", "backend", r"'numpy'"),
        ("init", "initializer", r"'k-means\+\+', .*'random'"),
        ("distance", "distance", r"'l1', 'l2'"),
    ],
)
def test_unknown_strategy_name_lists_the_known_ones(param: str, kind: str, known: str) -> None:
    with pytest.raises(UnknownStrategyError, match=rf"unknown {kind} 'nope'; known {kind}s: .*{known}"):
        _fit(n_clusters=2, **{param: "nope"})


def test_strategy_objects_must_have_the_protocol_methods() -> None:
    with pytest.raises(ValidationError, match=r"backend must be a registered name or an object with dataset\(\)"):
        _fit(n_clusters=2, backend=object())
    with pytest.raises(ValidationError, match=r"distance must be a registered name or a kmeans.distance.Distance"):
        _fit(n_clusters=2, distance=object())


# -- using the model ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["predict", "transform", "score", "save"])
def test_methods_before_fit(method: str, tmp_path: Any) -> None:
    arg = tmp_path / "m.json" if method == "save" else X
    with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(X\) first"):
        getattr(KMeans(2), method)(arg)


def test_not_fitted_error_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        KMeans(2).predict(X)


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_wrong_number_of_features(method: str) -> None:
    model = _fit(n_clusters=2)
    with pytest.raises(ValidationError, match=r"X has 3 features, but KMeans is expecting 2 features as input"):
        getattr(model, method)(np.zeros((4, 3)))


def test_predict_validates_its_input_like_fit() -> None:
    model = _fit(n_clusters=2)
    with pytest.raises(ValidationError, match=r"X contains NaN values in 1 of 1 rows"):
        model.predict([[np.nan, 0.0]])


def test_validation_happens_before_any_pass_over_the_data() -> None:
    class Exploding:
        name = "exploding"

        def init(self, *args: Any) -> Any:
            raise AssertionError("initializer ran before validation")

    with pytest.raises(ValidationError, match="sample_weight"):
        _fit(n_clusters=2, init=Exploding(), sample_weight=-np.ones(10))
