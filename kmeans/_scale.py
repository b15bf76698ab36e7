"""Exact power-of-two rescaling, so the built-in metrics are right at any finite scale.

Squared distances of data near ``1e200`` overflow to ``inf`` (every row ties) and those
of data near ``1e-300`` underflow to ``0``; a total weight of many ``1e306`` weights
overflows. Multiplying by ``2**e`` only changes the exponent of every value, so it is
exact (barring overflow or underflow, which it is chosen to avoid) and commutes with
every step of a fit: ``x - c``, squares, sums, ``sqrt``, comparisons, medians and
sampling keys all come out as the unscaled values times a power of two, bit for bit.

So L2 data outside a safe range, and weights whose total (or weighted sums) could
overflow or whose maximum is tiny, are shifted by the least power of two that brings
them into range; the fit runs on the scaled copy and its results are scaled back (the
inertia may be ``inf``, honestly, when the true value exceeds float64). Data in the
safe range pays one ``max``/``min`` pass and no copy. Only the built-in ``l2`` data are
rescaled (L1 costs are exact at every scale), and weights of ``l2`` and ``l1``; a custom
metric sees the data as given. A custom ``Initializer`` sees the scaled data. One
scale serves all rows, so values more than about ``2**1100`` times smaller than the
largest still lose bits (their squares underflowed before, too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._types import Deferred, FitResult, FitSpec, IterationRecord

#: Weighted sums stay below ``2**(2 * _SAFE_EXP)``; a maximum weight below
#: ``2**-_SAFE_EXP`` is scaled up (products with it would lose bits as subnormals).
_SAFE_EXP = 500


def cost_power(distance: Any) -> int | None:
    """The ``cost_power`` a :class:`~kmeans.distance.base.Distance` declares (``None``: fitted as given)."""
    power = getattr(distance, "cost_power", None)
    return power if isinstance(power, int) and not isinstance(power, bool) else None


def squares(distance: Any) -> bool:
    """Whether the distance squares coordinates (its data need the safe range of :func:`safe_range`)."""
    return cost_power(distance) is not None and getattr(distance, "squares", False) is True


def max_abs(arr: NDArray[Any]) -> float:
    """Largest ``|x|`` of ``arr`` (0 when empty), without an ``abs`` copy."""
    return max(abs(float(arr.max())), abs(float(arr.min()))) if arr.size else 0.0


def safe_range(dtype: np.dtype[Any], n_features: int) -> tuple[float, float]:
    """``(lo, hi)``: a maximum magnitude in this range needs no rescaling.

    ``hi``: ``4 d hi²`` (the largest squared distance) stays below ``2**(emax - 2)``, so no
    cost overflows. ``lo``: differences of one unit in the last place of the maximum,
    squared, are still normal numbers, so no cost underflows into lost bits.
    """
    info = np.finfo(dtype if dtype.kind == "f" else np.float64)
    emax, emin, mant = info.maxexp, info.minexp, info.nmant + 1
    hi = 2.0 ** ((emax - 4 - math.ceil(math.log2(max(n_features, 1)))) // 2)
    lo = 2.0 ** (emin // 2 + mant)
    return lo, hi


def _shift_into(value: float, lo_exp: int, hi_exp: int) -> int:
    """The ``e`` of least magnitude with ``2**lo_exp <= value * 2**e <= 2**hi_exp`` (``value > 0``).

    The least shift moves the fewest small values into subnormals: a value ``2**1500``
    times smaller than the largest can only be kept by not rescaling at all.
    """
    exp = math.frexp(value)[1]  # value in [2**(exp - 1), 2**exp)
    if value > 2.0**hi_exp:
        return hi_exp - exp
    if value < 2.0**lo_exp:
        return lo_exp - exp + 1
    return 0


def data_exponent(arr: NDArray[Any], squared: bool, *, extra: float = 0.0, largest: float | None = None) -> int:
    """The data scale ``e`` (``0``: none needed) for float ``arr`` (and ``extra``, e.g. centers).

    Only metrics that square coordinates (L2, cosine) need one: their squares leave the
    float range; L1 costs are exact at every scale. ``largest``: ``max_abs(arr)`` if known.
    """
    if not squared or arr.dtype.kind != "f":
        return 0
    big = max_abs(arr) if largest is None else largest
    return range_exponent(max(big, extra), arr.dtype, arr.shape[1] if arr.ndim == 2 else 1)


def range_exponent(max_abs: float, dtype: np.dtype[Any], n_features: int) -> int:
    """The data scale ``e`` that brings a largest magnitude ``max_abs`` into :func:`safe_range`."""
    if max_abs == 0.0 or dtype.kind != "f":
        return 0
    if dtype != np.float32 and dtype != np.float64:  # float16 is fitted in float64 (dataset.float_points)
        dtype = np.dtype(np.float64)
    lo, hi = safe_range(dtype, n_features)
    return _shift_into(max_abs, round(math.log2(lo)), round(math.log2(hi)))


def weight_exponent(weights: NDArray[Any] | None, data_max: float) -> int:
    """The weight scale ``e`` (``0``: none needed): the total weight and every ``sum w x`` stay finite.

    Needed when ``n * max(w) * max(|x|, 1)`` may exceed ``2**1000``, or when the largest
    weight is below ``2**-500`` (its products would lose bits as subnormals).
    """
    if weights is None or weights.size == 0:
        return 0
    return max_weight_exponent(float(np.max(weights)), weights.shape[0], data_max)


def max_weight_exponent(wmax: float, n_rows: int, data_max: float) -> int:
    """:func:`weight_exponent` from the largest of ``n_rows`` weights (what a validation pass reports)."""
    if wmax == 0.0 or n_rows == 0:
        return 0
    headroom = math.ceil(math.log2(n_rows) + math.log2(max(data_max, 1.0)))
    return _shift_into(wmax, -_SAFE_EXP, 2 * _SAFE_EXP - headroom)


@attrs.frozen(eq=False)
class FitScaling:
    """A fit on data scaled by ``2**data_exp`` and weights by ``2**weight_exp``; ``power`` as in :func:`cost_power`."""

    data_exp: int
    weight_exp: int
    power: int

    def cost(self, value: Any) -> Any:
        """A cost (inertia) back in the units of the input: ``inf`` if it exceeds float64, honestly."""
        with np.errstate(over="ignore", under="ignore"):
            return np.ldexp(value, -self.power * self.data_exp - self.weight_exp)

    def length(self, value: Any) -> Any:
        """A center or a center shift back in the units of the input (scale-free when ``power == 0``)."""
        return value if self.power == 0 else np.ldexp(value, -self.data_exp)

    def record(self, r: IterationRecord) -> IterationRecord:
        return attrs.evolve(r, inertia=float(self.cost(r.inertia)), center_shift=float(self.length(r.center_shift)))

    def spec(self, spec: FitSpec) -> FitSpec:
        """``spec`` for the scaled data: ``tol`` and explicit centers scaled, callbacks shown input units."""
        from kmeans.init.explicit import ExplicitCenters

        initializer, exp = spec.initializer, 0 if self.power == 0 else self.data_exp
        if isinstance(initializer, ExplicitCenters) and exp:
            initializer = ExplicitCenters(np.ldexp(initializer.centers, exp))
        callbacks = tuple(_UnscaledCallback(cb, self) for cb in spec.callbacks)
        return attrs.evolve(spec, initializer=initializer, tol=float(np.ldexp(spec.tol, exp)), callbacks=callbacks)

    def result(self, result: FitResult) -> FitResult:
        def weights(value: Any) -> Any:
            return np.ldexp(np.asarray(value, dtype=np.float64), -self.weight_exp)

        inertia, sizes = result.inertia, result.cluster_weights
        return attrs.evolve(
            result,
            centers=self.length(result.centers),
            inertia=Deferred(lambda: float(self.cost(inertia.get())))
            if isinstance(inertia, Deferred)
            else float(self.cost(inertia)),
            cluster_weights=Deferred(lambda: weights(sizes.get())) if isinstance(sizes, Deferred) else weights(sizes),
            history=tuple(self.record(r) for r in result.history),
            restarts=tuple(float(self.cost(v)) for v in result.restarts),
        )


@attrs.frozen(eq=False)
class _UnscaledCallback:
    callback: Any
    scaling: FitScaling

    def __call__(self, record: IterationRecord) -> None:
        self.callback(self.scaling.record(record))


def scales_input(X: Any, spec: FitSpec, backend: Any) -> bool:
    """Whether :func:`scale_fit_input` reads (and may rescale) ``X``: an array-like for an ``array_input`` backend."""
    from kmeans.protocols import optional

    return (
        cost_power(spec.distance) is not None
        and bool(optional(backend, "array_input"))
        and isinstance(X, (np.ndarray, list, tuple))
    )


def fit_dataset(
    X: Any, sample_weight: Any, spec: FitSpec, backend: Any, make: Callable[[Any, Any], Any]
) -> tuple[Any, FitSpec, FitScaling | None]:
    """``(dataset, spec, scaling)`` a fit runs on: ``make(X, sample_weight)``, exactly rescaled if needed.

    Array-like input for an ``array_input`` backend is rescaled before ``make`` builds the
    dataset (:func:`scale_fit_input`); other input (engine-native, a ``Dataset``) through the
    dataset it becomes (:func:`scale_dataset`); sparse rows are fitted as given.
    """
    from kmeans.sparse import is_scipy_sparse

    if scales_input(X, spec, backend):
        X, sample_weight, spec, scaling = _scale_arrays(X, sample_weight, spec)
        return make(X, sample_weight), spec, scaling
    dataset = make(X, sample_weight)
    if is_scipy_sparse(X):
        return dataset, spec, None
    return scale_dataset(dataset, spec)


def scale_fit_input(
    X: Any, sample_weight: Any, spec: FitSpec, backend: Any
) -> tuple[Any, Any, FitSpec, FitScaling | None]:
    """``(X, sample_weight, spec, scaling)`` for a fit: scaled copies when in-memory input needs them.

    ``scaling`` is ``None`` (and the inputs are returned as given) for data and weights in
    the safe range, a distance without a ``cost_power``, a backend that declares
    ``array_input = False``, or input that is not an ndarray, list or tuple (engine-native
    input is scaled by :func:`scale_dataset`).
    """
    if not scales_input(X, spec, backend):
        return X, sample_weight, spec, None
    return _scale_arrays(X, sample_weight, spec)


def _scale_arrays(X: Any, sample_weight: Any, spec: FitSpec) -> tuple[Any, Any, FitSpec, FitScaling | None]:
    """:func:`scale_fit_input` for input :func:`scales_input` accepts."""
    from kmeans._validation import check_points, check_weights

    power = cost_power(spec.distance)
    assert power is not None
    arr = check_points(X)
    w = check_weights(sample_weight, arr.shape[0])
    biggest = max_abs(arr)
    data_exp = data_exponent(arr, squares(spec.distance), largest=biggest)
    data_max = math.ldexp(biggest, data_exp) if arr.dtype.kind == "f" else float(biggest)
    weight_exp = weight_exponent(w, data_max)
    if data_exp == 0 and weight_exp == 0:
        return X, sample_weight, spec, None
    scaling = FitScaling(data_exp, weight_exp, power)
    if data_exp:
        arr = np.ldexp(arr, data_exp)  # a new array: the input is never overwritten
    if weight_exp:
        assert w is not None
        w = np.ldexp(w, weight_exp)
    return arr, w if w is not None else sample_weight, scaling.spec(spec), scaling


def scale_dataset(dataset: Any, spec: FitSpec) -> tuple[Any, FitSpec, FitScaling | None]:
    """``(dataset, spec, scaling)`` for engine-native data (an RDD, a DataFrame, a :class:`Dataset`).

    Reads the dataset's optional ``value_range``; data or weights at an extreme scale run on
    its ``scaled`` copy. A dataset that reports its range but cannot be scaled is refused
    with a :class:`~kmeans.errors.ValidationError`; one that reports no range is fitted as given.
    """
    from kmeans.errors import ValidationError
    from kmeans.protocols import optional

    power = cost_power(spec.distance)
    value_range = optional(dataset, "value_range")
    if power is None or value_range is None:
        return dataset, spec, None
    max_abs, max_w = (float(v) for v in value_range())
    dtype = np.dtype(dataset.dtype)
    data_exp = range_exponent(max_abs, dtype, dataset.n_features) if squares(spec.distance) else 0
    data_max = math.ldexp(max_abs, data_exp)
    weight_exp = max_weight_exponent(max_w, dataset.n_rows, data_max)
    if data_exp == 0 and weight_exp == 0:
        return dataset, spec, None
    scaled = optional(dataset, "scaled")
    if scaled is None:
        raise ValidationError(
            f"the data reach magnitude {max_abs:g} and weights {max_w:g}, where the costs of "
            f"distance={getattr(spec.distance, 'name', '?')!r} overflow or underflow, and this dataset "
            f"({type(dataset).__name__}) cannot be rescaled; rescale the data, or fit an ndarray"
        )
    scaling = FitScaling(data_exp, weight_exp, power)
    return scaled(data_exp, weight_exp), scaling.spec(spec), scaling


@attrs.frozen(eq=False)
class RangeSafeAssign:
    """An assign step that rescales each block's rows (and the centers) into the safe range first.

    What :meth:`KMeans.predict` hands an engine for engine-native rows: labels are exact at any
    finite scale, and costs come back in input units.
    """

    inner: Any
    distance: Any

    @property
    def name(self) -> str:
        return str(getattr(self.inner, "name", "assign"))

    def assign(self, points: Any, centers: Any) -> tuple[Any, Any]:
        pts, c, e = scale_for_centers(points, centers, self.distance)
        labels, costs = self.inner.assign(pts, c)
        return labels, unscale_cost(costs, e, self.distance)


def scale_for_centers(points: NDArray[Any], centers: NDArray[Any], distance: Any) -> tuple[Any, Any, int]:
    """``(points, centers, e)``, both scaled by ``2**e`` when their joint range needs it (predict, transform, score)."""
    from kmeans.sparse import is_sparse

    if is_sparse(points):  # sparse rows are fitted as given (never rescaled)
        return points, centers, 0
    c = np.asarray(centers, dtype=np.float64)
    free = cost_power(distance) == 0  # directions: only the rows are rescaled
    # the range of the points' dtype: float32 points take the GEMM product in float32
    e = data_exponent(points, squares(distance), extra=0.0 if free else max_abs(c))
    if e == 0:
        return points, centers, 0
    return np.ldexp(points.astype(np.float64, copy=False), e), c if free else np.ldexp(c, e), e


def unscale_distance(value: Any, e: int, distance: Any) -> Any:
    """A distance (``transform``) computed on data scaled by ``2**e``, in input units."""
    return value if e == 0 or cost_power(distance) == 0 else np.ldexp(value, -e)


def unscale_cost(value: Any, e: int, distance: Any) -> Any:
    """A cost computed on data scaled by ``2**e`` (see :func:`scale_for_centers`), in input units."""
    power = cost_power(distance) or 0
    if e == 0 or power == 0:
        return value
    with np.errstate(over="ignore", under="ignore"):  # inf or 0 only when the true value is out of range
        return np.ldexp(value, -power * e)
