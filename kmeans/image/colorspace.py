"""Color spaces for clustering: ``rgb`` (8-bit sRGB levels), ``oklab`` and ``lab`` (CIE L*a*b*, D65).

Every conversion takes and returns ``(n, 3)`` float64 arrays; RGB values are sRGB levels
in ``[0, 255]``. Going back, :func:`to_rgb8` clips to the sRGB gamut (per channel, in
linear light, which is the same as clipping the encoded values) and rounds to uint8.

- ``rgb``: the identity; squared distances are in 8-bit levels², as in the paper.
- ``lab``: sRGB → linear → XYZ (IEC 61966-2-1 matrix) → CIE L*a*b* with the D65 white
  taken as the image of sRGB white, so white is exactly ``(100, 0, 0)``. L* is in
  ``[0, 100]``; Euclidean distance is CIE76 ΔE.
- ``oklab``: Björn Ottosson's Oklab (2020): linear sRGB → LMS → cube root → Lab; L is in
  ``[0, 1]``. Inverses are computed from the forward matrices, so round trips are exact
  to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from kmeans import ValidationError

Float64Array = NDArray[np.float64]

#: Names accepted by ``color_space=``.
COLOR_SPACES: Final = ("rgb", "oklab", "lab")

#: A default convergence tolerance per space: about a tenth of an 8-bit level, in that space's units.
DEFAULT_TOL: Final = {"rgb": 0.1, "lab": 0.05, "oklab": 0.0005}

_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ)
_WHITE = _SRGB_TO_XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0

_OK_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_OK_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_OK_M1_INV = np.linalg.inv(_OK_M1)
_OK_M2_INV = np.linalg.inv(_OK_M2)


def check_color_space(name: Any) -> str:
    if name not in COLOR_SPACES:
        raise ValidationError(f"unknown color space {name!r}; choose one of {', '.join(COLOR_SPACES)}")
    return str(name)


def srgb_to_linear(rgb: Float64Array) -> Float64Array:
    """sRGB levels ``[0, 255]`` → linear light ``[0, 1]`` (the sRGB transfer function)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: Float64Array) -> Float64Array:
    """Linear light → sRGB levels (not clipped; negative inputs keep their sign)."""
    a = np.abs(lin)
    enc = np.where(a <= 0.0031308, 12.92 * a, 1.055 * a ** (1.0 / 2.4) - 0.055)
    return np.asarray(np.sign(lin) * enc * 255.0, dtype=np.float64)


def _lab_f(t: Float64Array) -> Float64Array:
    return np.where(t > _DELTA**3, np.cbrt(t), t / (3.0 * _DELTA**2) + 4.0 / 29.0)


def _lab_f_inv(t: Float64Array) -> Float64Array:
    return np.where(t > _DELTA, t**3, 3.0 * _DELTA**2 * (t - 4.0 / 29.0))


def rgb_to_lab(rgb: Float64Array) -> Float64Array:
    xyz = srgb_to_linear(rgb) @ _SRGB_TO_XYZ.T / _WHITE
    f = _lab_f(xyz)
    return np.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], axis=1)


def lab_to_rgb(lab: Float64Array) -> Float64Array:
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[:, 0] + 16.0) / 116.0
    f = np.stack([fy + lab[:, 1] / 500.0, fy, fy - lab[:, 2] / 200.0], axis=1)
    return linear_to_srgb((_lab_f_inv(f) * _WHITE) @ _XYZ_TO_SRGB.T)


def rgb_to_oklab(rgb: Float64Array) -> Float64Array:
    lms = srgb_to_linear(rgb) @ _OK_M1.T
    return np.asarray(np.cbrt(lms) @ _OK_M2.T, dtype=np.float64)


def oklab_to_rgb(lab: Float64Array) -> Float64Array:
    lms = (np.asarray(lab, dtype=np.float64) @ _OK_M2_INV.T) ** 3
    return linear_to_srgb(lms @ _OK_M1_INV.T)


def _identity(x: Float64Array) -> Float64Array:
    return np.asarray(x, dtype=np.float64)


_FORWARD: Final[dict[str, Callable[[Float64Array], Float64Array]]] = {
    "rgb": _identity,
    "lab": rgb_to_lab,
    "oklab": rgb_to_oklab,
}
_BACKWARD: Final[dict[str, Callable[[Float64Array], Float64Array]]] = {
    "rgb": _identity,
    "lab": lab_to_rgb,
    "oklab": oklab_to_rgb,
}


def to_space(rgb: Any, space: str) -> Float64Array:
    """``(n, 3)`` sRGB levels → coordinates in ``space`` (float64)."""
    return _FORWARD[check_color_space(space)](np.asarray(rgb, dtype=np.float64))


def from_space(x: Any, space: str) -> Float64Array:
    """Coordinates in ``space`` → sRGB levels (float64, not clipped)."""
    return _BACKWARD[check_color_space(space)](np.asarray(x, dtype=np.float64))


def to_rgb8(x: Any, space: str) -> NDArray[np.uint8]:
    """Coordinates in ``space`` → uint8 sRGB, clipped to the gamut and rounded to the nearest level."""
    rgb = from_space(x, space)
    return np.asarray(np.clip(np.rint(rgb), 0, 255), dtype=np.uint8)


#: The alpha coordinate's range in each space: full opacity weighs like the full lightness range.
ALPHA_SCALE: Final = {"rgb": 255.0, "lab": 100.0, "oklab": 1.0}


def to_features(colors: Any, space: str) -> Float64Array:
    """``(n, 3)`` RGB → ``(n, 3)`` coordinates in ``space``; ``(n, 4)`` RGBA → ``(n, 4)``
    premultiplied coordinates and alpha: ``(c · α, α · ALPHA_SCALE[space])`` with ``α = A / 255``.

    Premultiplying makes every fully transparent pixel the same point, the origin, and
    makes colors matter in proportion to their opacity.
    """
    colors = np.asarray(colors)
    x = to_space(colors[:, :3], space)
    if colors.shape[1] == 3:
        return x
    alpha = colors[:, 3].astype(np.float64) / 255.0
    return np.concatenate([x * alpha[:, None], (alpha * ALPHA_SCALE[space])[:, None]], axis=1)


def from_features(x: Any, space: str) -> NDArray[np.uint8]:
    """The inverse of :func:`to_features`, rounded to uint8 RGB or RGBA (an entry whose
    alpha rounds to 0 is ``(0, 0, 0, 0)``)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] == 3:
        return to_rgb8(x, space)
    alpha = np.clip(x[:, 3] / ALPHA_SCALE[check_color_space(space)], 0.0, 1.0)
    a8 = np.rint(alpha * 255.0).astype(np.uint8)
    rgb = to_rgb8(x[:, :3] / np.where(alpha > 0, alpha, 1.0)[:, None], space)
    rgb[a8 == 0] = 0
    return np.concatenate([rgb, a8[:, None]], axis=1)
