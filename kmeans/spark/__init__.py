"""``pyspark.ml`` citizenship: ``from kmeans.spark import KMeans, KMeansModel``.

:mod:`kmeans.spark.session` has the library's session helpers. Importing this package does
not import pyspark; reading ``KMeans`` or ``KMeansModel`` does (and needs it installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kmeans.spark.ml import KMeans, KMeansModel

__all__ = ["KMeans", "KMeansModel"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kmeans.spark import ml

        return getattr(ml, name)
    raise AttributeError(f"module 'kmeans.spark' has no attribute {name!r}")
