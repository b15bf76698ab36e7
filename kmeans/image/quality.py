"""pngquant's 0-100 quality scale, measured as libimagequant measures a palette's error.

libimagequant (pngquant's engine) judges a palette by a perceptual mean squared error:
each 8-bit channel ``v`` becomes ``(v / 255)^(0.5499 / 0.45455)`` (its internal gamma
over sRGB's), weighted ``(0.5, 1, 0.45)`` for R, G, B and premultiplied by the opacity
``a = A / 255``, with alpha itself a fourth channel ``0.625 a``; the error is the mean
over pixels of the squared distance between a pixel and its palette entry. A quality
``q`` allows an error up to

``e(q) = 0.45 (f(q) + 2.5 (100.1 - q) / (100 (210 + q)^1.2))``,
``f(q) = max(0, 0.016 / (q + 0.001) - 0.001)`` (a curve fitted to resemble libjpeg's),

``e(0) = inf``, ``e(100) = 0``, and an error's quality is the largest ``q`` it meets.
On the raccoon without dithering this gives libimagequant's own verdicts within one
point (its palettes of 256, 64, 16 colors: 80, 55, 9 by libimagequant, 79, 55, 8 here;
libimagequant treats semi-transparent pixels a little differently). The error is the
palette's, without dithering (as in libimagequant).

``quality=(min, max)`` chooses the smallest ``k`` (up to the given number of colors)
whose error meets ``e(max)``; if even the most colors miss ``e(min)``,
:class:`QualityTooLowError` is raised (the command line exits with 99, as pngquant).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans.errors import ValidationError


class QualityTooLowError(ValidationError):
    """The palette with the most colors allowed misses the minimum quality.

    ``quality`` is what it reached, ``minimum`` what was asked, ``n_colors`` its size.
    """

    def __init__(self, message: str, *, quality: int, minimum: int, n_colors: int) -> None:
        super().__init__(message)
        self.quality, self.minimum, self.n_colors = quality, minimum, n_colors


#: libimagequant's channel weights (R, G, B), alpha's, its gamma exponent and error scale.
_WEIGHTS = np.array([0.5, 1.0, 0.45])
_ALPHA_WEIGHT = 0.625
_GAMMA = 0.5499 / 0.45455
_ERROR_SCALE = 0.45


def quality_to_error(quality: int) -> float:
    """The perceptual error (module docstring) that ``quality`` (0-100) allows."""
    if quality <= 0:
        return math.inf
    if quality >= 100:
        return 0.0
    q = float(quality)
    low = max(0.0, 0.016 / (0.001 + q) - 0.001)
    return _ERROR_SCALE * (low + 2.5 / math.pow(210.0 + q, 1.2) * (100.1 - q) / 100.0)


def error_to_quality(error: float) -> int:
    """The largest quality (0-100) whose :func:`quality_to_error` ``error`` meets."""
    for q in range(100, 0, -1):
        if error <= quality_to_error(q) + 1e-12:
            return q
    return 0


def perceptual(colors: NDArray[np.uint8]) -> NDArray[np.float64]:
    """``(m, 3|4)`` RGB or RGBA colors in libimagequant's weighted space, ``(m, 3|4)``."""
    x: NDArray[np.float64] = (colors[:, :3].astype(np.float64) / 255.0) ** _GAMMA * _WEIGHTS
    if colors.shape[1] == 3:
        return x
    a = colors[:, 3:4].astype(np.float64) / 255.0
    return np.concatenate([x * a, _ALPHA_WEIGHT * a], axis=1)


def palette_error(colors: NDArray[np.uint8], counts: NDArray[Any], mapped: NDArray[np.uint8]) -> float:
    """The perceptual error of showing each of ``colors`` (``counts`` pixels each) as ``mapped``."""
    diff = perceptual(colors) - perceptual(mapped)
    total = float(np.sum(counts))
    return float(np.dot(counts, np.einsum("ij,ij->i", diff, diff))) / total if total else 0.0


def check_quality(quality: Any) -> tuple[int, int] | None:
    """``None`` or a ``(min, max)`` pair of integers with ``0 <= min <= max <= 100``."""
    if quality is None:
        return None
    ok = isinstance(quality, (tuple, list)) and len(quality) == 2
    ok = ok and all(isinstance(q, numbers.Integral) and not isinstance(q, bool) for q in quality)
    if not ok or not 0 <= quality[0] <= quality[1] <= 100:
        raise ValidationError(
            f"quality must be a pair (min, max) of integers with 0 <= min <= max <= 100, got {quality!r}"
        )
    return int(quality[0]), int(quality[1])


_SPEC = re.compile(r"^(\d*)(-?)(\d*)$")


def parse_quality(text: str) -> tuple[int, int]:
    """pngquant's ``--quality`` forms: ``MIN-MAX``, ``MAX`` (min = 9/10 of it), ``-MAX`` (min 0), ``MIN-`` (max 100)."""
    m = _SPEC.match(text.strip())
    if m is None or not (m.group(1) or m.group(3)):
        raise ValidationError(f"--quality takes MIN-MAX, MAX, -MAX or MIN- with numbers 0 to 100, got {text!r}")
    low, dash, high = m.groups()
    pair = (int(low) * 9 // 10, int(low)) if not dash else (int(low) if low else 0, int(high) if high else 100)
    check_quality(pair)
    return pair
