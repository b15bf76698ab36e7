"""The user-facing KMeans estimator."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from kmeans import IterationRecord, KMeans
from kmeans.backends.numpy import NumPyBackend
from kmeans.distance.l1 import L1
from kmeans.init.random import Random
from tests import oracle


def _blobs(seed: int = 0, n: int = 400, d: int = 3, dtype: Any = np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(-10, 10, size=(5, d))[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(dtype)


X = _blobs()


@pytest.fixture(scope="module")
def model() -> KMeans:
    return KMeans(5, seed=0).fit(X)


def test_fit_returns_the_estimator() -> None:
    km = KMeans(2, seed=0)
    assert km.fit(X) is km


def test_fitted_attributes_have_the_documented_shapes_and_types(model: KMeans) -> None:
    assert model.cluster_centers_.shape == (5, 3) and model.cluster_centers_.dtype == np.float64
    assert model.labels_.shape == (400,) and model.labels_.dtype.kind == "i"
    assert isinstance(model.inertia_, float) and isinstance(model.n_iter_, int)
    assert model.cluster_sizes_.shape == (5,) and model.cluster_sizes_.sum() == 400
    assert model.n_features_in_ == 3
    assert len(model.history_) == model.n_iter_
    assert all(isinstance(h, IterationRecord) for h in model.history_)


def test_labels_inertia_and_sizes_describe_the_final_centers(model: KMeans) -> None:
    labels, costs = oracle.assign(X, model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(costs.sum(), rel=1e-12)
    np.testing.assert_array_equal(model.cluster_sizes_, np.bincount(labels, minlength=5))


def test_predict_equals_labels_on_the_training_data(model: KMeans) -> None:
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_fit_predict_equals_fit_then_labels() -> None:
    np.testing.assert_array_equal(KMeans(5, seed=3).fit_predict(X), KMeans(5, seed=3).fit(X).labels_)


def test_score_is_minus_the_inertia_on_the_training_data(model: KMeans) -> None:
    assert model.score(X) == pytest.approx(-model.inertia_, rel=1e-12)


def test_score_uses_sample_weight(model: KMeans) -> None:
    w = np.random.default_rng(1).uniform(0, 2, 400)
    assert model.score(X, sample_weight=w) == pytest.approx(
        -np.dot(w, oracle.assign(X, model.cluster_centers_)[1]), rel=1e-12
    )


def test_transform_gives_euclidean_distances_for_l2(model: KMeans) -> None:
    np.testing.assert_allclose(
        model.transform(X[:20]), np.sqrt(oracle.sq_euclidean(X[:20], model.cluster_centers_)), rtol=1e-9, atol=1e-9
    )


def test_transform_gives_manhattan_distances_for_l1() -> None:
    km = KMeans(3, seed=0, distance="l1").fit(X)
    np.testing.assert_allclose(km.transform(X[:20]), oracle.manhattan(X[:20], km.cluster_centers_), rtol=1e-12)


def test_same_seed_gives_the_same_model() -> None:
    a, b = KMeans(5, seed=42, init="random").fit(X), KMeans(5, seed=42, init="random").fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_seed_none_draws_and_records_a_seed() -> None:
    a = KMeans(5, init="random", n_init=1).fit(X)
    b = KMeans(5, init="random", n_init=1, seed=a.seed_).fit(X)
    assert isinstance(a.seed_, int)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


@pytest.mark.parametrize(("n_threads", "block_rows"), [(1, None), (2, 7), (2, 64), (1, 1000)])
@pytest.mark.parametrize("init", ["random", "k-means++"])
def test_result_does_not_depend_on_threads_or_block_size(n_threads: int, block_rows: int | None, init: str) -> None:
    ref = KMeans(4, seed=5, init=init, backend=NumPyBackend(n_threads=1)).fit(X)
    got = KMeans(4, seed=5, init=init, backend=NumPyBackend(n_threads=n_threads, block_rows=block_rows)).fit(X)
    np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(got.labels_, ref.labels_)


def test_float32_input_gives_float64_centers_close_to_float64_fit() -> None:
    X32 = X.astype(np.float32)
    init = X[:5].astype(np.float32).astype(np.float64)
    a = KMeans(5, init=init, max_iter=10, tol=0.0).fit(X32)
    b = KMeans(5, init=init, max_iter=10, tol=0.0).fit(X32.astype(np.float64))
    assert a.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-6)


def test_uint8_pixels_work_as_is() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    model = KMeans(4, seed=0).fit(pixels)
    assert model.labels_.shape == (1200,)
    assert model.cluster_sizes_.sum() == 1200
    np.testing.assert_array_equal(model.predict(pixels), model.labels_)


@pytest.mark.parametrize("compress", [True, False, "auto"])
def test_compress_changes_nothing_but_speed(compress: bool | str) -> None:
    pixels = np.random.default_rng(3).integers(0, 8, size=(2000, 3)).astype(np.uint8)
    init = np.array([[0.0, 0.0, 0.0], [7.0, 7.0, 7.0], [0.0, 7.0, 3.0]])
    ref = KMeans(3, init=init, max_iter=8, tol=0.0, compress=False).fit(pixels)
    got = KMeans(3, init=init, max_iter=8, tol=0.0, compress=compress).fit(pixels)
    np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)


def test_l1_on_pixels_gives_integer_centers_that_match_the_oracle() -> None:
    pixels = np.random.default_rng(4).integers(0, 256, size=(3000, 3)).astype(np.uint8)
    init = pixels[:4].astype(np.float64)
    model = KMeans(4, init=init, distance="l1", max_iter=5, tol=0.0).fit(pixels)
    centers, labels, inertia = oracle.lloyd(pixels.astype(np.float64), init, 5, distance="l1")
    np.testing.assert_array_equal(model.cluster_centers_, centers)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.inertia_ == pytest.approx(inertia, rel=1e-12)
    assert model.distance_ is L1


def test_one_cluster_is_the_weighted_mean() -> None:
    w = np.random.default_rng(5).uniform(0.1, 1, 400)
    model = KMeans(1, seed=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(model.cluster_centers_[0], np.average(X, axis=0, weights=w), rtol=1e-12)


def test_as_many_clusters_as_distinct_rows_gives_zero_inertia() -> None:
    data = np.repeat(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), 3, axis=0)
    model = KMeans(3, seed=0, init="random").fit(data)
    assert model.inertia_ == 0.0
    assert sorted(model.cluster_centers_.tolist()) == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_sample_weight_counts_like_repeated_rows() -> None:
    counts = np.random.default_rng(6).integers(1, 4, 400)
    init = X[:5]
    a = KMeans(5, init=init, max_iter=6, tol=0.0).fit(X, sample_weight=counts)
    b = KMeans(5, init=init, max_iter=6, tol=0.0).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-12)
    np.testing.assert_array_equal(a.cluster_sizes_, b.cluster_sizes_)


def test_zero_weight_rows_still_get_labels() -> None:
    w = np.ones(400)
    w[:10] = 0.0
    model = KMeans(5, seed=0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(model.labels_[:10], model.predict(X[:10]))
    assert model.cluster_sizes_.sum() == 390


def test_callbacks_see_every_iteration_and_history_keeps_them() -> None:
    seen: list[IterationRecord] = []
    model = KMeans(5, seed=0, max_iter=7, tol=0.0, callbacks=[seen.append]).fit(X)
    assert model.n_iter_ == 2 and model.converged_  # the second update moves nothing: a fixed point
    assert seen == model.history_
    assert [h.iteration for h in model.history_] == [1, 2] and model.history_[-1].center_shift == 0.0


def test_tol_stops_early_and_reports_convergence() -> None:
    model = KMeans(5, seed=0, max_iter=300, tol=1e-4).fit(X)
    assert model.converged_ and model.n_iter_ < 300
    assert model.history_[-1].center_shift <= 1e-4


def test_n_init_auto_is_one_for_kmeans_plus_plus_and_ten_for_random() -> None:
    starts: list[int] = []
    KMeans(3, seed=0, max_iter=1, callbacks=[lambda r: starts.append(r.restart)]).fit(X)
    assert starts == [0]
    starts.clear()
    KMeans(3, seed=0, init="random", max_iter=1, callbacks=[lambda r: starts.append(r.restart)]).fit(X)
    assert starts == list(range(10))


def test_n_init_keeps_the_best_restart() -> None:
    starts: list[np.ndarray] = []

    class Recording(Random):
        def init(self, dataset: Any, k: int, assign: Any, seed: int) -> np.ndarray:
            starts.append(super().init(dataset, k, assign, seed))
            return starts[-1]

    best = KMeans(6, seed=0, init=Recording(), n_init=4, max_iter=20).fit(X)
    each = [KMeans(6, init=c, max_iter=20).fit(X).inertia_ for c in starts]
    assert len(each) == 4 and len(set(each)) > 1
    assert best.inertia_ == min(each)
    assert each.index(best.inertia_) == best.history_[0].restart


def test_n_init_with_explicit_centers_warns_and_runs_once() -> None:
    with pytest.warns(RuntimeWarning, match=r"explicit initial centers were given, so n_init=3 restarts"):
        model = KMeans(2, init=X[:2], n_init=3, max_iter=2, tol=0.0).fit(X)
    assert {h.restart for h in model.history_} == {0}


def test_explicit_centers_do_not_warn_with_n_init_auto() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(2, init=X[:2]).fit(X)


def test_get_params_and_set_params() -> None:
    km = KMeans(3, tol=0.5)
    assert km.get_params()["n_clusters"] == 3 and km.get_params()["tol"] == 0.5
    assert km.set_params(n_clusters=4, distance="l1") is km
    assert (km.n_clusters, km.distance) == (4, "l1")


def test_set_params_rejects_unknown_names() -> None:
    from kmeans.errors import ValidationError

    with pytest.raises(ValidationError, match=r"unknown parameter 'n_cluster'; known parameters: n_clusters"):
        KMeans().set_params(n_cluster=3)


def test_constructor_only_stores_parameters() -> None:
    km = KMeans(n_clusters=-1, init="nope", backend="nope")  # validated by fit, not here
    assert km.n_clusters == -1 and not hasattr(km, "cluster_centers_")


def test_repr_shows_non_default_parameters() -> None:
    assert repr(KMeans(3)) == "KMeans(n_clusters=3)"
    assert repr(KMeans(3, distance="l1", tol=0.0)) == "KMeans(n_clusters=3, tol=0.0, distance='l1')"
    assert repr(KMeans(2, init=np.zeros((2, 2)))) == "KMeans(n_clusters=2, init=<array>)"


def test_refit_replaces_the_fitted_state() -> None:
    km = KMeans(2, seed=0).fit(X)
    km.set_params(n_clusters=3).fit(X[:, :2])
    assert km.cluster_centers_.shape == (3, 2) and km.n_features_in_ == 2


def test_fit_transform_equals_fit_then_transform() -> None:
    a = KMeans(4, seed=1).fit_transform(X)
    b = KMeans(4, seed=1).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (400, 4)


@pytest.mark.parametrize(
    "layout",
    [lambda a: np.asfortranarray(a), lambda a: np.repeat(a, 2, axis=1)[:, ::2], lambda a: a.tolist()],
    ids=["fortran", "strided", "list"],
)
def test_memory_layout_of_the_input_does_not_matter(layout: Any) -> None:
    ref = KMeans(4, seed=2).fit(X)
    got = KMeans(4, seed=2).fit(layout(X))
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    np.testing.assert_array_equal(got.predict(layout(X)), ref.labels_)


def test_a_pandas_dataframe_is_accepted() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    np.testing.assert_array_equal(KMeans(3, seed=0).fit(df).labels_, KMeans(3, seed=0).fit(X).labels_)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
def test_integer_input_matches_the_same_values_as_floats(dtype: type) -> None:
    data = np.random.default_rng(7).integers(0, 50, size=(300, 2)).astype(dtype)
    init = data[:3].astype(np.float64)
    a = KMeans(3, init=init, max_iter=10, tol=0.0).fit(data)
    b = KMeans(3, init=init, max_iter=10, tol=0.0).fit(data.astype(np.float64))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_fit_mutates_neither_data_nor_weights_nor_init() -> None:
    data, w, init = X.copy(), np.random.default_rng(8).uniform(0.5, 1.5, 400), X[:4].copy()
    data.setflags(write=False)
    w.setflags(write=False)
    init.setflags(write=False)
    model = KMeans(4, init=init, max_iter=5, tol=0.0).fit(data, sample_weight=w)
    np.testing.assert_array_equal(init, X[:4])
    assert not np.shares_memory(model.cluster_centers_, init)


def test_starting_from_fitted_centers_converges_at_once() -> None:
    first = KMeans(5, seed=0, tol=0.0, max_iter=100).fit(X)
    again = KMeans(5, init=first.cluster_centers_, tol=1e-12).fit(X)
    assert again.n_iter_ == 1 and again.converged_
    np.testing.assert_allclose(again.cluster_centers_, first.cluster_centers_, rtol=1e-12)


def test_unit_weights_equal_no_weights() -> None:
    a = KMeans(4, seed=3).fit(X, sample_weight=np.ones(400))
    b = KMeans(4, seed=3).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_scaling_all_weights_scales_only_the_inertia(distance: str) -> None:
    w = np.random.default_rng(9).integers(1, 5, 400).astype(np.float64)
    a = KMeans(4, seed=4, distance=distance).fit(X, sample_weight=w)
    b = KMeans(4, seed=4, distance=distance).fit(X, sample_weight=8 * w)
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=1e-12)
    assert b.inertia_ == pytest.approx(8 * a.inertia_, rel=1e-12)


def test_zero_weight_rows_do_not_influence_centers() -> None:
    far = np.vstack([X, np.full((5, 3), 1e6)])
    w = np.r_[np.ones(400), np.zeros(5)]
    a = KMeans(4, init=X[:4], max_iter=10, tol=0.0).fit(far, sample_weight=w)
    b = KMeans(4, init=X[:4], max_iter=10, tol=0.0).fit(X)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)


def test_transform_follows_the_metric_not_the_registry_name() -> None:
    # Regression: only a distance registered as "l2" got its squared costs square-rooted.
    from kmeans.distance.base import Distance
    from kmeans.distance.l2 import L2

    renamed = Distance(name="renamed", assign=L2.assign, update=L2.update)
    a = KMeans(3, seed=0, distance=renamed).fit(X)
    np.testing.assert_allclose(
        a.transform(X[:10]), np.sqrt(oracle.sq_euclidean(X[:10], a.cluster_centers_)), rtol=1e-9, atol=1e-9
    )


def test_hand_computed_weighted_example_from_scikit_learn_suite() -> None:
    # sklearn's test_kmeans_results.
    data = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]])
    model = KMeans(2, init=np.array([[0.0, 0.0], [0.5, 0.5]])).fit(data, sample_weight=[3.0, 1.0, 1.0, 3.0])
    assert model.labels_.tolist() == [0, 0, 1, 1]
    assert model.inertia_ == pytest.approx(0.375)
    np.testing.assert_allclose(model.cluster_centers_, [[0.125, 0.0], [0.875, 1.0]])
    assert model.n_iter_ == 2 and model.converged_  # the second update moves nothing
    np.testing.assert_array_equal(model.cluster_sizes_, [4.0, 4.0])


def test_light_row_still_rescues_an_empty_cluster() -> None:
    # sklearn's test_k_means_empty_cluster_relocated.
    model = KMeans(2, init=np.array([[-1.0], [10.0]])).fit(np.array([[-1.0], [1.0]]), sample_weight=[1.9, 0.1])
    assert sorted(set(model.labels_.tolist())) == [0, 1]
    np.testing.assert_allclose(model.cluster_centers_, [[-1.0], [1.0]])


def test_more_iterations_never_score_worse() -> None:
    scores = [KMeans(5, init=X[:5], max_iter=m, tol=0.0).fit(X).score(X) for m in (1, 2, 5, 20)]
    assert scores == sorted(scores)


def test_deferred_labels_are_made_once_on_first_read() -> None:
    from kmeans._types import Deferred

    model = KMeans(2)
    assert not hasattr(model, "labels_")  # before fit, as in scikit-learn
    calls: list[int] = []

    def make() -> np.ndarray:
        calls.append(1)
        return np.array([0, 1], dtype=np.int32)

    model.labels_ = Deferred(make)
    assert calls == []  # nothing computed until read
    assert model.labels_.tolist() == [0, 1]
    assert model.labels_.tolist() == [0, 1]
    assert calls == [1]


# -- scikit-learn's (X, y=None, sample_weight=None) convention --------------------------------


def test_y_is_ignored_by_fit_so_a_pipeline_with_y_gives_the_model_without_y() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.arange(400) % 2  # zeros would have been zero weights when y was sample_weight
    with_y = make_pipeline(StandardScaler(), KMeans(3, seed=0)).fit(X, y)
    without_y = make_pipeline(StandardScaler(), KMeans(3, seed=0)).fit(X)
    np.testing.assert_array_equal(with_y[-1].cluster_centers_, without_y[-1].cluster_centers_)
    np.testing.assert_array_equal(with_y[-1].labels_, without_y[-1].labels_)


def test_string_labels_as_y_are_ignored() -> None:
    y = np.array(["a", "b"] * 200)
    np.testing.assert_array_equal(
        KMeans(3, seed=0).fit(X, y).cluster_centers_, KMeans(3, seed=0).fit(X).cluster_centers_
    )


def test_sample_weight_is_the_third_positional_parameter() -> None:
    w = np.random.default_rng(6).uniform(0.1, 2, 400)
    positional = KMeans(3, seed=0).fit(X, None, w)
    by_name = KMeans(3, seed=0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(positional.cluster_centers_, by_name.cluster_centers_)
    assert positional.score(X, None, w) == by_name.score(X, sample_weight=w)
    np.testing.assert_array_equal(KMeans(3, seed=0).fit_predict(X, None, w), by_name.labels_)
    np.testing.assert_array_equal(KMeans(3, seed=0).fit_transform(X, None, w), by_name.transform(X))


def test_fit_predict_fit_transform_and_score_ignore_y() -> None:
    y = np.zeros(400)
    model = KMeans(3, seed=0).fit(X)
    np.testing.assert_array_equal(KMeans(3, seed=0).fit_predict(X, y), model.labels_)
    np.testing.assert_array_equal(KMeans(3, seed=0).fit_transform(X, y), model.transform(X))
    assert model.score(X, y) == model.score(X)


# -- init="auto": the backend's default initializer --------------------------------------------


def test_init_auto_is_kmeans_plus_plus_in_process() -> None:
    auto = KMeans(4, seed=3).fit(X)
    explicit = KMeans(4, seed=3, init="k-means++").fit(X)
    np.testing.assert_array_equal(auto.cluster_centers_, explicit.cluster_centers_)
    assert KMeans().init == "auto"


def test_init_auto_asks_the_backend_and_defaults_to_kmeans_plus_plus() -> None:
    class Plain:  # a third-party backend without the optional default_init
        name = "plain"

        def __init__(self) -> None:
            self.inner = NumPyBackend(n_threads=1)

        def dataset(self, X: Any, sample_weight: Any = None, *, features: Any = None) -> Any:
            return self.inner.dataset(X, sample_weight, features=features)

        def fit(self, dataset: Any, spec: Any) -> Any:
            self.initializer = spec.initializer
            return self.inner.fit(dataset, spec)

        def predict(self, X: Any, centers: Any, assign: Any, *, features: Any = None) -> Any:
            return self.inner.predict(X, centers, assign, features=features)

    class PrefersRandom(Plain):
        default_init = "random"

    plain, prefers_random = Plain(), PrefersRandom()
    KMeans(3, seed=0, backend=plain).fit(X)
    KMeans(3, seed=0, backend=prefers_random).fit(X)
    assert plain.initializer.name == "k-means++"
    assert prefers_random.initializer.name == "random"
