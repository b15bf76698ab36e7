"""Benchmarks: ``kmeans bench paper`` (the paper's tables) and ``kmeans bench scaling``.

:mod:`kmeans.bench.baselines` holds the paper's own code, ported as-is, as a baseline
to measure against; it is not part of the library's API.
"""
