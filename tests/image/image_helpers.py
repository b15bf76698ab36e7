"""Helpers for the image tests: tiny generated images with known colors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

#: Four well separated colors, in no particular order.
KNOWN_COLORS = np.array([[200, 30, 40], [10, 120, 250], [250, 250, 250], [0, 0, 0]], dtype=np.uint8)


def tiled_image(colors: NDArray[np.uint8], height: int = 6, width: int = 8, seed: int = 0) -> NDArray[np.uint8]:
    """A ``(height, width, 3)`` image using every row of ``colors`` at least once, in random places."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, colors.shape[0], size=height * width)
    idx[: colors.shape[0]] = np.arange(colors.shape[0])
    rng.shuffle(idx)
    return colors[idx].reshape(height, width, 3)


def color_set(image: NDArray[np.uint8], channels: int = 3) -> set[tuple[int, ...]]:
    """The distinct colors of ``image`` (its first ``channels`` channels)."""
    return {tuple(int(v) for v in c) for c in image.reshape(-1, image.shape[-1])[:, :channels]}


def write_png(path: Path, image: NDArray[np.uint8]) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path
