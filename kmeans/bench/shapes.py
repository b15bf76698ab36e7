"""``kmeans bench shapes``: fit time against scikit-learn, scikit-learn-intelex and faiss, d=3 to d=768.

Every engine fits the same data from the same initial centers with ``tol=0`` for a fixed
number of Lloyd iterations; rounds are interleaved (one fit of every engine per round),
so the load of a shared machine falls on all of them alike. Each cell reports the median
fit time, the iterations actually run (scikit-learn stops early once no label changes)
and the final inertia, computed the same way for every engine (float64, against the
centers it returned). The ratio of a cell is the fastest reference engine's median over
ours. Reference engines that are not installed are reported as unavailable.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import KMeans
from kmeans.bench._common import distinct_colors, inertia_of, load_raccoon
from kmeans.bench.scaling import make_data

#: Engines other than ours, in report order, with the module each needs.
REFERENCES: dict[str, str] = {"sklearn": "sklearn", "sklearnex": "sklearnex", "faiss": "faiss"}


@attrs.frozen
class Cell:
    """One benchmark case: data, ``k``, Lloyd iterations."""

    name: str
    data: str  # "raccoon-colors", "raccoon-pixels" or "blobs"
    k: int
    iterations: int
    n: int = 0
    d: int = 3


FULL_CELLS: tuple[Cell, ...] = (
    Cell("raccoon colors k=10", "raccoon-colors", 10, 50),
    Cell("raccoon colors k=256", "raccoon-colors", 256, 20),
    Cell("raccoon colors k=1024", "raccoon-colors", 1024, 10),
    Cell("raccoon pixels k=256", "raccoon-pixels", 256, 20),
    Cell("blobs 1M x 16, k=64", "blobs", 64, 20, 1_000_000, 16),
    Cell("blobs 200k x 64, k=256", "blobs", 256, 20, 200_000, 64),
    Cell("blobs 100k x 128, k=1024", "blobs", 1024, 10, 100_000, 128),
    Cell("blobs 50k x 768, k=256", "blobs", 256, 10, 50_000, 768),
    Cell("blobs 1M x 32, k=4096", "blobs", 4096, 20, 1_000_000, 32),
)
QUICK_CELLS: tuple[Cell, ...] = (
    Cell("raccoon colors k=64 (1/4 image)", "raccoon-colors-small", 64, 5),
    Cell("blobs 20k x 16, k=32", "blobs", 32, 5, 20_000, 16),
    Cell("blobs 5k x 128, k=64", "blobs", 64, 5, 5_000, 128),
)


@attrs.frozen
class Data:
    points: NDArray[Any]  # what every engine fits (float32)
    weights: NDArray[np.float64] | None
    ours: NDArray[Any]  # what we are given (the uint8 image for raw pixels: we fold it ourselves)
    centers: NDArray[np.float64]


def make_cell_data(cell: Cell, seed: int = 0) -> Data:
    """The cell's rows, weights and shared initial centers (``k`` distinct rows drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    weights: NDArray[np.float64] | None = None
    if cell.data.startswith("raccoon"):
        pixels = load_raccoon(4 if cell.data.endswith("small") else 1).reshape(-1, 3)
        if cell.data.startswith("raccoon-colors"):
            colors, weights = distinct_colors(pixels)
            points = colors.astype(np.float32)
            ours: NDArray[Any] = points
        else:
            points = pixels.astype(np.float32)
            ours = pixels
    else:
        points = make_data("blobs", cell.n, cell.d, seed)
        ours = points
    distinct = np.unique(points, axis=0) if points.shape[0] < 2_000_000 else points
    centers = distinct[rng.choice(distinct.shape[0], cell.k, replace=False)].astype(np.float64)
    return Data(points, weights, ours, centers)


Fit = Callable[[Data, int], tuple[NDArray[np.float64], int]]


def _fit_ours(data: Data, iterations: int) -> tuple[NDArray[np.float64], int]:
    model = KMeans(n_clusters=data.centers.shape[0], init=data.centers, max_iter=iterations, tol=0.0, n_init=1)
    model.fit(data.ours, sample_weight=data.weights)
    return np.asarray(model.cluster_centers_), int(model.n_iter_)


def _fit_sklearn_like(cls: Any) -> Fit:
    def fit(data: Data, iterations: int) -> tuple[NDArray[np.float64], int]:
        model = cls(
            n_clusters=data.centers.shape[0],
            init=data.centers,
            n_init=1,
            max_iter=iterations,
            tol=0.0,
            algorithm="lloyd",
        )
        model.fit(data.points, sample_weight=data.weights)
        return np.asarray(model.cluster_centers_, dtype=np.float64), int(model.n_iter_)

    return fit


def _fit_faiss(data: Data, iterations: int) -> tuple[NDArray[np.float64], int]:
    import faiss

    x = np.ascontiguousarray(data.points, dtype=np.float32)
    km = faiss.Kmeans(
        x.shape[1], data.centers.shape[0], niter=iterations, verbose=False, max_points_per_centroid=1 << 30
    )
    weights = None if data.weights is None else np.ascontiguousarray(data.weights, dtype=np.float32)
    km.train(x, weights=weights, init_centroids=np.ascontiguousarray(data.centers, dtype=np.float32))
    return np.asarray(km.centroids, dtype=np.float64), iterations


def engines(names: tuple[str, ...] | None = None) -> tuple[dict[str, Fit], dict[str, str]]:
    """``({name: fit}, {name: why unavailable})`` for ours and the installed reference engines."""
    available: dict[str, Fit] = {"kmeans": _fit_ours}
    missing: dict[str, str] = {}
    for name, module in REFERENCES.items():
        if names is not None and name not in names:
            continue
        if importlib.util.find_spec(module) is None:
            missing[name] = f"{module} is not installed (pip install 'kmeans[bench]')"
            continue
        if name == "sklearn":
            from sklearn.cluster import KMeans as SKKMeans

            available[name] = _fit_sklearn_like(SKKMeans)
        elif name == "sklearnex":
            from sklearnex.cluster import KMeans as SKXKMeans

            available[name] = _fit_sklearn_like(SKXKMeans)
        else:
            available[name] = _fit_faiss
    return available, missing


@attrs.frozen
class EngineResult:
    times: tuple[float, ...]
    n_iter: int
    inertia: float

    @property
    def median(self) -> float:
        return float(statistics.median(self.times))


@attrs.frozen
class CellResult:
    cell: Cell
    results: dict[str, EngineResult]

    def ratio(self) -> float | None:
        """Fastest reference engine's median fit time over ours (> 1: we are faster)."""
        refs = [r.median for name, r in self.results.items() if name != "kmeans"]
        if not refs or "kmeans" not in self.results:
            return None
        return min(refs) / self.results["kmeans"].median


def run_cell(cell: Cell, fits: dict[str, Fit], repeats: int, seed: int = 0) -> CellResult:
    """``repeats`` interleaved rounds of every engine on ``cell`` (one untimed warm-up fit each)."""
    data = make_cell_data(cell, seed)
    times: dict[str, list[float]] = {name: [] for name in fits}
    last: dict[str, tuple[NDArray[np.float64], int]] = {}
    m = max(2000, 2 * cell.k)
    small = Data(data.points[:m], None if data.weights is None else data.weights[:m], data.ours[:m], data.centers)
    for fit in fits.values():  # warm-up: compiled kernels, thread pools, imports
        fit(small, 1)
    for _ in range(repeats):
        for name, fit in fits.items():
            t0 = time.perf_counter()
            last[name] = fit(data, cell.iterations)
            times[name].append(time.perf_counter() - t0)
    results = {
        name: EngineResult(tuple(times[name]), last[name][1], inertia_of(data.points, last[name][0], data.weights))
        for name in fits
    }
    return CellResult(cell, results)


def format_table(rows: list[CellResult], names: list[str]) -> str:
    """A Markdown table: medians (iterations run), inertia relative to ours, the ratio."""
    head = "| cell | " + " | ".join(names) + " | ratio |"
    lines = [head, "|" + "---|" * (len(names) + 2)]
    for row in rows:
        ours = row.results.get("kmeans")
        cells = []
        for name in names:
            r = row.results.get(name)
            if r is None:
                cells.append("n/a")
                continue
            text = f"{r.median:.3f} s"
            if r.n_iter != row.cell.iterations:
                text += f" ({r.n_iter} it)"
            if ours is not None and name != "kmeans":
                text += f", inertia {r.inertia / ours.inertia - 1:+.1e}"
            cells.append(text)
        ratio = row.ratio()
        lines.append(f"| {row.cell.name} | " + " | ".join(cells) + f" | {'-' if ratio is None else f'{ratio:.2f}x'} |")
    return "\n".join(lines)
