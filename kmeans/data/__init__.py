"""Bundled sample data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def raccoon_path() -> Path:
    """Path of the bundled sample photo: the paper's 1024x768 raccoon (public domain)."""
    return Path(str(resources.files("kmeans.data") / "raccoon.png"))
