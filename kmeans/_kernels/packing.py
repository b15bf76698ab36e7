"""Row packing for ``compress``: integer rows as one int64 key, distinct keys through a presence bitmap."""

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
def _popcount(x: Any) -> Any:  # pragma: no cover - compiled
    # Set bits of a uint64 (SWAR: pairs, nibbles, then a multiply sums the bytes).
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _mark(keys: Any, bits: Any) -> None:  # pragma: no cover - compiled
    one = np.uint64(1)
    for i in range(keys.shape[0]):
        key = keys[i]
        bits[key >> 6] |= one << np.uint64(key & 63)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _ranks(bits: Any, ranks: Any, uniq: Any) -> int:  # pragma: no cover - compiled
    # ranks[w] = set bits before word w; uniq gets the set positions in ascending order.
    one = np.uint64(1)
    m = 0
    for w in range(bits.shape[0]):
        ranks[w] = m
        word = bits[w]
        while word != 0:
            low = word & (~word + one)
            uniq[m] = w * 64 + np.int64(_popcount(low - one))
            m += 1
            word ^= low
    return m


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _lookup(keys: Any, bits: Any, ranks: Any, out: Any) -> None:  # pragma: no cover - compiled
    one = np.uint64(1)
    for i in range(keys.shape[0]):
        key = keys[i]
        w = key >> 6
        below = bits[w] & ((one << np.uint64(key & 63)) - one)
        out[i] = ranks[w] + np.int64(_popcount(below))


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
    """``(sorted distinct keys, inverse)`` for keys in ``[0, size)``, without sorting anything.

    A presence bitmap of ``size`` bits (2 MiB for 24-bit RGB keys) marks every key; its
    words' running bit counts give each distinct key its rank, so the distinct keys come
    out ascending and a row's rank is ``ranks[key // 64]`` plus the set bits below it.
    """
    words = (size + 63) // 64
    bits = np.zeros(words, dtype=np.uint64)
    _mark(keys, bits)
    ranks = np.empty(words, dtype=np.int64)
    uniq = np.empty(min(keys.shape[0], size), dtype=np.int64)
    m = _ranks(bits, ranks, uniq)
    inverse = np.empty(keys.shape[0], dtype=np.intp)
    _lookup(keys, bits, ranks, inverse)
    return uniq[:m].copy(), inverse
