"""Large files for the file-backed dataset tests and benchmark, and the children's memory probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Python source for a child process: ``status()`` reads VmHWM, VmRSS, VmData (MiB) of itself.
STATUS = r"""
def status():
    out = {}
    for line in open("/proc/self/status"):
        key, value = line.split(":", 1)
        if key in ("VmHWM", "VmRSS", "VmData"):
            out[key] = int(value.split()[0]) // 1024
    return out
"""


def write_blobs(npy_path: Path, pq_path: Path, n: int, d: int = 8, k: int = 16) -> None:
    """``n x d`` float32 blobs around ``k`` centers, as ``.npy`` and as uncompressed Parquet (1M-row groups).

    Written in 1M-row chunks (never the whole array in memory); Parquet without dictionary
    encoding, which on float columns only costs time.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    centers = (np.random.default_rng(1).normal(size=(k, d)) * 5).astype(np.float32)
    out = np.lib.format.open_memmap(npy_path, mode="w+", dtype=np.float32, shape=(n, d))
    writer = None
    chunk = 1 << 20
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        rng = np.random.default_rng(s)
        X = out[s:e]
        X[:] = rng.standard_normal((e - s, d), dtype=np.float32)
        X += centers[rng.integers(0, k, e - s)]
        table = pa.table({f"c{j}": X[:, j] for j in range(d)})
        if writer is None:
            writer = pq.ParquetWriter(pq_path, table.schema, compression="none", use_dictionary=False)
        writer.write_table(table, row_group_size=chunk)
    out.flush()
    del out
    assert writer is not None
    writer.close()
