"""``kmeans.datasets.npy(path)``: an ``(n, d)`` ``.npy`` file, memory-mapped one block at a time."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans._types import Block, Float64Array, FloatArray
from kmeans._validation import check_weights
from kmeans.dataset import DatasetFacts, float_points, unit_weights
from kmeans.datasets._stream import COMPRESS_MEMORY, StreamDataset, Where
from kmeans.errors import ValidationError

#: Rows read per chunk when a weights file is checked and summed.
_WEIGHT_CHUNK = 1 << 20


def _header(path: str, what: str) -> tuple[int, tuple[int, ...], np.dtype[Any], bool]:
    """``(data offset, shape, dtype, fortran_order)`` of a ``.npy`` file, read from its header only."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except FileNotFoundError:
        raise ValidationError(f"{what} {path!r} does not exist") from None
    except (ValueError, OSError) as exc:
        raise ValidationError(f"{what} {path!r} is not a readable .npy file ({exc})") from exc
    return offset, tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran)


def _check_dtype(dtype: np.dtype[Any], path: str) -> None:
    if dtype.fields is not None or dtype.kind not in "biuf":
        hint = " (a structured array: save the numeric columns as one (n, d) array)" if dtype.fields else ""
        raise ValidationError(f"{path}: dtype {dtype} is not a real number type; K-means needs numbers{hint}")


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class NpyDataset(StreamDataset):
    """An ``(n, d)`` array in a ``.npy`` file; each block is a read-only memory map of its rows.

    Blocks are mapped when read and unmapped when the pass is done with them (the kernel
    is asked to read each one ahead), so the process holds a few blocks, never the file.
    Integer and bool files are clustered as float64 (``integer_valued``, compressed by
    ``compress="auto"`` as in memory), float16 as float64, float32 and float64 as they are;
    a Fortran-ordered file is read column by column.

    ``weights``: ``None`` (unit weights), the path of a ``(n,)`` ``.npy`` file (checked
    and summed once, streamed) or an in-memory ``(n,)`` array. ``block_rows``: rows per
    block (default: the ``numpy`` backend's grid for ``n`` rows, so a fit equals
    ``KMeans().fit(np.load(path))`` bit for bit). ``n_threads``: blocks mapped in
    parallel (default: as the ``numpy`` backend). Memory: about
    ``(n_threads + prefetch + 1)`` blocks, whatever the file size.

    >>> import numpy as np, tempfile, os
    >>> from kmeans import KMeans
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.array([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]]))
    >>> model = KMeans(n_clusters=2, init="k-means||", seed=0).fit(npy(path))
    >>> sorted(model.cluster_centers_.tolist())
    [[0.0, 0.5], [9.0, 9.5]]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        weights: Any = None,
        block_rows: int | None = None,
        n_threads: int | None = None,
        prefetch: int = 1,
        compress_memory: int = COMPRESS_MEMORY,
    ) -> None:
        self.path = os.fspath(path)
        self._offset, shape, self._file_dtype, self._fortran = _header(self.path, "the .npy file")
        _check_dtype(self._file_dtype, self.path)
        if len(shape) != 2:
            raise ValidationError(
                f"{self.path}: the array has shape {shape}; K-means needs a 2-D (n_rows, n_features) array "
                "(save X.reshape(-1, 1) for one feature)"
            )
        n, d = shape
        if n == 0 or d == 0:
            raise ValidationError(f"{self.path}: the array has shape {shape}; it needs at least one row and column")
        dtype = float_points(np.empty(0, dtype=self._file_dtype.newbyteorder("="))).dtype
        self._stamps = {self.path: _stamp(self.path)}
        self._weights_path: str | None = None
        self._weights: Float64Array | None = None
        total = float(n)
        if isinstance(weights, (str, os.PathLike)):
            self._weights_path = os.fspath(weights)
            total = self._open_weights(self._weights_path, n)
            self._stamps[self._weights_path] = _stamp(self._weights_path)
        elif weights is not None:
            self._weights = found = check_weights(weights, n)
            total = float(np.sum(found)) if found is not None else float(n)
        integer = self._file_dtype.kind in "biu"
        facts = DatasetFacts(n, d, total, dtype, integer_valued=integer)
        super().__init__(
            facts, block_rows=block_rows, n_threads=n_threads, prefetch=prefetch, compress_memory=compress_memory
        )

    def _open_weights(self, path: str, n: int) -> float:
        """Check a 1-D weights file (finite, non-negative, some positive) and return its total."""
        offset, shape, dtype, _ = _header(path, "the weights file")
        _check_dtype(dtype, path)
        if shape != (n,):
            raise ValidationError(
                f"{path}: the weights have shape {shape}; expected ({n},), one per row of {self.path}"
            )
        self._w_offset, self._w_dtype = offset, dtype
        total = 0.0
        with open(path, "rb") as f:
            for s in range(0, n, _WEIGHT_CHUNK):
                w = self._read_weights(f, s, min(n, s + _WEIGHT_CHUNK))
                bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
                if bad.size:
                    raise ValidationError(
                        f"{path}: weight {w[bad[0]]} at row {s + int(bad[0])}; weights must be finite and >= 0"
                    )
                with np.errstate(over="ignore"):  # a total beyond float64 is inf, honestly (fits rescale)
                    total += float(np.sum(w))
        if total <= 0:
            raise ValidationError(f"{path}: every weight is zero; at least one row needs a positive weight")
        return total

    def _read_weights(self, f: Any, start: int, stop: int) -> Float64Array:
        f.seek(self._w_offset + start * self._w_dtype.itemsize)
        w = np.fromfile(f, dtype=self._w_dtype, count=stop - start)
        return w.astype(np.float64)

    def where(self, row: int) -> Where:
        return Where(self.path, row)

    def _check_unchanged(self) -> None:
        for path, stamp in self._stamps.items():
            if _stamp(path) != stamp:
                raise ValidationError(f"{path} changed since the dataset was opened; open it again")

    def _map(self, f: Any, offset: int, count: int) -> NDArray[Any]:
        """``count`` values of the file's dtype from byte ``offset``: a read-only view of a fresh mapping."""
        itemsize = self._file_dtype.itemsize
        lead = offset % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(f.fileno(), lead + count * itemsize, offset=offset - lead, access=mmap.ACCESS_READ)
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_WILLNEED)  # the kernel reads ahead while earlier blocks are mapped
        return np.frombuffer(mm, dtype=self._file_dtype, count=count, offset=lead)

    def _points(self, f: Any, start: int, stop: int) -> FloatArray:
        n, d = self.n_rows, self.n_features
        itemsize = self._file_dtype.itemsize
        if self._fortran:  # column j holds rows start..stop at j * n + start
            raw: NDArray[Any] = np.empty((stop - start, d), dtype=self._file_dtype)
            for j in range(d):
                raw[:, j] = self._map(f, self._offset + (j * n + start) * itemsize, stop - start)
        else:
            raw = self._map(f, self._offset + start * d * itemsize, (stop - start) * d).reshape(stop - start, d)
        if raw.dtype == self.dtype:
            return raw
        return raw.astype(self.dtype)

    def _read_blocks(self) -> Iterator[Block]:
        wf = open(self._weights_path, "rb") if self._weights_path is not None else None  # noqa: SIM115
        try:
            with open(self.path, "rb") as f:
                for start, stop in self.block_bounds():
                    if wf is not None:
                        w = self._read_weights(wf, start, stop)
                    elif self._weights is not None:
                        w = self._weights[start:stop]
                    else:
                        w = unit_weights(stop - start)
                    yield Block(self._points(f, start, stop), w, start)
        finally:
            if wf is not None:
                wf.close()


#: ``kmeans.datasets.npy(...)`` opens a :class:`NpyDataset` (the same parameters).
npy = NpyDataset
