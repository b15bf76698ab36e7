"""Copies of cached blocks on the executors' disk, so a pass reads them without the JVM.

A pass over a cached Python RDD streams every partition from the JVM's block manager
through a socket into a Python worker, which unpickles it: for 4M x 16 float64 rows that
is 512 MB per Lloyd iteration, more time than the assignment itself. When the executors
run on the driver's machine (``local[...]`` and ``local-cluster[...]`` masters), the pass
that validates and caches the data also writes each partition's stored blocks as ``.npy``
files under Spark's per-application files directory (which Spark deletes when the
application ends; we delete ours when the dataset is unpersisted). Later passes run over a
tiny RDD of partition numbers whose tasks load the files (from the page cache, memory
speed). A partition whose files are missing or unreadable runs from the cached RDD instead
and is written again: the files are only a cache, and a pass computes exactly what the
plain path computes, on the same blocks in the same order.

:class:`StoredMemory` keeps a Lloyd run's per-block scratch (Hamerly's bounds) the same
way, so Spark passes skip rows as the in-process engine does. Any stored state is valid
for any later centers (the bounds carry the centers they were computed against), so a
stale or missing file only costs speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import uuid
import weakref
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from kmeans.sparse import SparseRows, is_sparse

#: The stored form of one block: ``(points, weights or None, local_start, integer)``.
Stored = tuple[Any, Any, int, bool]

_MANIFEST = "blocks.json"
_CSR = ("data", "indices", "indptr")


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


@attrs.frozen
class BlockStore:
    """One dataset's directory of partition files; pickles as its path."""

    root: str

    def _dir(self, partition: int) -> Path:
        return Path(self.root) / str(partition)

    def write(self, partition: int, stored: list[Stored]) -> None:
        """Executor-side: write ``partition``'s blocks, atomically (best effort: a full disk only costs speed).

        A CSR block (:class:`~kmeans.sparse.SparseRows`) is written as its three arrays.
        """
        final = self._dir(partition)
        if final.exists():
            return
        tmp = Path(self.root) / f".{partition}-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            manifest = []
            for i, (points, weights, start, integer) in enumerate(stored):
                sparse = is_sparse(points)
                if sparse:  # the block's own rows, from row pointer 0
                    first, last = int(points.indptr[0]), int(points.indptr[-1])
                    csr = points.data[first:last], points.indices[first:last], points.indptr - first
                    for part, array in zip(_CSR, csr, strict=True):
                        np.save(tmp / f"{i}.{part}.npy", array, allow_pickle=False)
                else:
                    np.save(tmp / f"{i}.points.npy", points, allow_pickle=False)
                if weights is not None:
                    np.save(tmp / f"{i}.weights.npy", weights, allow_pickle=False)
                manifest.append(
                    [i, weights is not None, int(start), bool(integer), list(points.shape) if sparse else None]
                )
            (tmp / _MANIFEST).write_text(json.dumps(manifest))
            tmp.rename(final)  # a whole directory appears at once; another attempt's copy wins a race
        except OSError:
            _remove(str(tmp))

    def read(self, partition: int) -> list[Stored] | None:
        """Executor-side: ``partition``'s blocks, or ``None`` when they are not (all) here."""
        where = self._dir(partition)

        def load(name: str) -> Any:
            # mapped copy-on-write: no read into fresh memory, and nothing written reaches the file
            return np.load(where / name, mmap_mode="c", allow_pickle=False)

        try:
            manifest = json.loads((where / _MANIFEST).read_text())
            out: list[Stored] = []
            for i, weighted, start, integer, shape in manifest:
                if shape is None:
                    points = load(f"{i}.points.npy")
                else:
                    data, indices, indptr = (load(f"{i}.{part}.npy") for part in _CSR)
                    points = SparseRows(data, indices, indptr, (shape[0], shape[1]))
                weights = load(f"{i}.weights.npy") if weighted else None
                out.append((points, weights, start, integer))
            return out
        except (OSError, ValueError):
            return None

    def memory(self) -> StoredMemory:
        """A new Lloyd run's scratch in this store (deleted with it, or when the run drops it)."""
        return StoredMemory(str(Path(self.root) / f"memory-{uuid.uuid4().hex}"), owner=True)

    def remove(self) -> None:
        """Driver-side: delete the files (the executors share this machine)."""
        _remove(self.root)


def store_for(context: Any) -> BlockStore | None:
    """A new, empty store for a dataset on ``context``, or ``None`` when executors may be elsewhere."""
    if not str(context.master).startswith("local"):
        return None
    from pyspark import SparkFiles

    return BlockStore(str(Path(SparkFiles.getRootDirectory()) / "kmeans-blocks" / uuid.uuid4().hex))


class StoredMemory:
    """The ``memory`` mapping of :func:`kmeans.driver.lloyd` (block start -> state) kept in files.

    Only ``get`` and item assignment, which is what the fused passes use. Integer keys
    (block starts) go to files, written atomically (a reader sees a whole state or none;
    unreadable files read as absent); other keys (a pass's shared scratch) stay in the
    process that set them, which the protocol allows: any entry may be missing.
    """

    def __init__(self, root: str, *, owner: bool = False) -> None:
        self.root = root
        self._local: dict[Any, Any] = {}
        if owner:  # the driver's object; the executors' unpickled copies do not delete
            weakref.finalize(self, _remove, root)

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoredMemory, (self.root,))

    def _file(self, key: Any) -> Path:
        return Path(self.root) / f"{int(key)}.pickle"

    def get(self, key: Any, default: Any = None) -> Any:
        if not isinstance(key, (int, np.integer)):
            return self._local.get(key, default)
        try:
            with self._file(key).open("rb") as fh:
                return pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError):
            return default

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(key, (int, np.integer)):
            self._local[key] = value
            return
        final = self._file(key)
        tmp = final.with_name(f".{final.name}-{uuid.uuid4().hex}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, final)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
