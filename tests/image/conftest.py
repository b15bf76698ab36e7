"""The image tests need Pillow (the ``image`` extra, installed in CI)."""

from __future__ import annotations

import pytest

pytest.importorskip("PIL", reason="the image tests need Pillow (pip install 'kmeans[image]')")
