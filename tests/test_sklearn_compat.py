"""KMeans as a scikit-learn estimator: its checks, clone, Pipeline, search and cross-validation tools.

scikit-learn is a test dependency only; the library imports it nowhere.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, NotFittedError, ValidationError

sklearn = pytest.importorskip("sklearn")  # in the test extra: CI always has it

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_validate  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

# What scikit-learn marks as expected failures for its own KMeans
# (sklearn/utils/_test_common/instance_generator.py, PER_ESTIMATOR_XFAIL_CHECKS).
SKLEARN_OWN_XFAILS = {
    "check_sample_weight_equivalence_on_dense_data": "sample_weight is not equivalent to removing/repeating samples.",
    "check_sample_weight_equivalence_on_sparse_data": "sample_weight is not equivalent to removing/repeating samples.",
}
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(c, 0.4, size=(60, 2)) for c in ([0, 0], [4, 0], [0, 4], [4, 4])])


def test_check_estimator_passes_every_check_but_the_expected_failures() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Estimator KMeans does not inherit from")  # on purpose
        results = check_estimator(KMeans(), expected_failed_checks=SKLEARN_OWN_XFAILS, on_fail=None, on_skip=None)
    failed = [(r["check_name"], repr(r["exception"])[:300]) for r in results if r["status"] == "failed"]
    assert failed == []
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    assert len(passed) >= 45  # the whole suite ran
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfailed <= set(SKLEARN_OWN_XFAILS)  # nothing of ours beyond scikit-learn's own for its KMeans
    # the weight checks fit n_clusters=8 on 4 distinct rows: accepted, with scikit-learn's warning
    assert {"check_sample_weights_shape", "check_sample_weights_not_overwritten"} <= passed
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API; not a claim we make


def test_import_kmeans_does_not_import_sklearn() -> None:
    code = "import sys, kmeans; kmeans.KMeans(2).get_params(); assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clone_copies_the_parameters_not_the_fit() -> None:
    init = X[:3]
    model = KMeans(3, init=init, tol=0.0, max_iter=5, distance="l1").fit(X)
    copy = clone(model)
    assert copy.get_params() == {**model.get_params(), "init": copy.init}
    np.testing.assert_array_equal(copy.init, init)  # clone deep-copies plain parameters
    assert not hasattr(copy, "cluster_centers_")


def test_random_state_is_an_alias_of_seed() -> None:
    a = KMeans(4, random_state=3).fit(X)
    b = KMeans(4, seed=3).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.seed_ == 3
    with pytest.raises(ValidationError, match=r"seed=1 and random_state=2 disagree"):
        KMeans(4, seed=1, random_state=2).fit(X)


def test_get_params_deep_and_set_params_reach_nested_parameters() -> None:
    class Tunable:
        name = "tunable"

        def __init__(self, spread: float = 1.0) -> None:
            self.spread = spread

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            return {"spread": self.spread}

        def set_params(self, **params: Any) -> Tunable:
            self.spread = params["spread"]
            return self

        def init(self, dataset: Any, k: int, assign: Any, seed: int) -> np.ndarray:
            return np.arange(k * 2, dtype=np.float64).reshape(k, 2) * self.spread

    km = KMeans(2, init=Tunable())
    assert km.get_params(deep=True)["init__spread"] == 1.0 and "init__spread" not in km.get_params(deep=False)
    km.set_params(init__spread=2.0, n_clusters=3)
    assert km.init.spread == 2.0 and km.n_clusters == 3


def test_grid_search_over_n_clusters_scores_by_score() -> None:
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(KMeans(seed=0), {"n_clusters": [2, 3, 4]}, cv=cv).fit(X)
    assert search.best_params_ == {"n_clusters": 4}  # -inertia only improves with k
    by_hand = [KMeans(4, seed=0).fit(X[tr]).score(X[te]) for tr, te in cv.split(X)]
    assert search.best_score_ == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert search.best_estimator_.cluster_centers_.shape == (4, 2)


def test_cross_validate_gives_minus_the_inertia_of_each_test_fold() -> None:
    cv = KFold(4)
    scores = cross_validate(KMeans(4, seed=1), X, cv=cv)["test_score"]
    by_hand = [KMeans(4, seed=1).fit(X[tr]).score(X[te]) for tr, te in cv.split(X)]
    np.testing.assert_allclose(scores, by_hand, rtol=1e-12)


def test_unfitted_model_raises_sklearns_not_fitted_error_too() -> None:
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(SklearnNotFittedError, match=r"not fitted yet") as caught:
        KMeans(3).predict(X)
    assert isinstance(caught.value, NotFittedError)  # still ours: KMeansError and AttributeError
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(KMeans(3))
    check_is_fitted(KMeans(3, seed=0).fit(X))


def test_feature_names_from_pandas_are_kept_and_checked() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["x", "y"])
    model = KMeans(3, seed=0).fit(df)
    assert model.feature_names_in_.tolist() == ["x", "y"] and model.feature_names_in_.dtype == object
    np.testing.assert_array_equal(model.predict(df), model.labels_)
    with pytest.raises(ValidationError, match=r"Feature names must be in the same order as they were in fit"):
        model.predict(df[["y", "x"]])
    with pytest.warns(UserWarning, match=r"X does not have valid feature names") as record:
        model.transform(X)
    assert record[0].filename == __file__  # the warning points at the caller's line
    assert not hasattr(KMeans(3, seed=0).fit(df).fit(X), "feature_names_in_")  # a refit forgets them


def test_feature_names_from_an_arrow_table() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"r": X[:, 0], "g": X[:, 1]})
    model = KMeans(2, seed=0).fit(table)
    assert model.feature_names_in_.tolist() == ["r", "g"]
    np.testing.assert_array_equal(model.predict(table), model.labels_)


def test_get_feature_names_out_names_one_distance_column_per_center() -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer

    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": 1.0})
    columns = ColumnTransformer([("km", KMeans(3, seed=0), ["a", "b"])]).fit(df)
    assert columns.get_feature_names_out().tolist() == ["km__kmeans0", "km__kmeans1", "km__kmeans2"]
    model = KMeans(2, seed=0).fit(df)
    assert model.get_feature_names_out(["a", "b", "c"]).tolist() == ["kmeans0", "kmeans1"]
    with pytest.raises(ValidationError, match=r"input_features is not equal to feature_names_in_"):
        model.get_feature_names_out(["a", "b", "z"])


def test_n_features_mismatch_is_worded_as_sklearn_words_it() -> None:
    model = KMeans(2, seed=0).fit(X)
    with pytest.raises(ValidationError, match=r"X has 3 features, but KMeans is expecting 2 features as input"):
        model.predict(np.zeros((4, 3)))


def test_object_arrays_of_numbers_are_numbers_and_others_a_type_error() -> None:
    objects = X.astype(object)
    np.testing.assert_array_equal(
        KMeans(2, seed=0).fit(objects).cluster_centers_, KMeans(2, seed=0).fit(X).cluster_centers_
    )
    objects[0, 0] = {"not": "a number"}
    with pytest.raises(TypeError, match=r"not every value is a number: float\(\) argument must be"):
        KMeans(2, seed=0).fit(objects)
    with pytest.raises(ValidationError, match=r"Complex data not supported"):
        KMeans(2, seed=0).fit(X.astype(np.complex128))


def test_sparse_input_fits_as_the_dense_input() -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    dense = KMeans(2, seed=0).fit(X)
    csr = KMeans(2, seed=0).fit(scipy_sparse.csr_matrix(X))
    np.testing.assert_allclose(csr.cluster_centers_, dense.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(csr.labels_, dense.labels_)


# -- interchange with sklearn.cluster.KMeans --------------------------------------------------


def test_round_trip_through_sklearn_keeps_predictions_and_centers() -> None:
    from sklearn.cluster import KMeans as SklearnKMeans

    from kmeans.interop import from_sklearn, to_sklearn

    ours = KMeans(4, seed=2).fit(X)
    theirs = to_sklearn(ours)
    assert isinstance(theirs, SklearnKMeans)
    np.testing.assert_array_equal(theirs.cluster_centers_, ours.cluster_centers_)
    np.testing.assert_array_equal(theirs.predict(X), ours.labels_)
    np.testing.assert_allclose(theirs.transform(X), ours.transform(X), rtol=1e-9, atol=1e-12)
    assert theirs.score(X) == pytest.approx(ours.score(X), rel=1e-9)
    assert (theirs.inertia_, theirs.n_iter_) == (ours.inertia_, ours.n_iter_)
    back = from_sklearn(theirs)
    np.testing.assert_array_equal(back.cluster_centers_, ours.cluster_centers_)
    np.testing.assert_array_equal(back.predict(X), ours.labels_)
    np.testing.assert_array_equal(back.cluster_sizes_, ours.cluster_sizes_)


def test_a_model_fitted_by_sklearn_serves_here() -> None:
    from sklearn.cluster import KMeans as SklearnKMeans

    from kmeans.interop import from_sklearn

    theirs = SklearnKMeans(4, n_init=1, random_state=0).fit(X)
    ours = from_sklearn(theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.labels_)
    assert ours.inertia_ == theirs.inertia_ and ours.seed_ == 0
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-9)


def test_a_model_without_training_labels_converts_without_labels(tmp_path: Any) -> None:
    from kmeans import load_model
    from kmeans.interop import to_sklearn

    KMeans(3, seed=0).fit(X).save(tmp_path / "model.json")
    loaded = load_model(tmp_path / "model.json")  # keeps no labels
    theirs = to_sklearn(loaded)
    assert not hasattr(theirs, "labels_")
    np.testing.assert_array_equal(theirs.predict(X), loaded.predict(X))


def test_only_l2_models_convert_out() -> None:
    from kmeans.interop import to_sklearn

    with pytest.raises(ValidationError, match=r"only distance='l2' models convert to scikit-learn's KMeans"):
        to_sklearn(KMeans(3, seed=0, distance="l1").fit(X))
    with pytest.raises(NotFittedError):
        to_sklearn(KMeans(3))
