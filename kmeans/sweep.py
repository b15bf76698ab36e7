"""Choosing k: :func:`sweep` fits a range of cluster counts on one dataset and scores each.

Per ``k`` it reports the inertia (the fit's objective), the Calinski-Harabasz index over
every row, and the silhouette on a seeded sample of bounded size. Work shared by every ``k``:
the backend's dataset is built once (one Spark dataset, cached for the whole sweep), the
compress rule runs once, the silhouette sample is drawn once, and the totals the
Calinski-Harabasz index needs are one pass.

- **Fits.** ``k`` is fitted as ``KMeans(n_clusters=k, ...)`` would fit it on the same data
  (same initializer, restarts, seed rule), so ``result.centers[i]`` equals that fit's
  ``cluster_centers_``. With ``warm_start=True`` the fit of ``k`` instead starts from the
  previous ``k``'s centers plus the farthest distinct points from them (the driver's
  empty-cluster rule), one Lloyd run, no initializer: fewer iterations, but a result that
  depends on the smaller ``k``'s and is no longer that of an independent fit. A ``k`` above
  the number ``m`` of distinct points gets :class:`~kmeans.KMeans`' rule (the points as
  centers, inertia 0, no update; one ``ConvergenceWarning`` for the first such ``k``).
- **Silhouette.** A sample of at most ``silhouette_size`` rows of positive weight, uniform
  over rows (weights are ignored, as in scikit-learn's ``silhouette_score``): the rows with
  the smallest keys ``u(seed, row)``, the same on every engine and partitioning. Each sample
  row is labelled by the closest fitted center, and the score is scikit-learn's
  ``silhouette_score(sample, labels, metric=...)`` with the metric's own distance (Euclidean
  for ``l2``, Manhattan for ``l1``, ``1 - cos`` for ``cosine``): the mean over rows of ``(b - a) / max(a, b)``, 0 for a
  row alone in its cluster, NaN when the sample has fewer than 2 or more than ``size - 1``
  labels. Memory stays ``O(chunk x size)``; time is ``O(size^2 d)`` per ``k``.
- **Calinski-Harabasz.** ``(B / (k - 1)) / (W / (N - k))`` with ``N`` the total weight, ``B``
  the weighted between-cluster and ``W = T - B`` the within-cluster sum of squared Euclidean
  distances of the rows labelled by the closest fitted center (``T`` about the overall
  mean). For unit weights this is scikit-learn's ``calinski_harabasz_score(X, labels)``.

:meth:`SweepResult.suggest` applies one documented rule; :meth:`SweepResult.plot` draws
the elbow and silhouette curves.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import driver, registry
from kmeans._random import derive_seed, uniform
from kmeans._types import Block, FitSpec, Float64Array, IntArray
from kmeans.bisecting import input_dataset
from kmeans.errors import MissingDependencyError, ValidationError
from kmeans.estimator import KMeans, _warn_few_points
from kmeans.init._sampling import smallest_keys
from kmeans.protocols import Dataset, optional
from kmeans.sparse import is_scipy_sparse

#: Default bound on the silhouette sample (its cost grows as the square of the size).
SILHOUETTE_SIZE = 5000

#: The rules :meth:`SweepResult.suggest` knows.
RULES = ("silhouette", "calinski-harabasz", "elbow")

#: Bytes of one chunk of the silhouette's pairwise distances.
_CHUNK_BYTES = 1 << 25

#: Stream of the silhouette sample's keys: ``derive_seed(seed, _SAMPLE_STREAM)``.
_SAMPLE_STREAM = 0x5EED


@attrs.frozen(eq=False)
class SweepResult:
    """Scores of each ``k`` of a :func:`sweep`, in ascending ``k``.

    ``ks``, ``inertia``, ``silhouette``, ``calinski_harabasz`` and ``n_iter`` are arrays over the
    ``k`` swept; ``centers[i]`` are the fitted centers of ``ks[i]``. ``sample`` holds the
    silhouette's sample rows (float64), ``sample_rows`` their global row indices in the input,
    ``sample_labels[i]`` their labels for ``ks[i]``.
    """

    ks: NDArray[np.int64]
    inertia: Float64Array
    silhouette: Float64Array
    calinski_harabasz: Float64Array
    n_iter: NDArray[np.int64]
    centers: tuple[Float64Array, ...]
    sample: Float64Array
    sample_rows: NDArray[np.int64]
    sample_labels: tuple[NDArray[np.int32], ...]
    seed: int
    warm_start: bool = False

    def suggest(self, rule: str = "silhouette") -> int:
        """The suggested ``k`` by ``rule``; ties go to the smallest ``k``.

        - ``"silhouette"`` (default): the ``k`` of largest silhouette (NaN scores never win).
        - ``"calinski-harabasz"``: the ``k`` of largest Calinski-Harabasz index.
        - ``"elbow"``: the knee of the inertia curve (Satopää et al.'s Kneedle, on the log of the
          inertia, which decays roughly geometrically until the true ``k``): with ``x`` the ``k``
          and ``y`` the log-inertia both scaled to ``[0, 1]`` over the sweep, the ``k`` farthest
          below the chord from the first to the last point, i.e. the largest ``(1 - x) - y``.
          Needs 3 ``k`` or more.
        """
        if rule not in RULES:
            raise ValidationError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
        if rule == "elbow":
            if self.ks.size < 3:
                raise ValidationError(f"the elbow rule needs at least 3 values of k, the sweep has {self.ks.size}")
            x = (self.ks - self.ks[0]) / float(self.ks[-1] - self.ks[0])
            log = np.log(np.maximum(self.inertia, 1e-300 + 1e-12 * float(self.inertia.max())))
            span = float(log.max() - log.min())
            y = (log - log.min()) / span if span > 0 else np.zeros_like(log)
            score = (1.0 - x) - y
        else:
            score = self.silhouette if rule == "silhouette" else self.calinski_harabasz
        if not np.isfinite(score).any():
            raise ValidationError(f"no k has a finite {rule} score")
        return int(self.ks[int(np.nanargmax(np.where(np.isfinite(score), score, np.nan)))])

    def table(self) -> str:
        """The scores as a plain-text table, one line per ``k`` (what ``kmeans sweep`` prints)."""
        lines = [f"{'k':>4} {'inertia':>16} {'silhouette':>11} {'calinski-harabasz':>18} {'n_iter':>7}"]
        for i, k in enumerate(self.ks.tolist()):
            lines.append(
                f"{k:>4} {self.inertia[i]:>16.6g} {self.silhouette[i]:>11.4f} "
                f"{self.calinski_harabasz[i]:>18.6g} {int(self.n_iter[i]):>7}"
            )
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str] | None = None, *, rule: str = "silhouette") -> Any:
        """A matplotlib ``Figure``: inertia (elbow) and silhouette against ``k``, the suggestion marked.

        With ``path``, the figure is also written there (format from the suffix, atomically).
        Needs matplotlib (``pip install 'kmeans[plot]'``).
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise MissingDependencyError(f"plot needs matplotlib ({exc}): pip install 'kmeans[plot]'") from exc
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        left, right = fig.subplots(1, 2)
        best = self.suggest(rule)
        left.plot(self.ks, self.inertia, marker="o")
        left.set(xlabel="k", ylabel="inertia", title="Elbow")
        right.plot(self.ks, self.silhouette, marker="o", color="tab:green")
        right.set(xlabel="k", ylabel="silhouette", title=f"Silhouette (sample of {self.sample.shape[0]})")
        for ax in (left, right):
            ax.axvline(best, color="tab:red", linestyle="--", linewidth=1, label=f"suggested k={best} ({rule})")
            ax.grid(alpha=0.3)
        right.legend(loc="best")
        if path is not None:
            from kmeans.io import write_atomic

            fmt = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else "png"
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt)
            write_atomic(path, buffer.getvalue())
        return fig


def _check_ks(n_clusters: Iterable[int] | int) -> list[int]:
    values = [n_clusters] if isinstance(n_clusters, int) else list(n_clusters)
    if not values:
        raise ValidationError("n_clusters is empty: give the values of k to sweep, e.g. range(2, 21)")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValidationError(
                f"every k of a sweep must be an integer >= 2 (silhouette needs 2 clusters), got {k!r}"
            )
    return sorted({int(k) for k in values})


def _sample(dataset: Dataset, size: int, seed: int) -> tuple[Float64Array, NDArray[np.int64]]:
    """At most ``size`` rows of positive weight: the smallest keys ``u(seed, row)`` (uniform, engine-free)."""

    def keys(block: Block) -> Float64Array:
        u = uniform(seed, block.row_indices())
        return np.where(np.asarray(block.weights) > 0, u, np.inf)

    cand = smallest_keys(dataset, keys, size)
    order = np.argsort(cand.rows, kind="stable")  # in input order
    return cand.points[order], cand.rows[order]


@attrs.frozen(eq=False)
class _Moments:
    weight: float
    total: Float64Array  # (d,) weighted sum


def _moments(dataset: Dataset) -> _Moments:
    def fn(block: Block) -> _Moments:
        w = np.asarray(block.weights, dtype=np.float64)
        return _Moments(float(w.sum()), w @ np.asarray(block.points, dtype=np.float64))

    return dataset.map_reduce(fn, lambda a, b: _Moments(a.weight + b.weight, a.total + b.total))


def _scatter(dataset: Dataset, mean: Float64Array) -> float:
    """``T = sum_i w_i ||x_i - mean||^2``."""

    def fn(block: Block) -> float:
        diff = np.asarray(block.points, dtype=np.float64) - mean
        return float(np.asarray(block.weights, dtype=np.float64) @ np.einsum("ij,ij->i", diff, diff))

    total: float = dataset.map_reduce(fn, lambda a, b: a + b)
    return total


def _cluster_sums(dataset: Dataset, centers: Float64Array, assign: Any) -> tuple[Float64Array, Float64Array]:
    """Per cluster of the closest center: total weight ``(k,)`` and weighted sum of the rows ``(k, d)``."""
    k = centers.shape[0]

    def fn(block: Block) -> tuple[Float64Array, Float64Array]:
        labels = assign.assign(block.points, centers)[0]
        w = np.asarray(block.weights, dtype=np.float64)
        sums = np.zeros((k, centers.shape[1]))
        np.add.at(sums, labels, w[:, None] * np.asarray(block.points, dtype=np.float64))
        counts: Float64Array = np.bincount(labels, weights=w, minlength=k).astype(np.float64)
        return counts, sums

    def merge(
        a: tuple[Float64Array, Float64Array], b: tuple[Float64Array, Float64Array]
    ) -> tuple[Float64Array, Float64Array]:
        return a[0] + b[0], a[1] + b[1]

    return dataset.map_reduce(fn, merge)


def calinski_harabasz(weights: Float64Array, sums: Float64Array, total: _Moments, scatter: float) -> float:
    """``(B / (k - 1)) / (W / (N - k))`` from per-cluster weights and sums (``k`` = non-empty clusters)."""
    keep = weights > 0
    k, n = int(np.count_nonzero(keep)), total.weight
    if k < 2 or n <= k:
        return math.nan
    mean = total.total / n
    means = sums[keep] / weights[keep, None]
    diff = means - mean
    between = float(weights[keep] @ np.einsum("ij,ij->i", diff, diff))
    within = scatter - between
    if within <= 0:
        return math.inf
    return (between / (k - 1)) / (within / (n - k))


def silhouette(points: Float64Array, labels: IntArray, distances: Any) -> float:
    """scikit-learn's ``silhouette_score(points, labels)`` with the metric ``distances(a, b) -> (n, m)``.

    Row ``i``: ``a`` is its mean distance to the other rows of its cluster, ``b`` the smallest
    mean distance to another cluster's rows, ``s = (b - a) / max(a, b)`` (0 when alone in its
    cluster). The score is the mean of ``s``; NaN unless ``2 <= n_labels <= n - 1``.
    Computed in row chunks of bounded memory.
    """
    return silhouettes(points, [labels], distances)[0]


def silhouettes(points: Float64Array, labelings: Sequence[IntArray], distances: Any) -> list[float]:
    """:func:`silhouette` of several labelings of the same ``points``, each distance chunk computed once."""
    n = points.shape[0]
    prepared: list[tuple[NDArray[np.intp], Float64Array, Float64Array] | None] = []
    for labels in labelings:
        uniq, inverse = np.unique(labels, return_inverse=True)
        k = uniq.shape[0]
        if not 2 <= k <= n - 1:
            prepared.append(None)
            continue
        onehot = np.zeros((n, k))
        onehot[np.arange(n), inverse] = 1.0
        prepared.append((inverse, onehot, onehot.sum(axis=0)))
    scores = np.zeros((len(labelings), n))
    chunk = max(1, _CHUNK_BYTES // (8 * n))
    for lo in range(0, n, chunk) if any(p is not None for p in prepared) else ():
        hi = min(n, lo + chunk)
        rows = np.arange(hi - lo)
        dist = np.asarray(distances(points[lo:hi], points), dtype=np.float64)
        dist[rows, np.arange(lo, hi)] = 0.0  # a row's distance to itself
        for i, item in enumerate(prepared):
            if item is None:
                continue
            inverse, onehot, counts = item
            sums = dist @ onehot  # (rows, k): total distance to each cluster
            own = inverse[lo:hi]
            size = counts[own]
            a = sums[rows, own] / np.maximum(size - 1, 1)
            other = sums / counts
            other[rows, own] = np.inf
            b = other.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (b - a) / np.maximum(a, b)
            s[size == 1] = 0.0
            scores[i, lo:hi] = np.nan_to_num(s)
    return [math.nan if item is None else float(scores[i].mean()) for i, item in enumerate(prepared)]


def _warm_centers(work: Dataset, previous: Float64Array, k: int, assign: Any) -> Float64Array | None:
    extra = driver.farthest_points(work, previous, assign, k - previous.shape[0])
    if extra.shape[0] < k - previous.shape[0]:
        return None
    return np.concatenate([previous, extra])


def sweep(
    X: Any,
    n_clusters: Iterable[int] | int = range(2, 21),
    *,
    seed: int = 0,
    sample_weight: Any = None,
    features: Any = None,
    backend: Any = "numpy",
    distance: Any = "l2",
    init: Any = "auto",
    n_init: int | str = "auto",
    max_iter: int = 300,
    tol: float = 1e-4,
    compress: bool | str = "auto",
    silhouette_size: int = SILHOUETTE_SIZE,
    warm_start: bool = False,
) -> SweepResult:
    """Fit every ``k`` of ``n_clusters`` on ``X`` and score it (see the module docstring).

    The parameters are :class:`~kmeans.KMeans`'s, shared by every ``k``. ``backend="spark-ml"``
    runs the fits on the ``spark-rdd`` engine (this library's Lloyd on one cached dataset).
    """
    ks = _check_ks(n_clusters)
    if isinstance(silhouette_size, bool) or not isinstance(silhouette_size, int) or silhouette_size < 2:
        raise ValidationError(f"silhouette_size must be an integer >= 2, got {silhouette_size!r}")
    template = KMeans(
        n_clusters=ks[-1],
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        seed=seed,
        backend=backend,
        distance=distance,
        compress=compress,
    )
    engine, spec = template._spec()
    if getattr(engine, "name", None) == "spark-ml":
        engine = registry.backends["spark-rdd"]
    if is_scipy_sparse(X):
        raise ValidationError(
            "sweep does not take sparse input yet (its sample and scatter are dense): use X.toarray()"
        )
    dataset = input_dataset(engine, spec, X, sample_weight, features)[0]
    if ks[-1] > dataset.n_rows:
        raise ValidationError(f"n_clusters={ks[-1]} is larger than the number of rows ({dataset.n_rows})")
    assign = spec.distance.assign
    work = dataset.compress() if driver.should_compress(dataset, spec.compress) else dataset
    run = optional(engine, "run_lloyd") or driver.lloyd
    try:
        sample, rows = _sample(dataset, silhouette_size, derive_seed(spec.seed, _SAMPLE_STREAM))
        total = _moments(work)
        scatter = _scatter(work, total.total / total.weight)
        distances = optional(assign, "distances") or assign.pairwise
        out: dict[str, list[Any]] = {name: [] for name in ("inertia", "ch", "n_iter", "centers", "labels")}
        previous: Float64Array | None = None
        few = driver.distinct_points(work, ks[-1], assign) if ks[-1] > 1 else None
        for k in ks:
            fit_spec: FitSpec = attrs.evolve(spec, n_clusters=k, compress=False)
            start = _warm_centers(work, previous, k, assign) if warm_start and previous is not None else None
            if few is not None and few.shape[0] < k:  # KMeans' rule: the points are the optimum, no update
                if previous is None or previous.shape[0] <= few.shape[0]:
                    _warn_few_points(few.shape[0], k, exact=True)
                centers, n_iter = driver.padded_centers(few, k), 0
                inertia: Any = driver.evaluate(work, centers, assign)[0]  # as fit_restarts' (float-like)
            elif start is not None:
                lloyd = run(
                    work, start, assign, spec.distance.update, max_iter=spec.max_iter, tol=spec.tol, seed=spec.seed
                )
                centers, inertia, n_iter = lloyd.centers, lloyd.inertia, lloyd.n_iter
            else:
                result = driver.fit_restarts(work, fit_spec, run=run)
                centers, inertia, n_iter = result.centers, result.inertia, result.n_iter
            previous = np.asarray(centers, dtype=np.float64)
            labels = assign.assign(sample, previous)[0].astype(np.int32)
            weights, sums = _cluster_sums(work, previous, assign)
            out["inertia"].append(float(inertia))
            out["n_iter"].append(int(n_iter))
            out["centers"].append(previous)
            out["labels"].append(labels)
            out["ch"].append(calinski_harabasz(weights, sums, total, scatter))
    finally:
        for data in (work, dataset) if work is not dataset else (dataset,):
            release = optional(data, "release")
            if release is not None:
                release()
    return SweepResult(
        ks=np.asarray(ks, dtype=np.int64),
        inertia=np.asarray(out["inertia"]),
        silhouette=np.asarray(silhouettes(sample, out["labels"], distances)),
        calinski_harabasz=np.asarray(out["ch"]),
        n_iter=np.asarray(out["n_iter"], dtype=np.int64),
        centers=tuple(out["centers"]),
        sample=sample,
        sample_rows=rows,
        sample_labels=tuple(out["labels"]),
        seed=spec.seed,
        warm_start=warm_start,
    )


def parse_ks(text: str) -> list[int]:
    """``"2..20"`` (inclusive), ``"2,4,8"`` or a mix (``"2..5,8"``) as a list of ints."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("..")
        try:
            values.extend(range(int(lo), int(hi) + 1) if sep else [int(part)])
        except ValueError:
            raise ValidationError(f"cannot read k values {text!r}: use a range 2..20 or a list 2,4,8") from None
    return values


__all__: Sequence[str] = ("SweepResult", "calinski_harabasz", "parse_ks", "silhouette", "silhouettes", "sweep")
