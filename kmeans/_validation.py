"""Input checks that run before any expensive pass, with errors that name the fix."""

from __future__ import annotations

import numbers
import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans._types import Float64Array
from kmeans.errors import ValidationError


def check_points(X: Any, *, name: str = "X") -> NDArray[Any]:
    """``X`` as a 2-D numeric array ``(n_rows, n_features)``, in its own dtype.

    An ``(h, w, c)`` image array is flattened to ``(h * w, c)`` pixels. Raises
    :class:`ValidationError` for empty, 1-D, 4-D+, non-numeric or non-finite input.
    """
    if type(X).__module__.startswith("scipy.sparse"):
        raise ValidationError(
            f"{name} is a scipy.sparse {type(X).__name__}; sparse input is supported by backend='numpy' only "
            f"(distance='l2' or 'cosine'). Elsewhere densify it with {name}.toarray() if it fits in memory"
        )
    check_not_masked(X, name)
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{name} could not be read as a numeric array ({exc}); rows must all have the same length"
        ) from exc
    if arr.dtype.kind == "O":
        check_missing(arr, name)
    if arr.dtype.kind == "c":
        raise ValidationError(f"{name} holds complex numbers (dtype {arr.dtype}); K-means needs real numbers")
    if arr.dtype.kind not in "biuf":
        raise ValidationError(
            f"{name} has non-numeric dtype {arr.dtype}; K-means needs real numbers "
            f"(convert with np.asarray({name}, dtype=float) if the values are numeric)"
        )
    if arr.ndim == 1 and arr.shape[0] == 0:
        raise ValidationError(f"{name} is empty: it has no rows; K-means needs at least one row")
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0] * arr.shape[1], arr.shape[2])
    elif arr.ndim == 1:
        raise ValidationError(
            f"{name} is 1-D with shape {arr.shape}; K-means needs a 2-D array (n_rows, n_features). "
            f"Reshape your data: {name}.reshape(-1, 1) for a single feature or {name}.reshape(1, -1) for a single row"
        )
    elif arr.ndim != 2:
        raise ValidationError(
            f"{name} has {arr.ndim} dimensions (shape {arr.shape}); expected (n_rows, n_features) "
            "or an (height, width, channels) image"
        )
    if arr.shape[0] == 0:
        raise ValidationError(f"{name} is empty: it has 0 rows (shape {arr.shape}); K-means needs at least one row")
    if arr.shape[1] == 0:
        raise ValidationError(
            f"{name} has 0 features (found 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required); "
            "K-means needs at least one column"
        )
    if arr.dtype.kind == "f":
        check_finite(arr, name=name)
    return arr


def check_not_masked(X: Any, name: str = "X") -> None:
    """Refuse a masked array with masked values: ``np.asarray`` would cluster them as real values."""
    ma = sys.modules.get("numpy.ma")  # not imported: X cannot be masked (np.ma costs 35 ms of start-up)
    if ma is not None and isinstance(X, ma.MaskedArray) and ma.getmaskarray(X).any():
        # refused rather than dropped: which rows to drop (any masked value? all?) is the caller's choice
        rows = np.ma.getmaskarray(X).reshape(X.shape[0], -1).any(axis=1) if X.ndim else np.ones(1, dtype=bool)
        raise ValidationError(
            f"{name} is a masked array with masked values in {int(rows.sum())} rows (first at row "
            f"{int(np.flatnonzero(rows)[0])}); masked values would be clustered as real ones. Drop those rows "
            f"first, e.g. {name}[~{name}.mask.any(axis=1)].data, or fill them"
        )


def check_missing(arr: NDArray[Any], name: str) -> None:
    """Name missing values (``pd.NA``, ``None``) in an object array, e.g. from a nullable pandas column."""
    pd = sys.modules.get("pandas")
    missing = np.asarray(pd.isna(arr) if pd is not None else np.vectorize(lambda v: v is None, otypes=[bool])(arr))
    if arr.ndim == 0 or not missing.any():
        return
    rows = np.flatnonzero(missing.reshape(missing.shape[0], -1).any(axis=1))
    raise ValidationError(
        f"{name} contains missing values (pd.NA or None) in {rows.size} of {arr.shape[0]} rows (first at row "
        f"{int(rows[0])}); remove or impute them before clustering"
    )


def check_finite(arr: NDArray[Any], *, name: str = "X") -> None:
    """Raise if any value is NaN or infinite, saying how many rows are affected."""
    # NaN propagates through min and max, so both are finite exactly when every value is
    # (two vectorized passes, no float64 copy); only otherwise do we pay for the element-wise check.
    if arr.size == 0 or (np.isfinite(arr.max()) and np.isfinite(arr.min())):
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.any(axis=1))
    kinds = []
    if np.isnan(arr[rows]).any():
        kinds.append("NaN")
    if np.isinf(arr[rows]).any():
        kinds.append("infinite")
    raise ValidationError(
        f"{name} contains {' and '.join(kinds)} values in {rows.size} of {arr.shape[0]} rows "
        f"(first at row {int(rows[0])}); remove or impute them before clustering"
    )


def check_weights(sample_weight: Any, n_rows: int) -> Float64Array | None:
    """``sample_weight`` as a float64 ``(n_rows,)`` array, or ``None`` for unit weights."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"sample_weight could not be read as a numeric array ({exc})") from exc
    if w.dtype.kind not in "biuf":
        raise ValidationError(f"sample_weight has non-numeric dtype {w.dtype}")
    w = w.astype(np.float64, copy=False)
    if w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.ndim != 1 or w.shape[0] != n_rows:
        raise ValidationError(f"sample_weight has shape {w.shape} but X has {n_rows} rows; expected shape ({n_rows},)")
    if np.isnan(w).any():
        raise ValidationError(f"sample_weight contains NaN in {int(np.isnan(w).sum())} rows")
    if np.isinf(w).any():
        raise ValidationError(f"sample_weight contains infinite values in {int(np.isinf(w).sum())} rows")
    if (w < 0).any():
        raise ValidationError(
            f"sample_weight contains negative values in {int((w < 0).sum())} rows (first at row "
            f"{int(np.flatnonzero(w < 0)[0])}); weights must be >= 0"
        )
    if not (w > 0).any():
        raise ValidationError("sample_weight is zero for every row; at least one row needs a positive weight")
    return w


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValidationError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_tol(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(float(tol)) or tol < 0:
        raise ValidationError(f"tol must be a finite number >= 0, got {tol!r}")
    return float(tol)


def check_centers(centers: Any, k: int | None, n_features: int, *, name: str = "init") -> Float64Array:
    """An explicit ``(k, n_features)`` array of finite initial centers, as float64."""
    try:
        c = np.asarray(centers, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{name} could not be read as a numeric (k, d) array ({exc})") from exc
    expected = f"({k if k is not None else 'n_clusters'}, {n_features})"
    if c.ndim != 2 or (k is not None and c.shape[0] != k) or c.shape[1] != n_features:
        raise ValidationError(f"{name} has shape {c.shape}; expected {expected} = (n_clusters, n_features)")
    if not np.isfinite(c).all():
        raise ValidationError(f"{name} contains NaN or infinite values")
    return c


def strategy_name(strategy: Any) -> str:
    """How an error names a strategy object: ``'name' (ClassName)``, or the class alone."""
    name = getattr(strategy, "name", None)
    cls = type(strategy).__name__
    return f"{name!r} ({cls})" if isinstance(name, str) and name else cls


def check_initial_centers(centers: Any, k: int, n_features: int, *, strategy: Any) -> Float64Array:
    """What an :class:`~kmeans.protocols.Initializer` returned, as a fresh C-contiguous float64 ``(k, d)`` array.

    Checked before any kernel reads it (a compiled kernel trusts shapes): real numbers,
    exactly ``(k, n_features)``, finite. Errors name the initializer.
    """
    who = f"initializer {strategy_name(strategy)}"
    try:
        raw = np.asarray(centers)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{who} returned centers that are not a numeric (k, d) array ({exc})") from exc
    if raw.dtype.kind not in "iuf":
        raise ValidationError(
            f"{who} returned centers of dtype {raw.dtype}; expected real numbers (a float64 ({k}, {n_features}) array)"
        )
    if raw.shape != (k, n_features):
        raise ValidationError(
            f"{who} returned centers of shape {raw.shape}; expected ({k}, {n_features}) = (n_clusters, n_features)"
        )
    c = np.array(raw, dtype=np.float64, order="C")
    if not np.isfinite(c).all():
        rows = np.flatnonzero(~np.isfinite(c).all(axis=1)).tolist()
        raise ValidationError(f"{who} returned NaN or infinite centers (rows {rows})")
    return c


def check_fitted_centers(centers: Any, n_features: int) -> None:
    """``cluster_centers_`` as predict/transform/score hand it to the kernels: real, finite, ``(k, n_features)``."""
    arr = centers if isinstance(centers, np.ndarray) else np.asarray(centers)
    if arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != n_features:
        raise ValidationError(
            f"cluster_centers_ has dtype {arr.dtype} and shape {arr.shape}; expected a real "
            f"(n_clusters, {n_features}) array (n_features_in_={n_features})"
        )
    if not np.isfinite(arr).all():
        raise ValidationError("cluster_centers_ contains NaN or infinite values")


def check_real_array(value: Any, name: str) -> Any:
    """``value`` unchanged, unless it holds complex numbers (a float conversion would drop their imaginary part)."""
    try:
        kind = np.asarray(value).dtype.kind
    except (ValueError, TypeError):
        return value  # ragged or unreadable: the shape checks that follow say what is wrong
    if kind == "c":
        raise ValidationError(f"{name} holds complex numbers; K-means needs real numbers (pass .real if that is meant)")
    return value


def check_callbacks(callbacks: Any) -> tuple[Any, ...]:
    """``callbacks`` as a tuple of callables; a lone callable or a non-callable item is refused."""
    if callable(callbacks):
        raise ValidationError("callbacks must be a sequence of callables; wrap a single one: callbacks=[fn]")
    try:
        items = tuple(callbacks)
    except TypeError:
        raise ValidationError(f"callbacks must be a sequence of callables, got {callbacks!r}") from None
    for i, cb in enumerate(items):
        if not callable(cb):
            raise ValidationError(f"callbacks[{i}] is {cb!r}, which is not callable; each callback is fn(record)")
    return items
