"""Color quantization with K-means, the library's first application.

>>> from kmeans.image import quantize
>>> from kmeans.data import raccoon_path
>>> result = quantize(raccoon_path(), n_clusters=4, seed=0)
>>> result.palette.shape, result.image.shape
((4, 3), (768, 1024, 3))

Built on the public :mod:`kmeans` API only; reading and writing images needs Pillow
(``pip install 'kmeans[image]'``).
"""

from __future__ import annotations

from kmeans.image.colorspace import COLOR_SPACES, from_space, to_rgb8, to_space
from kmeans.image.io import ImageFileError, LossyOutputWarning, load_image, save_image
from kmeans.image.quality import QualityTooLowError
from kmeans.image.quantize import ColorFold, QuantizeResult, fold_colors, quantize, quantize_shared

__all__ = [
    "COLOR_SPACES",
    "ColorFold",
    "ImageFileError",
    "LossyOutputWarning",
    "QualityTooLowError",
    "QuantizeResult",
    "fold_colors",
    "from_space",
    "load_image",
    "quantize",
    "quantize_shared",
    "save_image",
    "to_rgb8",
    "to_space",
]
