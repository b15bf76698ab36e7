"""Row packing for ``compress``: integer rows as one int64 key, distinct keys through a direct-address table."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._kernels._common import _JIT
from kmeans._types import IntArray


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _column_ranges(x: Any, lo: Any, hi: Any) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    for j in range(d):
        lo[j] = np.int64(x[0, j])
        hi[j] = np.int64(x[0, j])
    for i in range(1, n):
        for j in range(d):
            v = np.int64(x[i, j])
            lo[j] = min(lo[j], v)
            hi[j] = max(hi[j], v)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _pack_rows(x: Any, lo: Any, strides: Any, keys: Any) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    for i in range(n):
        key = np.int64(0)
        for j in range(d):
            key += (np.int64(x[i, j]) - lo[j]) * strides[j]
        keys[i] = key


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _first_seen(keys: Any, table: Any, uniq: Any) -> int:  # pragma: no cover - compiled
    # table[key] = 1 + (order of first appearance); uniq collects each new key once.
    m = 0
    for i in range(keys.shape[0]):
        key = keys[i]
        if table[key] == 0:
            uniq[m] = key
            m += 1
            table[key] = m
    return m


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _lookup(keys: Any, table: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(keys.shape[0]):
        out[i] = table[keys[i]] - 1


def small_int_ranges(x: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per-column ``(min, max)`` of an integer array of at most 32-bit values, in one pass."""
    d = x.shape[1]
    lo = np.zeros(d, dtype=np.int64)
    hi = np.zeros(d, dtype=np.int64)
    if x.shape[0]:
        _column_ranges(x, lo, hi)
    return lo, hi


def pack_rows(x: NDArray[Any], lo: NDArray[np.int64], strides: NDArray[np.int64]) -> NDArray[np.int64]:
    """``keys_i = sum_j (x_ij - lo_j) * strides_j`` (int64; the caller checks the range fits)."""
    keys = np.empty(x.shape[0], dtype=np.int64)
    _pack_rows(x, lo, strides, keys)
    return keys


def unique_small_keys(keys: NDArray[np.int64], size: int) -> tuple[NDArray[np.int64], IntArray]:
    """``(sorted distinct keys, inverse)`` for keys in ``[0, size)``, without sorting the rows.

    A direct-address table of ``size`` int32 (allocated zeroed by the OS, so only the pages
    that keys touch cost anything) finds the distinct keys in one pass; only those are
    sorted, then a second pass looks every row's rank up.
    """
    table = np.zeros(size, dtype=np.int32)
    uniq = np.empty(min(keys.shape[0], size), dtype=np.int64)
    m = _first_seen(keys, table, uniq)
    uniq = np.sort(uniq[:m])
    table[uniq] = np.arange(1, m + 1, dtype=np.int32)
    inverse = np.empty(keys.shape[0], dtype=np.intp)
    _lookup(keys, table, inverse)
    return uniq, inverse
