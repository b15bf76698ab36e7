"""The backend conformance suite: what every backend promises, as tests any backend can run.

Like fsspec's abstract tests, :class:`BackendConformance` holds the tests and no backend:
a test class inherits it and provides a ``profile`` fixture returning a :class:`Profile`
(the backend object and what it claims). ``tests/conformance/test_backends.py`` enrolls
every backend in :data:`kmeans.registry.backends` and the toy thread-pool backend; a
third-party package runs the same tests on its own backend with::

    from tests.conformance.suite import BackendConformance, Profile

    class TestMyBackend(BackendConformance):
        @pytest.fixture(scope="class")
        def profile(self):
            return Profile("mine", MyBackend)

What is checked, on small data so that even a Spark backend stays within seconds:

- the same seed gives the same model as the ``numpy`` backend (centers and inertia to
  1e-9 relative, labels equal) for every initializer and distance the backend claims,
  unweighted, weighted, and on integer data (``compress="auto"``);
- bad input raises :class:`~kmeans.errors.ValidationError` before any fit;
- data with fewer distinct points than ``n_clusters`` gives those points as centers (a
  :class:`~kmeans.errors.ConvergenceWarning`, inertia 0, no update);
- an empty cluster is relocated by the driver's rule (no NaN center);
- ``labels_``, ``predict`` (the estimator's and the backend's own) equal a float64
  brute-force assignment, ties to the lowest index;
- a saved model loads back with the same centers and predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from kmeans import ConvergenceWarning, KMeans, ValidationError, load_model, registry
from kmeans.backends.numpy import NumPyBackend
from tests import oracle

#: Initializers whose seeded draws are independent of the block layout (see docs/rules.md).
LAYOUT_FREE = ("random", "k-means++", "k-means||")


@attrs.frozen
class Profile:
    """A backend under test and the capabilities it claims.

    ``initializers`` may include ``"explicit"`` (an array of initial centers);
    ``weights``: ``sample_weight`` is honoured with every claimed initializer;
    ``driver_rules``: the driver's empty-cluster and convergence rules apply (not MLlib's own);
    ``to_array`` turns engine-native labels into an ndarray.
    """

    name: str
    make: Callable[[], Any]
    initializers: tuple[str, ...] = (*LAYOUT_FREE, "explicit")
    distances: tuple[str, ...] = ("l2", "l1", "cosine")
    weights: bool = True
    driver_rules: bool = True
    to_array: Callable[[Any], Any] = np.asarray


def _blobs(n: int = 240, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-8, 8, size=(4, d))[rng.integers(0, 4, n)] + rng.normal(size=(n, d))


X = _blobs()
W = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
PIXELS = np.random.default_rng(2).integers(0, 5, size=(300, 3)).astype(np.uint8)
K = 4
#: The rule's centers for 3 distinct rows [2, 1], [0, 1], [5, 5] (cosine: their directions), and the labels.
FEW_POINTS = {
    "l2": np.array([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0]]),
    "l1": np.array([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0]]),
    "cosine": np.array([[0.0, 1.0], [0.5**0.5, 0.5**0.5], [2 / 5**0.5, 1 / 5**0.5]]),
}
FEW_LABELS = {
    "l2": np.repeat([1, 0, 2], [3, 2, 4]),
    "l1": np.repeat([1, 0, 2], [3, 2, 4]),
    "cosine": np.repeat([2, 0, 1], [3, 2, 4]),
}
PARAMS: dict[str, Any] = {"max_iter": 6, "tol": 0.0, "seed": 5, "n_init": 1}


def _init(name: str, data: np.ndarray) -> Any:
    if name == "explicit":
        return np.asarray(data[[0, 60, 120, 180]], dtype=np.float64)
    return name


def _fit(backend: Any, data: np.ndarray, init: str, distance: str, weights: np.ndarray | None = None) -> KMeans:
    return KMeans(K, init=_init(init, data), distance=distance, backend=backend, **PARAMS).fit(
        data, sample_weight=weights
    )


def _assert_same_model(got: KMeans, want: KMeans, profile: Profile, what: str) -> None:
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-9, atol=1e-12, err_msg=what)
    assert got.inertia_ == pytest.approx(want.inertia_, rel=1e-9), what
    if profile.driver_rules:  # the driver's convergence rule (max_iter, or an exact fixed point)
        assert got.n_iter_ == want.n_iter_, what
    np.testing.assert_array_equal(profile.to_array(got.labels_), want.labels_, err_msg=what)


class BackendConformance:
    """The tests; a subclass provides the ``profile`` fixture (see the module docstring)."""

    @pytest.fixture(scope="class")
    def backend(self, profile: Profile) -> Any:
        return profile.make()

    @pytest.fixture(scope="class")
    def fitted(self, profile: Profile, backend: Any) -> KMeans:
        """One fit shared by the label, predict and save/load tests."""
        return _fit(backend, X, profile.initializers[0], profile.distances[0])

    @pytest.mark.filterwarnings(r"ignore:k-means\+\+ on this engine costs:UserWarning")  # expected off-process
    def test_same_seed_gives_the_numpy_model_for_every_claimed_strategy(self, profile: Profile, backend: Any) -> None:
        # every claimed initializer with the first distance, every claimed distance with the
        # first initializer: each strategy is covered, at a few fits' cost on Spark
        reference = NumPyBackend()
        first_init, first_distance = profile.initializers[0], profile.distances[0]
        pairs = [(init, first_distance) for init in profile.initializers]
        pairs += [(first_init, distance) for distance in profile.distances[1:]]
        for init, distance in pairs:
            what = f"{profile.name}: init={init!r}, distance={distance!r}"
            got, want = _fit(backend, X, init, distance), _fit(reference, X, init, distance)
            _assert_same_model(got, want, profile, what)

    def test_weighted_and_integer_data_give_the_numpy_model(self, profile: Profile, backend: Any) -> None:
        reference = NumPyBackend()
        init, distance = profile.initializers[0], profile.distances[0]
        if profile.weights:
            got, want = _fit(backend, X, init, distance, W), _fit(reference, X, init, distance, W)
            _assert_same_model(got, want, profile, f"{profile.name}: weighted")
        got, want = _fit(backend, PIXELS, init, distance), _fit(reference, PIXELS, init, distance)
        _assert_same_model(got, want, profile, f"{profile.name}: integer data, compress='auto'")

    @pytest.mark.parametrize(
        ("data", "weights", "k", "match"),
        [
            (np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), None, 2, "NaN"),
            (np.arange(6.0), None, 2, "1-D"),
            (np.array([[0.0], [1.0], [1.0]]), None, 4, "larger than the number of rows"),
            (np.array([[0.0], [1.0], [2.0]]), np.array([1.0, -1.0, 1.0]), 2, "sample_weight"),
        ],
        ids=["nan", "1-d", "k-above-rows", "negative-weight"],
    )
    def test_bad_input_raises_a_validation_error(
        self, profile: Profile, backend: Any, data: np.ndarray, weights: np.ndarray | None, k: int, match: str
    ) -> None:
        if weights is not None and not profile.weights:
            match = "weight"  # a backend that takes no weights with its claimed initializers must still refuse them
        explicit = profile.initializers[0] == "explicit"
        init = np.zeros((k, data.shape[1] if data.ndim == 2 else 1)) if explicit else "k-means++"
        with pytest.raises(ValidationError, match=match):
            KMeans(k, init=init, backend=backend, max_iter=2, seed=0).fit(data, sample_weight=weights)

    def test_fewer_distinct_points_than_clusters_give_them_as_centers(self, profile: Profile, backend: Any) -> None:
        # 3 distinct rows for k=5: the points themselves in ascending order, then copies (empty by the tie rule)
        data = np.repeat(np.array([[2.0, 1.0], [0.0, 1.0], [5.0, 5.0]]), [3, 2, 4], axis=0)
        for distance in profile.distances:
            with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(3\) found smaller than"):
                model = KMeans(5, distance=distance, backend=backend, seed=0).fit(data)
            points = FEW_POINTS[distance]
            np.testing.assert_allclose(model.cluster_centers_, points[[0, 1, 2, 0, 1]], rtol=1e-15, err_msg=distance)
            assert model.inertia_ == pytest.approx(0.0, abs=1e-14), distance
            np.testing.assert_array_equal(profile.to_array(model.labels_), FEW_LABELS[distance], err_msg=distance)
            np.testing.assert_array_equal(model.cluster_sizes_, np.bincount(FEW_LABELS[distance], minlength=5))
            assert (model.n_iter_, model.converged_) == (0, True), distance

    @pytest.mark.parametrize("scale", [1e200, 2.0**-1000], ids=["1e200", "2^-1000"])
    def test_data_at_an_extreme_scale_give_the_numpy_model(self, profile: Profile, backend: Any, scale: float) -> None:
        # squares of such data overflow or underflow: the fit runs on an exactly rescaled copy
        init, distance = profile.initializers[0], profile.distances[0]
        data = X * scale
        got, want = _fit(backend, data, init, distance), _fit(NumPyBackend(), data, init, distance)
        _assert_same_model(got, want, profile, f"{profile.name}: data times {scale:g}")
        np.testing.assert_array_equal(
            profile.to_array(got.labels_), profile.to_array(_fit(backend, X, init, distance).labels_)
        )

    def test_explicit_centers_of_the_wrong_shape_are_refused(self, backend: Any) -> None:
        with pytest.raises(ValidationError, match="init has shape"):
            KMeans(2, init=np.zeros((2, 5)), backend=backend, max_iter=2).fit(X)

    def test_an_empty_cluster_is_relocated_not_left_nan(self, profile: Profile, backend: Any) -> None:
        data = np.array([[0.0], [1.0], [10.0], [11.0]])
        start = np.array([[0.0], [11.0], [100.0]])  # nobody is closest to 100: cluster 2 is empty
        model = KMeans(3, init=start, max_iter=1, backend=backend).fit(data)
        assert np.isfinite(model.cluster_centers_).all()
        if profile.driver_rules:  # the driver's rule: the farthest point, ties to the lower value
            assert model.history_[0].n_empty == 1
            assert model.cluster_centers_.ravel().tolist() == [0.0, 10.5, 1.0]

    def test_labels_are_the_brute_force_closest_centers(self, profile: Profile, fitted: KMeans) -> None:
        want, _ = oracle.assign(X, fitted.cluster_centers_, profile.distances[0])
        np.testing.assert_array_equal(profile.to_array(fitted.labels_), want)
        np.testing.assert_allclose(
            np.bincount(want, minlength=K).astype(np.float64), fitted.cluster_sizes_, rtol=0, atol=0
        )

    def test_predict_is_the_brute_force_assignment(self, profile: Profile, backend: Any, fitted: KMeans) -> None:
        new = _blobs(50, seed=9)
        want, _ = oracle.assign(new, fitted.cluster_centers_, profile.distances[0])
        np.testing.assert_array_equal(fitted.predict(new), want)
        own = backend.predict(new, fitted.cluster_centers_, fitted.distance_.assign)
        np.testing.assert_array_equal(profile.to_array(own), want)

    def test_a_saved_model_loads_with_the_same_centers_and_predictions(
        self, profile: Profile, fitted: KMeans, tmp_path: Path
    ) -> None:
        path = tmp_path / f"{profile.name}.json"
        fitted.save(path)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.cluster_centers_, fitted.cluster_centers_)
        np.testing.assert_array_equal(loaded.predict(X), profile.to_array(fitted.labels_))
        assert loaded.inertia_ == fitted.inertia_


def registered_profile(name: str) -> Profile:
    """The profile of a registered backend: the backend as ``KMeans(backend=name)`` gets it, full claims."""
    return Profile(name, lambda: registry.backends[name])
