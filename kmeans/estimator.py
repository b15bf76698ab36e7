"""The user-facing estimator, :class:`KMeans`."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from kmeans import registry
from kmeans._ops import weighted_sum
from kmeans._random import fresh_seed
from kmeans._types import Callback, Deferred, FitSpec, Float64Array, IterationRecord
from kmeans._validation import (
    check_callbacks,
    check_fitted_centers,
    check_points,
    check_positive_int,
    check_real_array,
    check_tol,
    check_weights,
)
from kmeans.errors import NotFittedError, ValidationError
from kmeans.init._sampling import distinct_rows
from kmeans.init.explicit import ExplicitCenters

_PARAMS = ("n_clusters", "init", "n_init", "max_iter", "tol", "seed", "backend", "distance", "compress", "callbacks")


def resolve_backend(backend: Any) -> Any:
    if isinstance(backend, str):
        return registry.backends[backend]
    if not hasattr(backend, "fit") or not hasattr(backend, "dataset"):
        raise ValidationError(
            f"backend must be a registered name or an object with dataset() and fit(); got {backend!r}"
        )
    return backend


def resolve_distance(distance: Any) -> Any:
    if isinstance(distance, str):
        return registry.distances[distance]
    if not hasattr(distance, "assign") or not hasattr(distance, "update"):
        raise ValidationError(
            f"distance must be a registered name or a kmeans.distance.Distance(assign, update); got {distance!r}"
        )
    return distance


def resolve_init(init: Any) -> Any:
    if isinstance(init, str):
        return registry.initializers[init]
    if hasattr(init, "init") and callable(init.init):
        return init
    if isinstance(init, (np.ndarray, list, tuple)):
        return ExplicitCenters(check_real_array(init, "init"))
    raise ValidationError(
        f"init must be a registered name ({', '.join(repr(n) for n in registry.initializers)}), "
        f"an (n_clusters, n_features) array, or an object with an init() method; got {init!r}"
    )


class _Fitted:
    """A fitted attribute a backend may hand over as a :class:`Deferred`: made once, on first read.

    ``labels_`` is one on every backend; ``inertia_`` and ``cluster_sizes_`` are on
    ``spark-ml`` with DataFrame input (one pass over the data that a fit whose
    attributes are never read does not pay for, as MLlib's own summary is lazy).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.key = f"_{name}"

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Fitted: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> Any: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            value = obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(f"'KMeans' object has no attribute '{self.name}' (call fit first)") from None
        if isinstance(value, Deferred):
            value = obj.__dict__[self.key] = value.get()
        return value

    def __set__(self, obj: object, value: Any) -> None:
        obj.__dict__[self.key] = value


class KMeans:
    """K-means clustering whose every step is a swappable strategy.

    Minimizes the weighted cost ``sum_i w_i cost(x_i, c_{label_i})`` by Lloyd iterations.
    With ``distance="l2"`` the cost is the squared Euclidean distance and centers are
    weighted means (classic k-means); with ``distance="l1"`` it is the Manhattan distance
    and centers are exact weighted coordinate-wise medians (k-medians).

    Parameters are stored as given; :meth:`fit` validates them. Strategies are names
    (see :mod:`kmeans.registry`) or objects satisfying the protocols of
    :mod:`kmeans.protocols`.

    Parameters
    ----------
    n_clusters : int
        Number of clusters ``k``; at most the number of distinct rows of positive weight.
    init : str, ndarray or Initializer
        ``"k-means++"`` (default), ``"random"``, another registered name, an
        ``(n_clusters, n_features)`` array of initial centers, or an ``Initializer``.
    n_init : int or "auto"
        Number of initializations; the run with the lowest inertia wins (the earliest
        on ties). ``"auto"`` is 1 for k-means++, k-means|| and explicit centers and 10
        for other initializers. Explicit centers always run once (with a warning if
        ``n_init > 1``).
    max_iter : int
        Maximum number of Lloyd updates. ``0`` returns the initial centers (with their
        labels and inertia), as MLlib does.
    tol : float
        Stop after an update in which no center moved more than ``tol`` (the metric's
        own distance, Euclidean for L2 and Manhattan for L1, in data units; not
        relative to the data's variance). ``0`` runs exactly ``max_iter`` updates.
    seed : int or None
        The same seed gives the same result on every backend and any partitioning
        (see the user guide for the exceptions). ``None`` draws one from the operating
        system and records it in ``seed_``.
    backend : str or Backend
        ``"numpy"`` (default), ``"spark-rdd"``, ``"spark-ml"`` or a ``Backend``.
    distance : str or Distance
        ``"l2"`` (default), ``"l1"`` or a :class:`kmeans.distance.Distance`.
    compress : bool or "auto"
        Fold identical rows into weighted rows before fitting. ``"auto"`` does it for
        integer data (such as 8-bit pixels). It changes speed, not the optimum, but
        seeded initializers then draw from the distinct rows in ascending
        lexicographic order, so seeded centers can differ from an uncompressed fit.
    callbacks : sequence of callables
        Functions called with an :class:`IterationRecord` after every iteration (of
        every restart).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The fitted centers, float64.
    labels_ : ndarray or RDD
        Index of the closest center for every input row (an ndarray for in-memory input;
        Spark backends may return an RDD for RDD or DataFrame input).
    inertia_ : float
        ``sum_i w_i cost(x_i, closest center)`` for the final centers. On ``spark-ml``
        with DataFrame input it (with ``cluster_sizes_``) is computed by one pass over the
        DataFrame on first read, as MLlib's own summary is.
    n_iter_ : int
        Number of Lloyd updates run by the winning restart.
    cluster_sizes_ : ndarray of shape (n_clusters,)
        Total weight (the row count without weights) of each cluster.
    history_ : list of IterationRecord
        One record per iteration of the winning restart.
    converged_ : bool
        Whether the winning restart stopped by the ``tol`` rule before ``max_iter``.
    seed_ : int
        The seed actually used (``seed``, or the one drawn for ``seed=None``).
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    backend_ : Backend
        The backend object that ran the fit.
    distance_ : Distance
        The distance object used by :meth:`predict`, :meth:`transform` and :meth:`score`.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: int | str = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int | None = None,
        backend: Any = "numpy",
        distance: Any = "l2",
        compress: bool | str = "auto",
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.backend = backend
        self.distance = distance
        self.compress = compress
        self.callbacks = callbacks

    # -- parameters -------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> KMeans:
        """Change constructor parameters (unknown names raise); returns ``self``."""
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValidationError(f"unknown parameter {name!r}; known parameters: {', '.join(_PARAMS)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = KMeans().get_params()
        shown = [f"n_clusters={self.n_clusters}"]
        for name, value in self.get_params().items():
            if name == "n_clusters":
                continue
            if isinstance(value, np.ndarray) or value != defaults[name]:
                shown.append(f"{name}={'<array>' if isinstance(value, np.ndarray) else repr(value)}")
        return f"KMeans({', '.join(shown)})"

    def _spec(self) -> tuple[Any, FitSpec]:
        k = check_positive_int(self.n_clusters, "n_clusters")
        max_iter = check_positive_int(self.max_iter, "max_iter", minimum=0)  # 0: the initial centers, as MLlib
        tol = check_tol(self.tol)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)):
            raise ValidationError(f"seed must be an integer or None, got {self.seed!r}")
        if self.compress not in (True, False, "auto"):
            raise ValidationError(f"compress must be True, False or 'auto', got {self.compress!r}")
        backend = resolve_backend(self.backend)
        distance = resolve_distance(self.distance)
        initializer = resolve_init(self.init)
        explicit = isinstance(initializer, ExplicitCenters)
        if self.n_init == "auto":
            n_init = 1 if explicit or getattr(initializer, "name", "") in ("k-means++", "k-means||") else 10
        else:
            n_init = check_positive_int(self.n_init, "n_init")
            if explicit and n_init > 1:
                warnings.warn(
                    f"explicit initial centers were given, so n_init={n_init} restarts "
                    "would all be identical; running 1",
                    RuntimeWarning,
                    stacklevel=3,
                )
                n_init = 1
        if explicit and initializer.centers.ndim == 2 and initializer.centers.shape[0] != k:
            raise ValidationError(f"init has {initializer.centers.shape[0]} centers but n_clusters={k}")
        seed = fresh_seed() if self.seed is None else int(self.seed)
        spec = FitSpec(
            n_clusters=k,
            initializer=initializer,
            distance=distance,
            max_iter=max_iter,
            tol=tol,
            n_init=n_init,
            seed=seed,
            callbacks=check_callbacks(self.callbacks),
            compress=self.compress,
        )
        return backend, spec

    # -- fitting ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, *, features: Any = None) -> KMeans:
        """Cluster ``X``: an ``(n, d)`` array, an ``(h, w, c)`` image, or engine-native data.

        ``y`` is ignored (scikit-learn's convention for clusterers, so that ``Pipeline.fit(X, y)``
        works); ``sample_weight`` gives each row a non-negative weight (a row of weight 2 counts
        like two identical rows). ``features`` names DataFrame columns on Spark backends.
        """
        backend, spec = self._spec()
        check_fit = getattr(backend, "check_fit", None)
        if check_fit is not None:  # a backend refuses what it cannot do before any data is touched
            check_fit(spec, sample_weight)
        dataset = backend.dataset(X, sample_weight, features=features)
        k = spec.n_clusters
        # k distinct rows imply k rows: a backend that counts lazily (spark-ml) then needs no count
        n_distinct = distinct_rows(dataset, k).shape[0] if not dataset.distinct and k > 1 else None
        if (n_distinct is None or n_distinct < k) and k > dataset.n_rows:
            raise ValidationError(f"n_clusters={k} is larger than the number of rows ({dataset.n_rows})")
        if isinstance(spec.initializer, ExplicitCenters) and (
            spec.initializer.centers.ndim != 2 or spec.initializer.centers.shape[1] != dataset.n_features
        ):
            raise ValidationError(
                f"init has shape {spec.initializer.centers.shape}; expected ({k}, {dataset.n_features}) = "
                "(n_clusters, n_features)"
            )
        if n_distinct is not None and n_distinct < k:
            raise ValidationError(
                f"n_clusters={k} is larger than the number of distinct rows of positive weight ({n_distinct}); "
                f"use n_clusters <= {n_distinct}"
            )
        result = backend.fit(dataset, spec)
        self.cluster_centers_: Float64Array = result.centers
        self.inertia_ = result.inertia if isinstance(result.inertia, Deferred) else float(result.inertia)
        self.n_iter_: int = int(result.n_iter)
        self.cluster_sizes_ = result.cluster_weights
        self.history_: list[IterationRecord] = list(result.history)
        self.converged_: bool = bool(result.converged)
        self.seed_: int = spec.seed
        self.labels_ = result.labels
        self.n_features_in_: int = dataset.n_features
        self.backend_: Any = backend
        self.distance_: Any = spec.distance
        return self

    labels_ = _Fitted()
    inertia_ = _Fitted()
    cluster_sizes_ = _Fitted()

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None, *, features: Any = None) -> Any:
        """Fit, then return the label of every row of ``X`` (``y`` is ignored)."""
        return self.fit(X, sample_weight=sample_weight, features=features).labels_

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Float64Array:
        """Fit, then return the distance from every row of ``X`` to every center (see :meth:`transform`)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # -- using a fitted model ---------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError(
                "this KMeans instance is not fitted yet; call fit(X) first (or kmeans.load_model(path))"
            )
        check_fitted_centers(self.cluster_centers_, self.n_features_in_)  # the kernels trust their shape

    def _local_points(self, X: Any) -> Any:
        arr = check_points(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValidationError(
                f"X has {arr.shape[1]} features, but this model was fitted with {self.n_features_in_}"
            )
        return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)

    def predict(self, X: Any, *, features: Any = None) -> Any:
        """Index of the closest center for every row (lowest index on ties).

        Arrays give arrays; on Spark backends an RDD gives an RDD of labels and a
        DataFrame gives the DataFrame with a ``prediction`` column.
        """
        self._check_fitted()
        if isinstance(X, (np.ndarray, list, tuple)):
            labels = self.distance_.assign.assign(self._local_points(X), self.cluster_centers_)[0]
            return labels.astype(np.int32)  # the dtype of labels_, as in scikit-learn
        return self.backend_.predict(X, self.cluster_centers_, self.distance_.assign, features=features)

    def transform(self, X: Any) -> Float64Array:
        """Distance from every row to every center, ``(n, k)``: Euclidean for L2, Manhattan for L1."""
        self._check_fitted()
        costs = self.distance_.assign.pairwise(self._local_points(X), self.cluster_centers_)
        # The metric decides, not the registry name: a Distance registered under another
        # name that uses the squared-Euclidean assign still reports Euclidean distances.
        if getattr(self.distance_.assign, "name", None) == "sqeuclidean":
            return np.sqrt(costs)  # type: ignore[no-any-return]
        return costs  # type: ignore[no-any-return]

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the weighted cost of ``X`` against the centers (higher is better; ``y`` is ignored)."""
        self._check_fitted()
        pts = self._local_points(X)
        w = check_weights(sample_weight, pts.shape[0])
        costs = self.distance_.assign.assign(pts, self.cluster_centers_)[1]
        return -(float(np.sum(costs)) if w is None else weighted_sum(w, costs))

    def save(self, path: Any) -> None:
        """Write the fitted model as JSON (atomically; see :func:`kmeans.load_model`)."""
        from kmeans.io import save_model

        save_model(self, path)
