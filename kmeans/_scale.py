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
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans._types import Deferred, FitResult, FitSpec, IterationRecord

#: Weighted sums stay below ``2**(2 * _SAFE_EXP)``; a maximum weight below
#: ``2**-_SAFE_EXP`` is scaled up (products with it would lose bits as subnormals).
_SAFE_EXP = 500


def cost_power(distance: Any) -> int | None:
    """How a cost scales with the data: 2 for the built-in L2, 1 for L1, ``None`` otherwise."""
    from kmeans.distance.l1 import Manhattan, WeightedMedian
    from kmeans.distance.l2 import SquaredEuclidean, WeightedMean

    assign, update = getattr(distance, "assign", None), getattr(distance, "update", None)
    if type(assign) is SquaredEuclidean and type(update) is WeightedMean:
        return 2
    if type(assign) is Manhattan and type(update) is WeightedMedian:
        return 1
    return None


def _max_abs(arr: NDArray[Any]) -> float:
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


def data_exponent(arr: NDArray[Any], power: int | None, *, extra: float = 0.0) -> int:
    """The data scale ``e`` (``0``: none needed) for float ``arr`` (and ``extra``, e.g. centers).

    Only L2 (``power == 2``) needs one: its squares leave the float range; L1 costs are
    exact at every scale.
    """
    if power != 2 or arr.dtype.kind != "f":
        return 0
    m = max(_max_abs(arr), extra)
    if m == 0.0:
        return 0
    lo, hi = safe_range(arr.dtype, arr.shape[1] if arr.ndim == 2 else 1)
    return _shift_into(m, round(math.log2(lo)), round(math.log2(hi)))


def weight_exponent(weights: NDArray[Any] | None, data_max: float) -> int:
    """The weight scale ``e`` (``0``: none needed): the total weight and every ``sum w x`` stay finite.

    Needed when ``n * max(w) * max(|x|, 1)`` may exceed ``2**1000``, or when the largest
    weight is below ``2**-500`` (its products would lose bits as subnormals).
    """
    if weights is None or weights.size == 0:
        return 0
    wmax = float(np.max(weights))
    if wmax == 0.0:
        return 0
    headroom = math.ceil(math.log2(weights.shape[0]) + math.log2(max(data_max, 1.0)))
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
        """A center or a center shift back in the units of the input."""
        return np.ldexp(value, -self.data_exp)

    def record(self, r: IterationRecord) -> IterationRecord:
        return attrs.evolve(r, inertia=float(self.cost(r.inertia)), center_shift=float(self.length(r.center_shift)))

    def spec(self, spec: FitSpec) -> FitSpec:
        """``spec`` for the scaled data: ``tol`` and explicit centers scaled, callbacks shown input units."""
        from kmeans.init.explicit import ExplicitCenters

        initializer = spec.initializer
        if isinstance(initializer, ExplicitCenters) and self.data_exp:
            initializer = ExplicitCenters(np.ldexp(initializer.centers, self.data_exp))
        callbacks = tuple(_UnscaledCallback(cb, self) for cb in spec.callbacks)
        return attrs.evolve(
            spec, initializer=initializer, tol=float(np.ldexp(spec.tol, self.data_exp)), callbacks=callbacks
        )

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


#: Backends whose in-memory input is an ``(n, d)`` array-like (a custom backend may read lists otherwise).
_ARRAY_BACKENDS = ("kmeans.backends.numpy", "kmeans.backends.spark_rdd", "kmeans.backends.spark_ml")


def scale_fit_input(
    X: Any, sample_weight: Any, spec: FitSpec, backend: Any
) -> tuple[Any, Any, FitSpec, FitScaling | None]:
    """``(X, sample_weight, spec, scaling)`` for a fit: scaled copies when in-memory input needs them.

    ``scaling`` is ``None`` (and the inputs are returned as given) for data and weights in
    the safe range, a custom metric or backend, or engine-native input (RDDs, DataFrames).
    """
    from kmeans._validation import check_points, check_weights

    power = cost_power(spec.distance)
    if power is None or type(backend).__module__ not in _ARRAY_BACKENDS or not isinstance(X, (np.ndarray, list, tuple)):
        return X, sample_weight, spec, None
    arr = check_points(X)
    w = check_weights(sample_weight, arr.shape[0])
    data_exp = data_exponent(arr, power)
    data_max = math.ldexp(_max_abs(arr), data_exp) if arr.dtype.kind == "f" else float(_max_abs(arr))
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


def scale_for_centers(points: NDArray[Any], centers: NDArray[Any], distance: Any) -> tuple[Any, Any, int]:
    """``(points, centers, e)``, both scaled by ``2**e`` when their joint range needs it (predict, transform, score)."""
    from kmeans.sparse import is_sparse

    if is_sparse(points):  # sparse rows are fitted as given (never rescaled)
        return points, centers, 0
    c = np.asarray(centers, dtype=np.float64)
    # the range of the points' dtype: float32 points take the GEMM product in float32
    e = data_exponent(points, cost_power(distance), extra=_max_abs(c))
    if e == 0:
        return points, centers, 0
    return np.ldexp(points.astype(np.float64, copy=False), e), np.ldexp(c, e), e


def unscale_cost(value: Any, e: int, distance: Any) -> Any:
    """A cost computed on data scaled by ``2**e`` (see :func:`scale_for_centers`), in input units."""
    if e == 0:
        return value
    with np.errstate(over="ignore", under="ignore"):  # inf or 0 only when the true value is out of range
        return np.ldexp(value, -(cost_power(distance) or 0) * e)
