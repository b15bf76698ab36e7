"""Image quality beside PSNR: SSIM and mean CIEDE2000, computed with scikit-image.

scikit-image is an optional dependency (``pip install 'kmeans[metrics]'``):

- :func:`ssim`: the structural similarity of Wang et al. (2004) as
  ``skimage.metrics.structural_similarity`` computes it (7x7 uniform window, smaller
  for images under 7 pixels on a side; ``data_range=255``), averaged over the channels:
  RGB, or premultiplied RGB and alpha ``(R a, G a, B a, A)`` when either image has
  alpha. 1 means identical.
- :func:`mean_ciede2000`: the CIEDE2000 color difference (Sharma et al. 2005,
  ``skimage.color.deltaE_ciede2000``) between each pixel and its replacement in CIE
  L*a*b* (D65), averaged over the pixels whose original alpha is not 0. About 1 is
  the smallest difference people notice; 0 means identical colors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans import MissingDependencyError, ValidationError

UInt8Array = NDArray[np.uint8]

#: Pixels converted to L*a*b* per chunk (bounds the float64 temporaries to about 100 MB).
CHUNK = 1 << 20


def _skimage() -> Any:
    try:
        import skimage.color
        import skimage.metrics
    except ImportError as exc:
        raise MissingDependencyError(
            f"SSIM and CIEDE2000 need scikit-image ({exc}); install it with: pip install 'kmeans[metrics]'"
        ) from exc
    return skimage


def _premultiplied(image: UInt8Array, channels: int) -> NDArray[np.float64]:
    x = image.astype(np.float64)
    if channels == 4 and x.shape[2] == 3:
        x = np.concatenate([x, np.full((*x.shape[:2], 1), 255.0)], axis=2)
    if channels == 4:
        x[:, :, :3] *= x[:, :, 3:4] / 255.0
    return x


def ssim(original: UInt8Array, image: UInt8Array) -> float:
    """Mean SSIM of ``image`` against ``original`` (both ``(h, w, 3|4)`` uint8)."""
    skimage = _skimage()
    channels = max(original.shape[2], image.shape[2])
    a, b = _premultiplied(original, channels), _premultiplied(image, channels)
    side = min(a.shape[:2])
    win = min(7, side if side % 2 == 1 else side - 1)  # the window must fit in the image
    if win < 3:
        raise ValidationError(f"SSIM needs an image of at least 3x3 pixels; got {a.shape[1]}x{a.shape[0]}")
    return float(skimage.metrics.structural_similarity(a, b, channel_axis=2, data_range=255.0, win_size=win))


def mean_ciede2000(original: UInt8Array, image: UInt8Array) -> float:
    """Mean CIEDE2000 difference between the colors of ``original`` and ``image``."""
    skimage = _skimage()
    a = original.reshape(-1, original.shape[2])
    b = image.reshape(-1, image.shape[2])
    keep = a[:, 3] > 0 if a.shape[1] == 4 else np.ones(a.shape[0], dtype=bool)
    a, b = a[keep, :3], b[keep, :3]
    if a.shape[0] == 0:
        return 0.0
    total = 0.0
    for start in range(0, a.shape[0], CHUNK):
        lab_a = skimage.color.rgb2lab(a[start : start + CHUNK, None, :].astype(np.float64) / 255.0)
        lab_b = skimage.color.rgb2lab(b[start : start + CHUNK, None, :].astype(np.float64) / 255.0)
        total += float(np.sum(skimage.color.deltaE_ciede2000(lab_a, lab_b)))
    return total / a.shape[0]


def quality(original: UInt8Array, image: UInt8Array) -> dict[str, float]:
    """``{"ssim": ..., "ciede2000": ...}`` of ``image`` against ``original``."""
    return {"ssim": ssim(original, image), "ciede2000": mean_ciede2000(original, image)}
