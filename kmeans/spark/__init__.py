"""``pyspark.ml`` citizenship: ``from kmeans.spark import KMeans, KMeansModel``.

This package imports pyspark; ``import kmeans`` never imports it.
"""

from __future__ import annotations

from kmeans.spark.ml import KMeans, KMeansModel

__all__ = ["KMeans", "KMeansModel"]
