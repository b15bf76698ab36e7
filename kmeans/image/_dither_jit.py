"""The compiled Floyd-Steinberg kernel: :func:`kmeans.image.dither._floyd_steinberg` through Numba.

A module of its own so that a small image, dithered by the same function in the
interpreter, never imports Numba.
"""

from __future__ import annotations

from typing import Any

from numba import njit

from kmeans._kernels._common import _JIT
from kmeans.image.dither import _floyd_steinberg

floyd_steinberg_kernel: Any = njit(**_JIT)(_floyd_steinberg)
