"""The user-facing estimator, :class:`KMeans`."""

from __future__ import annotations

import functools
import numbers
import sys
import warnings
from collections.abc import Sequence
from typing import Any, overload

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import registry
from kmeans._ops import caller_stacklevel, weighted_sum
from kmeans._random import derive_seed, fresh_seed
from kmeans._scale import (
    RangeSafeAssign,
    fit_dataset,
    scale_fit_input,
    scale_for_centers,
    unscale_cost,
    unscale_distance,
)
from kmeans._types import Callback, Deferred, FitSpec, Float64Array, IterationRecord
from kmeans._validation import (
    check_callbacks,
    check_fitted_centers,
    check_missing,
    check_not_masked,
    check_points,
    check_positive_int,
    check_real_array,
    check_tol,
    check_weights,
)
from kmeans.driver import distinct_points, padded_centers
from kmeans.errors import ConvergenceWarning, NotFittedError, ValidationError
from kmeans.init._sampling import distinct_rows
from kmeans.init.explicit import ExplicitCenters
from kmeans.minibatch import MiniBatch, MiniBatchState, chunk_dataset, final_pass, minibatch_step
from kmeans.protocols import Dataset, optional
from kmeans.sparse import check_sparse, is_scipy_sparse

_PARAMS = (
    "n_clusters",
    "init",
    "n_init",
    "max_iter",
    "tol",
    "seed",
    "backend",
    "distance",
    "compress",
    "callbacks",
    "random_state",
    "algorithm",
    "batch_size",
)


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


def resolve_algorithm(algorithm: Any, batch_size: Any) -> Any:
    """``None`` for ``"lloyd"``; a :class:`~kmeans.minibatch.MiniBatch` (``batch_size`` applied) for ``"minibatch"``."""
    if isinstance(algorithm, str) and algorithm == "lloyd":
        if batch_size is not None:
            raise ValidationError(f"batch_size={batch_size!r} applies to algorithm='minibatch', not 'lloyd'")
        return None
    if isinstance(algorithm, str) and algorithm == "minibatch":
        algorithm = MiniBatch()
    if not hasattr(algorithm, "fit") or isinstance(algorithm, (str, type)):
        raise ValidationError(
            f"algorithm must be 'lloyd', 'minibatch' or a kmeans.minibatch.MiniBatch; got {algorithm!r}"
        )
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
        algorithm = attrs.evolve(algorithm, batch_size=int(batch_size))
    check = getattr(algorithm, "check", None)
    if check is not None:
        check()
    return algorithm


def resolve_init(init: Any, backend: Any = None) -> Any:
    """The initializer object for ``init``; ``"auto"`` is the backend's ``default_init`` (else k-means++)."""
    if isinstance(init, str) and init == "auto":
        init = optional(backend, "default_init")
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


def _own_dataset(X: Any, backend: Any, sample_weight: Any, features: Any) -> Any:
    """``X``, a ``Dataset`` given to ``fit``: it runs in this process, so on the numpy backend only."""
    from kmeans.backends.numpy import NumPyBackend

    if not isinstance(backend, NumPyBackend):
        raise ValidationError(
            f"X is a Dataset ({type(X).__name__}), which is read in this process: fit it with backend='numpy', "
            f"not {getattr(backend, 'name', backend)!r}"
        )
    if sample_weight is not None or features is not None:
        raise ValidationError("X is a Dataset: its weights and columns are chosen when it is opened, not in fit()")
    return X


class _InputTypeError(ValidationError, TypeError):
    """Input of a kind K-means cannot take (non-numbers, sparse): a ``TypeError`` too, as NumPy's and SciPy's are."""


def _is_spark(X: Any) -> bool:
    """Whether ``X`` is a PySpark object (DataFrame, RDD), detected without importing pyspark."""
    return type(X).__module__.split(".")[0] == "pyspark"


def _in_process_dataset(X: Any) -> bool:
    """Whether ``X`` is a ``Dataset`` read in this process (kmeans.datasets, one of the user's own).

    An engine's own dataset (a ``SparkRDDDataset`` from ``SparkRDDBackend().dataset``) is not:
    it goes to its backend's ``dataset``, which takes it as it is.
    """
    return not _is_spark(X) and isinstance(X, Dataset) and not type(X).__module__.startswith("kmeans.backends.")


def _feature_names(X: Any) -> NDArray[np.object_] | None:
    """The column names of a dataframe (pandas, polars, pyarrow, any ``__dataframe__``) when all are strings.

    ``None`` for arrays, Spark input and columns without names; mixed string and
    non-string names raise, as in scikit-learn.
    """
    if isinstance(X, np.ndarray) or _is_spark(X):
        return None
    columns = getattr(X, "column_names", None)  # pyarrow (whose .columns are the column arrays)
    if columns is None:
        columns = getattr(X, "columns", None)  # pandas, polars, modin, ...
    if columns is None and hasattr(X, "__dataframe__"):
        columns = X.__dataframe__().column_names()
    if columns is None or isinstance(columns, str):
        return None
    names = list(columns)
    are_strings = {isinstance(name, str) for name in names}
    if are_strings == {True}:
        return np.asarray(names, dtype=object)
    if are_strings == {True, False}:
        kinds = sorted({type(name).__name__ for name in names})
        raise ValidationError(
            f"Feature names are only supported if all input features have string names, but X has {kinds} as "
            "column name types; convert them all to strings (X.columns = X.columns.astype(str)) or to non-strings"
        )
    return None


def _as_numbers(X: Any) -> Any:
    """In-memory ``X`` as a numeric array: dataframes converted, object arrays of numbers cast to float64.

    Lists, Spark objects and other engine-native input pass through unchanged for the backend.
    """
    if type(X).__module__.startswith("scipy.sparse"):
        return X  # the backend reads it (numpy: CSR blocks; see kmeans.sparse)
    if _is_spark(X) or isinstance(X, (list, tuple)) or not hasattr(X, "__array__"):
        return X
    check_not_masked(X)  # np.asarray would drop the mask
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise _InputTypeError(f"Complex data not supported: X has dtype {arr.dtype}; K-means needs real numbers")
    if arr.dtype.kind == "O":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            check_missing(arr, "X")  # pd.NA of a nullable pandas column: name the missing values
            raise _InputTypeError(f"X has dtype object and not every value is a number: {exc}") from exc
    return arr


@functools.cache
def _also_sklearns(ours: type[Any], theirs: type[Any]) -> type[Any]:
    """Our exception or warning class that is also scikit-learn's, so its checks, filters and ``except`` see it."""
    return type(ours.__name__, (ours, theirs), {"__module__": ours.__module__})


def _convergence_warning() -> type[ConvergenceWarning]:
    """:class:`ConvergenceWarning`; also scikit-learn's once it is imported (never imported here)."""
    if "sklearn" in sys.modules:
        try:
            from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
        except ImportError:
            return ConvergenceWarning
        found: type[ConvergenceWarning] = _also_sklearns(ConvergenceWarning, SklearnConvergenceWarning)
        return found
    return ConvergenceWarning


def _warn_few_points(m: int, k: int, exact: bool) -> None:
    """scikit-learn's warning for data with ``m < k`` distinct points, pointing at the caller's line."""
    what = (
        f"the fit returns them as centers (inertia 0) with {k - m} duplicate, empty centers"
        if exact
        else "Lloyd runs from the given init; some clusters stay empty"
    )
    warnings.warn(
        f"Number of distinct clusters ({m}) found smaller than n_clusters ({k}): X has {m} distinct points of "
        f"positive weight; {what}. Possibly due to duplicate points in X.",
        _convergence_warning(),
        stacklevel=caller_stacklevel(),
    )


def _not_fitted(message: str) -> NotFittedError:
    """A :class:`NotFittedError`; also a ``sklearn.exceptions.NotFittedError`` once scikit-learn is imported.

    scikit-learn is never imported here: code that catches its error has imported it already.
    """
    if "sklearn" in sys.modules:
        try:
            from sklearn.exceptions import NotFittedError as SklearnNotFittedError
        except ImportError:  # a broken or partial install: our own error still says what is wrong
            return NotFittedError(message)
        error: NotFittedError = _also_sklearns(NotFittedError, SklearnNotFittedError)(message)
        return error
    return NotFittedError(message)


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
        ``"auto"`` (default: the backend's ``default_init``, k-means++ in process and
        k-means|| on the Spark backends, as MLlib), ``"k-means++"``, ``"random"``, another
        registered name, an ``(n_clusters, n_features)`` array of initial centers, or an
        ``Initializer``.
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
        relative to the data's variance). With any ``tol`` (``0`` included) the fit also stops at an exact
        fixed point (an update that moved no center).
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
    random_state : int or None
        scikit-learn's name for ``seed`` (what its tools set); give at most one of the two.
    algorithm : "lloyd", "minibatch" or MiniBatch
        ``"lloyd"`` (default): full Lloyd iterations. ``"minibatch"``: Sculley's mini-batch
        k-means (:mod:`kmeans.minibatch`; ``max_iter`` then counts epochs, ``compress="auto"``
        does not compress, ``n_init="auto"`` is at most 3); a :class:`kmeans.minibatch.MiniBatch`
        sets its other knobs (``max_no_improvement``, ``reassignment_ratio``, ``init_size``).
        Needs ``distance="l2"``. :meth:`partial_fit` uses it for streams.
    batch_size : int or None
        Rows per mini-batch step (``None``: the algorithm's own, 1024); only for mini-batch.

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
    features_ : str or sequence of str
        The ``features=`` given to :meth:`fit` (DataFrame columns on Spark backends), which
        :meth:`predict` uses when it is given none; absent when the fit had none.
    feature_names_in_ : ndarray of str objects
        Column names seen by :meth:`fit` when ``X`` was a dataframe with string column
        names (pandas, polars, ...); absent otherwise.
    n_steps_ : int
        Mini-batch only: steps run (``len(history_)`` after :meth:`fit`; one per :meth:`partial_fit`).
    minibatch_state_ : kmeans.minibatch.MiniBatchState
        Mini-batch only: the per-center counts and step clock :meth:`partial_fit` resumes from.
    backend_ : Backend
        The backend object that ran the fit.
    distance_ : Distance
        The distance object used by :meth:`predict`, :meth:`transform` and :meth:`score`.
    """

    #: The constructor parameters (``get_params``, ``set_params``); a subclass extends it.
    _param_names: tuple[str, ...] = _PARAMS

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "auto",
        n_init: int | str = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int | None = None,
        backend: Any = "numpy",
        distance: Any = "l2",
        compress: bool | str = "auto",
        callbacks: Sequence[Callback] = (),
        random_state: int | None = None,
        algorithm: Any = "lloyd",
        batch_size: int | None = None,
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
        self.random_state = random_state
        self.algorithm = algorithm
        self.batch_size = batch_size

    # -- parameters -------------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, by name; with ``deep``, also ``name__sub`` of parameters that have params."""
        params = {name: getattr(self, name) for name in self._param_names}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update((f"{name}__{key}", sub) for key, sub in value.get_params().items())
        return params

    def set_params(self, **params: Any) -> KMeans:
        """Change constructor parameters (``name__sub`` sets a nested one; unknown names raise); returns ``self``."""
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in self._param_names:
                raise ValidationError(f"unknown parameter {name!r}; known parameters: {', '.join(self._param_names)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, subs in nested.items():
            getattr(self, name).set_params(**subs)
        return self

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (imported only when scikit-learn asks): a clusterer and a transformer."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="clusterer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64"]),
            input_tags=InputTags(allow_nan=False, sparse=True),
        )

    def __sklearn_is_fitted__(self) -> bool:
        return "cluster_centers_" in self.__dict__

    def __repr__(self) -> str:
        defaults = type(self)().get_params()
        shown = [f"n_clusters={self.n_clusters}"]
        for name, value in self.get_params().items():
            if name == "n_clusters":
                continue
            if isinstance(value, np.ndarray) or value != defaults[name]:
                shown.append(f"{name}={'<array>' if isinstance(value, np.ndarray) else repr(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def _spec(self) -> tuple[Any, FitSpec]:
        k = check_positive_int(self.n_clusters, "n_clusters")
        max_iter = check_positive_int(self.max_iter, "max_iter", minimum=0)  # 0: the initial centers, as MLlib
        tol = check_tol(self.tol)
        for name in ("seed", "random_state"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise ValidationError(f"{name} must be an integer or None, got {value!r}")
        if self.seed is not None and self.random_state is not None and int(self.seed) != int(self.random_state):
            raise ValidationError(
                f"seed={self.seed} and random_state={self.random_state} disagree; random_state is scikit-learn's "
                "name for seed: give one of them"
            )
        given_seed = self.seed if self.seed is not None else self.random_state
        if self.compress not in (True, False, "auto"):
            raise ValidationError(f"compress must be True, False or 'auto', got {self.compress!r}")
        backend = resolve_backend(self.backend)
        distance = resolve_distance(self.distance)
        initializer = resolve_init(self.init, backend)
        algorithm = resolve_algorithm(self.algorithm, self.batch_size)
        check_distance = getattr(algorithm, "check_distance", None)
        if check_distance is not None:
            check_distance(distance)
        if self.n_init == "auto":
            n_init = int(optional(initializer, "n_init_auto"))
            if algorithm is not None:  # scikit-learn's MiniBatchKMeans: restarts only seed, 3 are enough
                n_init = min(n_init, 3)
        else:
            n_init = check_positive_int(self.n_init, "n_init")
            if optional(initializer, "deterministic") and n_init > 1:
                warnings.warn(
                    f"the initializer ignores the seed (explicit initial centers were given, so n_init={n_init} "
                    "restarts would all be identical); running 1",
                    RuntimeWarning,
                    stacklevel=3,
                )
                n_init = 1
        check_init = optional(initializer, "check")
        if check_init is not None:
            check_init(k, None)
        seed = fresh_seed() if given_seed is None else int(given_seed)
        spec = FitSpec(
            n_clusters=k,
            initializer=initializer,
            distance=distance,
            max_iter=max_iter,
            tol=tol,
            n_init=n_init,
            seed=seed,
            callbacks=check_callbacks(self.callbacks),
            # mini-batch draws duplicates as often as their weight would: folding them first buys nothing
            compress=False if algorithm is not None and self.compress == "auto" else self.compress,
            algorithm=algorithm,
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
        check_fit = optional(backend, "check_fit")
        if check_fit is not None:  # a backend refuses what it cannot do before any data is touched
            check_fit(spec, sample_weight)
        if is_scipy_sparse(X) and not optional(spec.distance.assign, "sparse"):
            name = getattr(spec.distance, "name", repr(spec.distance))
            raise ValidationError(
                f"distance={name!r} cannot read sparse rows; use distance='l2' or 'cosine', or densify X (X.toarray())"
            )
        own = _in_process_dataset(X)  # a Dataset (kmeans.datasets.npy, ...): fitted as it is
        feature_names = None if own else _feature_names(X)

        def make(data: Any, weights: Any) -> Any:
            if own:
                return _own_dataset(data, backend, weights, features)
            return backend.dataset(data, weights, features=features)

        # data or weights at an extreme scale are fitted exactly rescaled by a power of two
        dataset, spec, scaling = fit_dataset(X if own else _as_numbers(X), sample_weight, spec, backend, make)
        k = spec.n_clusters
        check_data = optional(spec.distance.assign, "check_dataset")
        if check_data is not None:  # rows the metric cannot measure (cosine: zero rows), before any fitting work
            check_data(dataset)
        # k distinct points imply k rows: a backend that counts lazily (spark-ml) then needs no count
        few = None
        if k > 1 and (not dataset.distinct or optional(spec.distance.assign, "canonical") is not None):
            few = distinct_points(dataset, k, spec.distance.assign)
        if (few is not None or dataset.distinct) and k > dataset.n_rows:
            raise ValidationError(f"n_clusters={k} is larger than the number of rows ({dataset.n_rows})")
        check_init = optional(spec.initializer, "check")
        if check_init is not None:
            check_init(k, dataset.n_features)
        exact = few is not None and not optional(spec.initializer, "deterministic")
        if few is not None:
            _warn_few_points(few.shape[0], k, exact)
        if exact:  # the optimum is known: the points themselves, evaluated in one pass, no update
            assert few is not None
            centers = ExplicitCenters(padded_centers(few, k))
            spec = attrs.evolve(spec, initializer=centers, max_iter=0, n_init=1, algorithm=None)
        result = backend.fit(dataset, spec)
        if exact:
            result = attrs.evolve(result, converged=True)
        if scaling is not None:
            result = scaling.result(result)
        self.cluster_centers_: Float64Array = result.centers
        self.inertia_ = result.inertia if isinstance(result.inertia, Deferred) else float(result.inertia)
        self.n_iter_: int = int(result.n_iter)
        self.cluster_sizes_ = result.cluster_weights
        self.history_: list[IterationRecord] = list(result.history)
        self.converged_: bool = bool(result.converged)
        self.seed_: int = spec.seed
        self.labels_ = result.labels
        self._set_state(result.state)
        self.n_features_in_: int = dataset.n_features
        self.backend_: Any = backend
        self.distance_: Any = spec.distance
        if feature_names is not None:
            self.feature_names_in_: NDArray[np.object_] = feature_names
        else:
            self.__dict__.pop("feature_names_in_", None)
        if features is not None:
            self.features_: Any = features
        else:
            self.__dict__.pop("features_", None)
        return self

    labels_ = _Fitted()
    inertia_ = _Fitted()
    cluster_sizes_ = _Fitted()

    def _set_state(self, state: Any) -> None:
        """``minibatch_state_`` and ``n_steps_`` of a mini-batch fit; removed after a Lloyd fit."""
        if state is None:
            self.__dict__.pop("minibatch_state_", None)
            self.__dict__.pop("n_steps_", None)
        else:
            self.minibatch_state_: Any = state
            self.n_steps_: int = int(state.n_steps)

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """One mini-batch step on the chunk ``X`` (``numpy`` backend; ``y`` is ignored).

        The first call (on an unfitted model) runs the initializer on the chunk, seeded with
        ``derive_seed(seed, 0)``; every call then makes one step with the chunk as the batch
        and its ``sample_weight`` (:func:`kmeans.minibatch.minibatch_step`). ``labels_``,
        ``inertia_`` and ``cluster_sizes_`` are the chunk's, for the updated centers. After
        :meth:`fit` with ``algorithm="minibatch"`` it continues that fit. The model pickles and
        saves (:meth:`save`) between calls and resumes where it stopped. Works with any
        ``algorithm``: ``"lloyd"`` means the default :class:`~kmeans.minibatch.MiniBatch`.
        """
        from kmeans.backends.numpy import NumPyBackend

        backend, spec = self._spec()
        if not isinstance(backend, NumPyBackend):
            raise ValidationError(
                f"partial_fit runs on the numpy backend, not {getattr(backend, 'name', backend)!r}; "
                "pass each chunk as an array, or fit a Dataset with algorithm='minibatch'"
            )
        algorithm = spec.algorithm if spec.algorithm is not None else MiniBatch()
        algorithm.check_distance(spec.distance)
        saved: MiniBatchState | None = self.__dict__.get("minibatch_state_")
        resume = saved is not None and self.__sklearn_is_fitted__()
        if resume:
            self._check_feature_names(X)
        else:
            feature_names = _feature_names(X)
        numbers = _as_numbers(X)
        if scale_fit_input(numbers, sample_weight, spec, backend)[3] is not None:
            # fit() rescales such data by a power of two; a stream's scale cannot change between chunks
            raise ValidationError(
                "partial_fit: this chunk's values or sample weights are so large or so small that squared "
                "distances or weighted sums overflow or underflow float64; multiply the whole stream (or its "
                "weights) by one power of two (e.g. X * 2.0**-600) before partial_fit"
            )
        dataset = backend.dataset(numbers, sample_weight)
        k, assign = spec.n_clusters, spec.distance.assign
        points = dataset.points
        weights = np.asarray(dataset.weights, dtype=np.float64) if dataset.weights is not None else None
        if saved is not None and resume:
            if dataset.n_features != self.n_features_in_:
                raise ValidationError(
                    f"X has {dataset.n_features} features, but KMeans is expecting {self.n_features_in_} "
                    "features as input"
                )
            state = attrs.evolve(saved, counts=saved.counts.copy())
            centers, seed = self.cluster_centers_, self.seed_
        else:
            n_distinct = distinct_rows(dataset, k).shape[0]
            if n_distinct < k:
                raise ValidationError(
                    f"the first partial_fit chunk has {n_distinct} distinct rows of positive weight, fewer than "
                    f"n_clusters={k}: the initializer needs at least {k}"
                )
            seed = spec.seed
            run_seed = derive_seed(seed, 0)
            centers = algorithm.initial_centers(chunk_dataset(points, weights), None, spec, run_seed)
            state = MiniBatchState(np.zeros(k), seed=run_seed)
        w = weights if weights is not None else np.broadcast_to(np.float64(1.0), (points.shape[0],))
        centers, step = minibatch_step(state, centers, points, w, spec.distance, float(algorithm.reassignment_ratio))
        inertia, sizes, labels = final_pass(dataset, centers, assign)
        record = IterationRecord(
            iteration=state.n_steps,
            inertia=step.inertia,
            center_shift=step.shift,
            elapsed=0.0,
            n_empty=step.n_reassigned,
        )
        for cb in spec.callbacks:
            cb(record)
        history = list(self.__dict__.get("history_", [])) if resume else []
        self.cluster_centers_ = centers
        self.inertia_ = float(inertia)
        self.cluster_sizes_ = sizes
        self.labels_ = labels
        self.n_iter_ = state.n_steps
        self.history_ = [*history, record]
        self.converged_ = False
        self.seed_ = seed
        self._set_state(state)
        if not resume:
            self.n_features_in_ = dataset.n_features
            self.backend_ = backend
            self.distance_ = spec.distance
            self.__dict__.pop("features_", None)
            if feature_names is not None:
                self.feature_names_in_ = feature_names
            else:
                self.__dict__.pop("feature_names_in_", None)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None, *, features: Any = None) -> Any:
        """Fit, then return the label of every row of ``X`` (``y`` is ignored)."""
        return self.fit(X, sample_weight=sample_weight, features=features).labels_

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Float64Array:
        """Fit, then return the distance from every row of ``X`` to every center (see :meth:`transform`)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # -- using a fitted model ---------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise _not_fitted("This KMeans instance is not fitted yet; call fit(X) first (or kmeans.load_model(path))")
        check_fitted_centers(self.cluster_centers_, self.n_features_in_)  # the kernels trust their shape

    def _check_feature_names(self, X: Any) -> None:
        """scikit-learn's rule: names seen at fit must come back, all and in order; a warning if one side has none."""
        names, fitted = _feature_names(X), getattr(self, "feature_names_in_", None)
        if names is None and fitted is None:
            return
        if fitted is None:
            warnings.warn("X has feature names, but KMeans was fitted without feature names", UserWarning, stacklevel=4)
            return
        if names is None:
            warnings.warn(
                "X does not have valid feature names, but KMeans was fitted with feature names",
                UserWarning,
                stacklevel=4,
            )
            return
        if len(names) == len(fitted) and bool((names == fitted).all()):
            return
        message = "The feature names should match those that were passed during fit.\n"
        unseen, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))
        for title, group in (
            ("Feature names unseen at fit time:", unseen),
            ("Feature names seen at fit time, yet now missing:", missing),
        ):
            if group:
                message += (
                    title + "\n" + "".join(f"- {name}\n" for name in group[:5]) + ("- ...\n" if len(group) > 5 else "")
                )
        if not unseen and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValidationError(message)

    def _local_points(self, X: Any) -> Any:
        self._check_feature_names(X)
        if is_scipy_sparse(X):
            rows = check_sparse(X)
            if rows.shape[1] != self.n_features_in_:
                raise ValidationError(
                    f"X has {rows.shape[1]} features, but KMeans is expecting {self.n_features_in_} features as input"
                )
            return rows
        arr = check_points(_as_numbers(X))
        if arr.shape[1] != self.n_features_in_:
            raise ValidationError(
                f"X has {arr.shape[1]} features, but KMeans is expecting {self.n_features_in_} features as input"
            )
        return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)

    def _assign_step(self) -> Any:
        """How :meth:`predict` and :meth:`score` assign rows: the metric's own (a subclass may descend a tree)."""
        return self.distance_.assign

    def _range_safe_assign(self) -> Any:
        """:meth:`_assign_step`, exact at any finite scale (see :class:`kmeans._scale.RangeSafeAssign`)."""
        step = self._assign_step()
        return step if optional(step, "range_safe") else RangeSafeAssign(step, self.distance_)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """Names of :meth:`transform`'s columns, ``kmeans0 … kmeans{k-1}`` (the distance to each center)."""
        self._check_fitted()
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and (given.shape != fitted.shape or not bool((given == fitted).all())):
                raise ValidationError("input_features is not equal to feature_names_in_")
            if given.shape != (self.n_features_in_,):
                raise ValidationError(
                    f"input_features should have length equal to number of features ({self.n_features_in_}), "
                    f"got {given.size}"
                )
        return np.asarray([f"kmeans{j}" for j in range(self.cluster_centers_.shape[0])], dtype=object)

    def predict(self, X: Any, *, features: Any = None) -> Any:
        """Index of the closest center for every row (lowest index on ties).

        Arrays give arrays; on Spark backends an RDD gives an RDD of labels and a
        DataFrame gives the DataFrame with a ``prediction`` column. ``features`` defaults
        to the fit's ``features=``.
        """
        self._check_fitted()
        assign = self._range_safe_assign()  # rows rescaled with the centers where they are assigned
        if isinstance(X, (list, tuple)) or is_scipy_sparse(X) or (hasattr(X, "__array__") and not _is_spark(X)):
            labels = assign.assign(self._local_points(X), self.cluster_centers_)[0]
            return labels.astype(np.int32)  # the dtype of labels_, as in scikit-learn
        if _in_process_dataset(X):  # every row of a Dataset (kmeans.datasets), one pass
            from kmeans.driver import labels

            found = labels(X, self.cluster_centers_, assign)
            return found.get() if isinstance(found, Deferred) else found
        if features is None:
            features = getattr(self, "features_", None)  # the fit's columns: no need to repeat them
        return self.backend_.predict(X, self.cluster_centers_, assign, features=features)

    def transform(self, X: Any) -> Float64Array:
        """Distance from every row to every center, ``(n, k)``: Euclidean for L2, Manhattan for L1."""
        self._check_fitted()
        pts, centers, e = scale_for_centers(self._local_points(X), self.cluster_centers_, self.distance_)
        assign = self.distance_.assign  # the metric says how its costs become distances (data units)
        distances = optional(assign, "distances") or assign.pairwise
        out: Float64Array = unscale_distance(distances(pts, centers), e, self.distance_)
        return out

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the weighted cost of ``X`` against the centers (higher is better; ``y`` is ignored)."""
        self._check_fitted()
        step = self._assign_step()
        if optional(step, "range_safe"):  # rescales by itself: costs come back in input units
            pts, e = self._local_points(X), 0
            costs = step.assign(pts, self.cluster_centers_)[1]
        else:
            pts, centers, e = scale_for_centers(self._local_points(X), self.cluster_centers_, self.distance_)
            costs = step.assign(pts, centers)[1]
        w = check_weights(sample_weight, pts.shape[0])
        return -float(unscale_cost(float(np.sum(costs)) if w is None else weighted_sum(w, costs), e, self.distance_))

    def save(self, path: Any) -> None:
        """Write the fitted model as JSON (atomically; see :func:`kmeans.load_model`)."""
        from kmeans.io import save_model

        save_model(self, path)
