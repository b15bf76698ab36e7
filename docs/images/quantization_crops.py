"""Make the full-size before/after crops of docs/quantization.md (``python docs/images/quantization_crops.py``).

One 192x144 crop of the raccoon at full resolution (no resampling, so every pixel is a
pixel of the quantized 1024x768 image): the original, ours at k=16 without and with
Floyd-Steinberg dithering, libimagequant at k=16 (its default dithering and none, through
the ``imagequant`` package of the ``bench`` extra) and Pillow's median cut. Each crop is
written as a palette PNG of exactly the colors it uses (the original as truecolor).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from kmeans.data import raccoon_path
from kmeans.image import load_image, quantize

OUT = Path(__file__).resolve().parent
BOX = (560, 360, 752, 504)  # left, top, right, bottom: the nose, whiskers, a paw and leaves
K = 16


def _crop(image: np.ndarray) -> Image.Image:
    left, top, right, bottom = BOX
    return Image.fromarray(np.ascontiguousarray(image[top:bottom, left:right]))


def _save(name: str, image: np.ndarray, *, palette: bool = True) -> None:
    crop = _crop(image)
    if palette:  # exactly the crop's colors, at most K: lossless as a palette
        crop = crop.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    crop.save(OUT / f"quant-crop-{name}.png", optimize=True)


def main() -> int:
    original = load_image(raccoon_path())
    _save("original", original, palette=False)
    _save("ours", quantize(original, K, seed=0).image)
    _save("ours-dither", quantize(original, K, seed=0, dither="floyd-steinberg").image)
    rgb = Image.fromarray(original)
    median_cut = rgb.quantize(K, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    _save("mediancut", np.asarray(median_cut.convert("RGB")))
    try:
        import imagequant
    except ImportError:
        print("imagequant not installed (pip install 'kmeans[bench]'): libimagequant crops skipped", file=sys.stderr)
        return 0
    rgba = rgb.convert("RGBA")
    for name, level in (("liq", 0.0), ("liq-dither", 1.0)):
        out = imagequant.quantize_pil_image(rgba, dithering_level=level, max_colors=K)
        _save(name, np.asarray(out.convert("RGB")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
