"""Sparse rows: a CSR block that strategies read without densifying it.

:class:`SparseRows` is what a :class:`~kmeans._types.Block` holds in ``points`` for
scipy.sparse input (and Spark ``SparseVector`` rows): CSR arrays in canonical form (sorted
column indices, no duplicates, no explicit zeros), float32 or float64. Indexing by rows
(a slice, an index array, a boolean mask) gives :class:`SparseRows` again, without copying
values it does not select; ``np.asarray`` makes the *selected* rows dense, which is what
initializers do with the few rows they pick (candidates, centers). Metrics that support
sparse rows (``l2``, ``cosine``) compute on the CSR arrays directly, through sparse-dense
products against dense centers: the data is never densified, so memory stays near the
CSR size (``nnz * (itemsize + 4)`` bytes, plus ``4 (n + 1)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from kmeans.errors import ValidationError


class SparseRows:
    """``(n, d)`` rows in CSR form: ``data`` (nnz,), ``indices`` (nnz,) int32, ``indptr`` (n + 1,) int64.

    Canonical: within a row, column indices ascend and every stored value is non-zero, so
    equal rows have equal arrays and a sum over a row's stored values, in index order,
    equals the sum over all its features in feature order.
    """

    __slots__ = ("data", "indices", "indptr", "shape")

    ndim = 2

    def __init__(self, data: NDArray[Any], indices: NDArray[Any], indptr: NDArray[Any], shape: tuple[int, int]):
        self.data = data
        self.indices = indices
        self.indptr = indptr
        self.shape = (int(shape[0]), int(shape[1]))

    @classmethod
    def from_scipy(cls, X: Any) -> SparseRows:
        """Canonical rows of any scipy.sparse matrix or array (copies only when ``X`` is not canonical CSR)."""
        csr = X.tocsr()
        if csr.dtype not in (np.float32, np.float64):
            csr = csr.astype(np.float64)
        if not csr.has_canonical_format or (csr.data.size and not np.all(csr.data)):
            csr = csr.copy()
            csr.sum_duplicates()
            csr.eliminate_zeros()
        return cls(
            csr.data, csr.indices.astype(np.int32, copy=False), csr.indptr.astype(np.int64, copy=False), csr.shape
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype  # type: ignore[no-any-return,unused-ignore]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.indices.nbytes + self.indptr.nbytes)

    def __len__(self) -> int:
        return self.shape[0]

    def to_scipy(self) -> Any:
        """The rows as a ``scipy.sparse.csr_array`` (sharing the arrays)."""
        from scipy import sparse

        start = int(self.indptr[0])
        return sparse.csr_array(
            (self.data[start : self.indptr[-1]], self.indices[start : self.indptr[-1]], self.indptr - start),
            shape=self.shape,
        )

    def __getitem__(self, key: Any) -> SparseRows:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1:  # a view: the same data, a shorter indptr
                stop = max(start, stop)
                return SparseRows(self.data, self.indices, self.indptr[start : stop + 1], (stop - start, self.shape[1]))
            key = np.arange(start, stop, step)
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False).reshape(-1)
        starts, ends = self.indptr[idx], self.indptr[idx + 1]
        lengths = ends - starts
        indptr = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        take = np.repeat(starts - indptr[:-1], lengths) + np.arange(int(indptr[-1]), dtype=np.int64)
        return SparseRows(self.data[take], self.indices[take], indptr, (idx.size, self.shape[1]))

    def toarray(self, dtype: Any = None) -> NDArray[Any]:
        """The rows as a dense ``(n, d)`` array (of ``dtype``, default the values' dtype)."""
        out = np.zeros(self.shape, dtype=dtype or self.dtype)
        counts = np.diff(self.indptr)
        rows = np.repeat(np.arange(self.shape[0]), counts)
        start = int(self.indptr[0])
        out[rows, self.indices[start : self.indptr[-1]]] = self.data[start : self.indptr[-1]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        return self.toarray(dtype)

    def __repr__(self) -> str:
        return f"SparseRows(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def is_sparse(points: Any) -> bool:
    """Whether ``points`` are :class:`SparseRows`."""
    return isinstance(points, SparseRows)


def is_scipy_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy.sparse matrix or array (detected without importing scipy)."""
    return type(X).__module__.startswith("scipy.sparse")


def check_sparse(X: Any, *, name: str = "X") -> SparseRows:
    """A scipy.sparse ``X`` as canonical :class:`SparseRows`, checked like dense input (2-D, finite, non-empty)."""
    if X.ndim != 2:
        raise ValidationError(f"{name} is a {X.ndim}-D sparse array; K-means needs 2-D (n_rows, n_features)")
    if X.dtype.kind not in "biuf":
        raise ValidationError(f"{name} has non-numeric dtype {X.dtype}; K-means needs real numbers")
    n, d = X.shape
    if n == 0:
        raise ValidationError(f"{name} is empty: it has 0 rows (shape {X.shape}); K-means needs at least one row")
    if d == 0:
        raise ValidationError(f"{name} has 0 features (shape={X.shape}); K-means needs at least one column")
    rows = SparseRows.from_scipy(X)
    if rows.dtype.kind == "f" and not np.isfinite(np.sum(rows.data, dtype=np.float64)):
        bad = ~np.isfinite(rows.data)
        if bad.any():
            first = int(np.searchsorted(rows.indptr, int(np.flatnonzero(bad)[0]), side="right") - 1)
            raise ValidationError(
                f"{name} contains NaN or infinite values ({int(bad.sum())} stored values, first in row {first}); "
                "remove or impute them before clustering"
            )
    return rows


def rows_equal(points: Any, point: NDArray[Any]) -> NDArray[np.bool_]:
    """``(n,)``: which rows of ``points`` (dense or :class:`SparseRows`) equal the dense ``point``."""
    if not is_sparse(points):
        out: NDArray[np.bool_] = np.all(points == point, axis=1)
        return out
    nz = np.flatnonzero(point)
    counts = np.diff(points.indptr)
    out = counts == nz.size
    for i in np.flatnonzero(out):
        s, e = points.indptr[i], points.indptr[i + 1]
        out[i] = bool(np.array_equal(points.indices[s:e], nz) and np.array_equal(points.data[s:e], point[nz]))
    return out
