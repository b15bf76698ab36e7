"""File-backed datasets: data bigger than memory, read block by block on every pass.

``KMeans(...).fit(kmeans.datasets.npy("x.npy"))`` or
``.fit(kmeans.datasets.parquet("dir/*.parquet", columns=[...]))`` runs the same fit as on
the array in memory (same blocks, same order, the same bits) while holding only a few
blocks. pyarrow (the ``files`` extra) is imported when a Parquet dataset is opened.
"""

from __future__ import annotations

from kmeans.datasets._npy import NpyDataset, npy
from kmeans.datasets._parquet import ParquetDataset, parquet
from kmeans.datasets._stream import COMPRESS_MEMORY, StreamDataset, Where

__all__ = ["COMPRESS_MEMORY", "NpyDataset", "ParquetDataset", "StreamDataset", "Where", "npy", "parquet"]
