"""Counter-based randomness: every random number is a pure function of ``(seed, stream, row)``.

This is what makes seeded fits independent of the engine and of partitioning: a row
draws the same number whether it lives in a NumPy block or in a Spark partition,
because the number depends only on the seed and the row's global index.
The mixer is SplitMix64 (Steele, Lea & Flood 2014), written once as a compiled function
that both the seed derivation and the per-row kernels call.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from kmeans._kernels._common import _JIT

_MASK64 = (1 << 64) - 1


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _mix(z: Any) -> Any:  # pragma: no cover - compiled
    # SplitMix64's finalizer (uint64 arithmetic wraps modulo 2**64).
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _mix_one(z: Any) -> Any:  # pragma: no cover - compiled
    return _mix(z)


@njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _splitmix_uniform(seed: Any, row: Any) -> float:  # pragma: no cover - compiled
    z = _mix(seed + np.uint64(row) * np.uint64(0x9E3779B97F4A7C15))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _uniform(seed: Any, rows: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(rows.shape[0]):
        out[i] = _splitmix_uniform(seed, rows[i])


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _exponential_keys(seed: Any, rows: Any, weights: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(rows.shape[0]):
        w = weights[i]
        if w > 0.0:
            out[i] = -np.log(_splitmix_uniform(seed, rows[i])) / w
        else:
            out[i] = np.inf


def _mix_int(value: int) -> int:
    return int(_mix_one(np.uint64(value & _MASK64)))


def derive_seed(seed: int, *path: int) -> int:
    """A 64-bit seed for a sub-stream, e.g. ``derive_seed(seed, restart, step)``."""
    state = _mix_int(seed)
    for part in path:
        state = _mix_int(state ^ _mix_int((part + 0x632BE59BD9B4E019) & _MASK64))
    return state


def fresh_seed() -> int:
    """A seed from the operating system's entropy, for ``seed=None``."""
    return secrets.randbits(63)


def uniform(seed: int, rows: NDArray[np.int64]) -> NDArray[np.float64]:
    """One uniform draw in the open interval (0, 1) per global row index.

    ``uniform(seed, rows)[i]`` depends only on ``seed`` and ``rows[i]``: SplitMix64 of
    ``seed + row * 0x9E3779B97F4A7C15``, its top 53 bits, plus one half, times ``2**-53``.
    """
    out = np.empty(rows.shape[0], dtype=np.float64)
    _uniform(np.uint64(seed & _MASK64), np.ascontiguousarray(rows, dtype=np.int64), out)
    return out


def exponential_keys(seed: int, rows: NDArray[np.int64], weights: NDArray[np.floating]) -> NDArray[np.float64]:
    """Keys ``-log(u) / w`` for weighted sampling without replacement.

    Taking the ``m`` rows with the smallest keys draws ``m`` rows without replacement
    with probability proportional to ``weights`` (Efraimidis & Spirakis 2006). Rows of
    weight 0 get key ``+inf`` and are never drawn before a row of positive weight.
    One compiled pass, the same function on every engine.
    """
    out = np.empty(rows.shape[0], dtype=np.float64)
    w = np.ascontiguousarray(np.broadcast_to(weights, rows.shape), dtype=np.float64)
    _exponential_keys(np.uint64(seed & _MASK64), np.ascontiguousarray(rows, dtype=np.int64), w, out)
    return out
