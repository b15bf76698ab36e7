"""``kmeans.datasets.parquet(paths, columns=[...])``: Parquet files streamed with pyarrow.dataset.

Rows are in file order (a list as given; a glob or directory sorted by path), then row
group order, then row order: the same global order on every pass. Only the selected
columns are read; row groups are decoded as a stream of record batches and cut into the
fixed block grid, so a row group larger than a block costs no more memory than a block.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from kmeans._types import Block, Float64Array
from kmeans.dataset import DatasetFacts, unit_weights
from kmeans.datasets._stream import COMPRESS_MEMORY, StreamDataset, Where
from kmeans.errors import MissingDependencyError, ValidationError

#: Rows per record batch decoded from a row group.
BATCH_ROWS = 1 << 16

#: Bytes of a buffered read from a column chunk (row groups are streamed, never loaded whole).
BUFFER_BYTES = 1 << 20

_GLOB = re.compile(r"[*?\[]")

#: The files a directory contributes (those not under a name starting with ``_`` or ``.``).
_SUFFIXES = (".parquet", ".parq")


def _pyarrow() -> tuple[Any, Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError("kmeans.datasets.parquet needs pyarrow: pip install 'kmeans[files]'") from exc
    return pa, pq, pafs


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` any path, ``*`` and ``?`` within one path segment, ``[...]`` a character class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _as_filesystem(filesystem: Any, pafs: Any) -> Any:
    if filesystem is None or isinstance(filesystem, pafs.FileSystem):
        return filesystem
    if hasattr(filesystem, "open") and hasattr(filesystem, "ls"):  # an fsspec filesystem
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise ValidationError(f"filesystem must be a pyarrow.fs.FileSystem or an fsspec filesystem, got {filesystem!r}")


def _hidden(path: str, base: str) -> bool:
    rel = path[len(base) :].lstrip("/") if path.startswith(base) else os.path.basename(path)
    return any(part.startswith(("_", ".")) for part in rel.split("/"))


def _expand(item: str, filesystem: Any, pafs: Any) -> tuple[Any, list[str]]:
    """``(filesystem, files)`` of one path, URI, directory or glob pattern."""
    if filesystem is not None:
        fs, path = filesystem, item
    elif "://" in item:
        try:
            fs, path = pafs.FileSystem.from_uri(item)
        except Exception as exc:  # pyarrow raises several kinds for an unknown scheme
            raise ValidationError(f"cannot open {item!r}: {exc}") from exc
    else:
        fs, path = pafs.LocalFileSystem(), os.path.abspath(item)
    match = _GLOB.search(path)
    if match is None:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return fs, [path]
        if info.type == pafs.FileType.Directory:
            base = path.rstrip("/")
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
            files = sorted(
                i.path
                for i in infos
                if i.type == pafs.FileType.File and i.path.endswith(_SUFFIXES) and not _hidden(i.path, base)
            )
            if not files:
                raise ValidationError(f"the directory {item!r} holds no {' or '.join(_SUFFIXES)} files")
            return fs, files
        raise ValidationError(f"{item!r} does not exist")
    base = path[: match.start()].rsplit("/", 1)[0] if "/" in path[: match.start()] else ""
    regex = _glob_regex(path)
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise ValidationError(f"cannot list {base!r} for {item!r}: {exc}") from exc
    files = sorted(i.path for i in infos if i.type == pafs.FileType.File and regex.match(i.path))
    if not files:
        raise ValidationError(f"no file matches {item!r}")
    return fs, files


def _numpy_dtype(field: Any, pa: Any, source: str) -> np.dtype[Any]:
    t = field.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        found: np.dtype[Any] = np.dtype(t.to_pandas_dtype())
        return found
    raise ValidationError(
        f"{source}: column {field.name!r} has type {t}, not a number; K-means needs numeric columns "
        "(select the numeric ones with columns=[...])"
    )


class ParquetDataset(StreamDataset):
    """Parquet files (local, or any filesystem pyarrow can open) streamed in row order.

    ``columns`` are the features, ``weights`` an optional column of row weights. Values are
    float32 when every selected column is float32 in every file, else float64; all-integer
    (or bool) columns are ``integer_valued`` (compressed by ``compress="auto"``). Missing
    values are refused (from row-group statistics when the files have them, else while
    streaming), as are NaN, infinities and non-numeric columns, naming the file and column.

    ``paths``: a file, a directory (every ``.parquet``/``.parq`` file under it, skipping names
    that start with ``_`` or ``.``),
    a glob pattern (``**`` crosses directories) or a list of them; a URI (``s3://...``,
    ``gs://...``, ``hdfs://...``, ``file://...``) opens pyarrow's filesystem for it, and
    ``filesystem=`` takes a ``pyarrow.fs.FileSystem`` or an fsspec filesystem for the paths.
    ``columns``: the feature columns (default: every column but ``weights``); ``weights``:
    a column of non-negative row weights. ``block_rows``: rows per block (default: the
    ``numpy`` backend's grid, so a fit equals the in-memory fit of the same rows bit for
    bit). Memory: about ``(n_threads + prefetch + 1)`` blocks plus one decoded batch of
    ``batch_rows`` rows per column, whatever the files' size.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        columns: Sequence[str] | None = None,
        *,
        weights: str | None = None,
        filesystem: Any = None,
        block_rows: int | None = None,
        n_threads: int | None = None,
        prefetch: int = 1,
        batch_rows: int = BATCH_ROWS,
        buffer_bytes: int = BUFFER_BYTES,
        decode_threads: bool = True,
        compress_memory: int = COMPRESS_MEMORY,
    ) -> None:
        pa, self._pq, pafs = _pyarrow()
        self._buffer_bytes = int(buffer_bytes)
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not items:
            raise ValidationError("paths is empty; give a file, a directory, a glob pattern or a list of them")
        fs_given = _as_filesystem(filesystem, pafs)
        self.files: list[tuple[Any, str]] = []
        for item in items:
            fs, found = _expand(os.fspath(item), fs_given, pafs)
            self.files.extend((fs, f) for f in found)
        self._metas = [self._metadata(fs, f) for fs, f in self.files]
        first_schema = self._schema(0)
        if columns is None:
            columns = [name for name in first_schema.names if name != weights]
        elif isinstance(columns, str):
            raise ValidationError(f"columns must be a list of column names, got the string {columns!r}")
        self.columns = list(columns)
        if not self.columns:
            raise ValidationError("columns is empty; select at least one numeric column")
        if len(set(self.columns)) != len(self.columns):
            raise ValidationError(f"columns {self.columns} names a column twice")
        if weights is not None and weights in self.columns:
            raise ValidationError(f"the weights column {weights!r} is also a feature column")
        self.weights_column = weights
        self._read_columns = self.columns + ([weights] if weights is not None else [])
        dtypes: list[np.dtype[Any]] = []
        self._offsets, stamps = [0], []
        for i, (fs, f) in enumerate(self.files):
            schema = self._schema(i)
            for name in self._read_columns:
                if schema.get_field_index(name) < 0:
                    raise ValidationError(f"{f}: no column {name!r}; its columns are {schema.names}")
                dt = _numpy_dtype(schema.field(name), pa, f)
                if name != weights:
                    dtypes.append(dt)
            meta = self._metas[i]
            self._check_nulls(meta, f)
            self._offsets.append(self._offsets[-1] + meta.num_rows)
            info = fs.get_file_info(f)
            stamps.append((info.size, info.mtime_ns))
        self._stamps = stamps
        n, d = self._offsets[-1], len(self.columns)
        if n == 0:
            raise ValidationError(f"the Parquet files ({len(self.files)}) hold no rows")
        kinds = {dt.kind for dt in dtypes}
        all_f32 = all(dt == np.float32 for dt in dtypes)
        dtype = np.dtype(np.float32 if all_f32 else np.float64)
        self._batch_rows = int(batch_rows)
        self._decode_threads = bool(decode_threads)
        facts = DatasetFacts(n, d, float(n), dtype, integer_valued=kinds <= set("biu"))
        super().__init__(
            facts, block_rows=block_rows, n_threads=n_threads, prefetch=prefetch, compress_memory=compress_memory
        )
        if weights is not None:
            self.facts = DatasetFacts(n, d, self._weight_total(), dtype, integer_valued=kinds <= set("biu"))

    def _metadata(self, fs: Any, path: str) -> Any:
        try:
            with fs.open_input_file(path) as f:
                return self._pq.ParquetFile(f).metadata
        except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
            raise ValidationError(f"{path}: cannot be read as Parquet ({exc})") from exc

    def _schema(self, i: int) -> Any:
        return self._metas[i].schema.to_arrow_schema()

    def _open(self, i: int) -> Any:
        """File ``i`` opened for a streamed read: buffered column chunks, nothing pre-buffered."""
        fs, path = self.files[i]
        return self._pq.ParquetFile(
            fs.open_input_file(path), buffer_size=self._buffer_bytes, pre_buffer=False, memory_map=False
        )

    def _check_nulls(self, meta: Any, source: str) -> None:
        names = [meta.schema.column(j).name for j in range(meta.num_columns)]
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for name in self._read_columns:
                if name not in names:
                    continue  # a nested or renamed column: checked while streaming
                stats = rg.column(names.index(name)).statistics
                if stats is not None and stats.has_null_count and stats.null_count > 0:
                    raise ValidationError(
                        f"{source}: column {name!r} has {stats.null_count} missing (null) values in row group {g}; "
                        "drop or fill them before clustering"
                    )

    def _known_range(self) -> tuple[float, float] | None:
        """Largest ``|x|`` and weight from every row group's minimum and maximum; ``None`` if one lacks them.

        Exact: statistics hold stored values (NaN excluded; NaN rows are refused while streaming),
        converted to float as the blocks convert them.
        """
        big, wmax = 0.0, 0.0 if self.weights_column is not None else 1.0
        for meta in self._metas:
            names = [meta.schema.column(j).name for j in range(meta.num_columns)]
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                if rg.num_rows == 0:
                    continue
                for name in self._read_columns:
                    stats = rg.column(names.index(name)).statistics if name in names else None
                    if stats is None or not stats.has_min_max or not isinstance(stats.max, (int, float)):
                        return None  # (float16 statistics are bytes)
                    lo, hi = float(stats.min), float(stats.max)
                    if name == self.weights_column:
                        wmax = max(wmax, hi)
                    else:
                        big = max(big, abs(lo), abs(hi))
        if not (math.isfinite(big) and math.isfinite(wmax)):
            return None  # the pass names the infinite value (NaN is not in the statistics)
        return big, wmax

    def _weight_total(self) -> float:
        """One pass over the weights column alone: finite, >= 0, some positive; their sum."""
        total = 0.0
        name = self.weights_column
        assert name is not None
        for i in range(len(self.files)):
            at = 0
            with self._open(i) as pf:
                for batch in pf.iter_batches(batch_size=self._batch_rows, columns=[name], use_threads=False):
                    w = self._column_values(batch.column(0), name, i, at).astype(np.float64)
                    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
                    if bad.size:
                        raise ValidationError(
                            f"{self.files[i][1]}: row {at + int(bad[0])}, weights column {name!r} is {w[bad[0]]}; "
                            "weights must be finite and >= 0"
                        )
                    with np.errstate(over="ignore"):  # a total beyond float64 is inf, honestly (fits rescale)
                        total += float(np.sum(w))
                    at += batch.num_rows
        if total <= 0:
            raise ValidationError(f"the weights column {name!r} is zero for every row; one needs a positive weight")
        return total

    def _column_values(self, arr: Any, name: str, file_index: int, at: int) -> np.ndarray[Any, Any]:
        if arr.null_count:
            row = at + int(np.flatnonzero(np.asarray(arr.is_null()))[0])
            raise ValidationError(
                f"{self.files[file_index][1]}: row {row}, column {name!r} is missing (null); "
                "drop or fill such rows before clustering"
            )
        return np.asarray(arr.to_numpy(zero_copy_only=False))

    def where(self, row: int) -> Where:
        i = bisect.bisect_right(self._offsets, row) - 1
        return Where(self.files[i][1], row - self._offsets[i])

    def _column(self, j: int) -> str:
        return f"column {self.columns[j]!r}"

    def _check_unchanged(self) -> None:
        for (fs, f), stamp in zip(self.files, self._stamps, strict=True):
            info = fs.get_file_info(f)
            if (info.size, info.mtime_ns) != stamp:
                raise ValidationError(f"{f} changed since the dataset was opened; open it again")

    def _read_blocks(self) -> Iterator[Block]:
        bounds = iter(self.block_bounds())
        start, stop = next(bounds)
        d = self.n_features
        points = np.empty((stop - start, d), dtype=self.dtype)
        w: Float64Array | None = np.empty(stop - start) if self.weights_column is not None else None
        filled = 0
        for i in range(len(self.files)):
            at = 0
            with self._open(i) as pf:
                for batch in pf.iter_batches(
                    batch_size=self._batch_rows, columns=self._read_columns, use_threads=self._decode_threads
                ):
                    m = batch.num_rows
                    cols = [
                        self._column_values(batch.column(j), name, i, at) for j, name in enumerate(self._read_columns)
                    ]
                    pos = 0
                    while pos < m:
                        take = min(m - pos, points.shape[0] - filled)
                        for j in range(d):
                            points[filled : filled + take, j] = cols[j][pos : pos + take]
                        if w is not None:
                            w[filled : filled + take] = cols[d][pos : pos + take]
                        filled += take
                        pos += take
                        if filled == points.shape[0]:
                            yield Block(points, w if w is not None else unit_weights(filled), start)
                            nxt = next(bounds, None)
                            if nxt is None:
                                return
                            start, stop = nxt
                            points = np.empty((stop - start, d), dtype=self.dtype)
                            w = np.empty(stop - start) if w is not None else None
                            filled = 0
                    at += m


#: ``kmeans.datasets.parquet(...)`` opens a :class:`ParquetDataset` (the same parameters).
parquet = ParquetDataset
