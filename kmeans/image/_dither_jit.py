"""The compiled error-diffusion kernel: :func:`kmeans.image.dither._floyd_steinberg` through Numba.

A module of its own so that a small image, dithered by the same function in the
interpreter, never imports Numba. The compiled copy sees ``numba.literally`` where the
interpreted one calls an identity, so Numba compiles one kernel per number of dimensions
(3, or 4 for RGBA) and per mode (plain or edge-aware) with those numbers constants.
"""

from __future__ import annotations

import types
from typing import Any

from numba import njit
from numba.misc.special import literally

from kmeans._kernels._common import _JIT
from kmeans.image import dither

_source = dither._floyd_steinberg
_compiled_globals = {**_source.__globals__, "literally": literally}
floyd_steinberg_kernel: Any = njit(**_JIT)(
    types.FunctionType(_source.__code__, _compiled_globals, _source.__name__, _source.__defaults__)
)
