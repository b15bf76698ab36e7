"""Distances: each pairs an assignment metric with the center update that minimizes it.

Following Spark MLlib's ``DistanceMeasure``, the metric and its update travel together,
so a mismatched pair (L1 assignment with a mean update) cannot happen by accident:

- ``"l2"``: squared Euclidean cost, weighted mean update (classic k-means).
- ``"l1"``: Manhattan cost, exact weighted coordinate-wise median update (k-medians).
- ``"cosine"``: cosine distance, normalized weighted-mean update (spherical k-means).
"""

from __future__ import annotations

from kmeans.distance.base import Distance

__all__ = ["Distance"]
