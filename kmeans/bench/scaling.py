"""``kmeans bench scaling``: how time per iteration and peak memory grow with rows, k, d, partitions.

One parameter is swept at a time, the others held at their base values, on seeded
synthetic data: Gaussian blobs (float32) or random 8-bit "images" (uint8 rows). Every
engine starts from the same initial centers and runs ``iterations`` Lloyd updates
(``tol=0``; fewer when a fit reaches an exact fixed point: times are per iteration run).
Engines: every available registered backend, scikit-learn's ``KMeans(algorithm="lloyd")``
as an outside reference, and faiss when it is installed.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import KMeans, __version__, registry
from kmeans.bench._common import CENTER_OFFSET, fit_slope, fmt_s, measure_memory, repeat
from kmeans.bench._spark import get_or_start_session, spark_available
from kmeans.errors import KMeansError

PARAMS = ("rows", "k", "d", "partitions")


@attrs.frozen
class ScalingGrid:
    """The sweeps. ``base_*`` hold the other parameters while one is swept; an engine
    stops growing a sweep once one fit took more than ``max_seconds``."""

    rows: tuple[int, ...] = (10_000, 100_000, 1_000_000, 10_000_000, 20_000_000)
    ks: tuple[int, ...] = (2, 8, 32, 128, 256)
    ds: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    partitions: tuple[int, ...] = (1, 2, 4, 8)
    base_rows: int = 100_000
    base_k: int = 8
    base_d: int = 4
    base_partitions: int = 2
    partition_rows: int = 1_000_000
    iterations: int = 10
    data: str = "blobs"
    engines: tuple[str, ...] | None = None
    max_seconds: float = 60.0
    repeats: int = 3
    seed: int = 0


FULL_SCALING = ScalingGrid()
QUICK_SCALING = ScalingGrid(
    rows=(10_000, 100_000, 1_000_000),
    ks=(2, 16, 128),
    ds=(2, 8, 32),
    partitions=(1, 2),
    base_rows=50_000,
    partition_rows=200_000,
    iterations=5,
    max_seconds=10.0,
    repeats=2,
)


def make_data(kind: str, n: int, d: int, seed: int) -> NDArray[Any]:
    """Seeded synthetic rows: ``"blobs"`` (float32, 16 Gaussian blobs) or ``"image"`` (uint8 uniform)."""
    rng = np.random.default_rng(seed)
    if kind == "image":
        return rng.integers(0, 256, size=(n, d), dtype=np.uint8)
    centers = rng.uniform(0, 100, size=(16, d)).astype(np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X *= 5.0
    X += centers[rng.integers(0, 16, size=n)]
    return X


def initial_centers(X: NDArray[Any], k: int, seed: int) -> NDArray[np.float64]:
    """``k`` rows of ``X`` drawn with ``seed`` (offset off the integer grid for 8-bit data)."""
    rng = np.random.default_rng(seed + 1)
    centers = X[np.sort(rng.choice(X.shape[0], size=k, replace=False))].astype(np.float64)
    if X.dtype.kind in "iu":
        centers += np.resize(CENTER_OFFSET, X.shape[1])
    return centers


@attrs.frozen
class Point:
    """One measured point of one sweep."""

    param: str
    value: int
    engine: str
    seconds: tuple[float, ...]
    iterations: int
    peak_bytes: int
    input_bytes: int
    inertia: float

    @property
    def seconds_per_iter(self) -> float:
        return statistics.median(self.seconds) / max(self.iterations, 1)


class Engine:
    """A way to run ``iterations`` Lloyd updates from given centers; ``memory`` is "traced" or "rss"."""

    name: str = ""
    memory: str = "traced"
    partitioned: bool = False

    def fit(self, X: NDArray[Any], centers: NDArray[np.float64], iterations: int, partitions: int) -> tuple[float, int]:
        """Fit; return ``(inertia, iterations actually run)``."""
        raise NotImplementedError


@attrs.define
class BackendEngine(Engine):
    name: str
    memory: str = "traced"
    partitioned: bool = False
    partition_field: str | None = None

    def fit(self, X: NDArray[Any], centers: NDArray[np.float64], iterations: int, partitions: int) -> tuple[float, int]:
        backend = registry.backends[self.name]
        if self.partition_field is not None:
            backend = attrs.evolve(backend, **{self.partition_field: partitions})
        model = KMeans(n_clusters=centers.shape[0], init=centers, max_iter=iterations, tol=0.0, backend=backend)
        model.fit(X)
        return float(model.inertia_), int(model.n_iter_)


class SklearnEngine(Engine):
    name = "sklearn"

    def fit(self, X: NDArray[Any], centers: NDArray[np.float64], iterations: int, partitions: int) -> tuple[float, int]:
        from sklearn.cluster import KMeans as SKMeans

        Xf = X if X.dtype.kind == "f" else X.astype(np.float64)
        init = centers.astype(Xf.dtype)
        model = SKMeans(centers.shape[0], init=init, n_init=1, max_iter=iterations, tol=0.0, algorithm="lloyd")
        model.fit(Xf)
        return float(model.inertia_), int(model.n_iter_)


class FaissEngine(Engine):
    name = "faiss"
    memory = "rss"

    def fit(self, X: NDArray[Any], centers: NDArray[np.float64], iterations: int, partitions: int) -> tuple[float, int]:
        import faiss  # type: ignore[import-not-found,unused-ignore]

        Xf = np.ascontiguousarray(X, dtype=np.float32)
        km = faiss.Kmeans(
            Xf.shape[1], centers.shape[0], niter=iterations, verbose=False, max_points_per_centroid=1 << 30
        )
        km.train(Xf, init_centroids=np.ascontiguousarray(centers, dtype=np.float32))
        dist, _ = km.index.search(Xf, 1)
        return float(dist.sum()), iterations


def _partition_field(backend: Any) -> str | None:
    if not attrs.has(type(backend)):
        return None
    fields = attrs.fields_dict(type(backend))
    return next((f for f in ("n_partitions", "num_partitions", "partitions") if f in fields), None)


@attrs.define
class ScalingResult:
    grid: ScalingGrid
    points: list[Point] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    unavailable: dict[str, str] = attrs.field(factory=dict)
    wall_seconds: float = 0.0

    def params(self) -> list[str]:
        return [p for p in PARAMS if any(pt.param == p for pt in self.points)]

    def engines(self) -> list[str]:
        return list(dict.fromkeys(pt.engine for pt in self.points))

    def series(self, param: str, engine: str) -> list[Point]:
        return sorted((p for p in self.points if p.param == param and p.engine == engine), key=lambda p: p.value)

    def base_description(self, param: str) -> str:
        g = self.grid
        base = {
            "rows": f"rows={g.base_rows if param != 'partitions' else g.partition_rows:,}",
            "k": f"k={g.base_k}",
            "d": f"d={g.base_d}",
            "partitions": f"partitions={g.base_partitions}",
        }
        return ", ".join(v for p, v in base.items() if p != param) + f", {g.iterations} iterations, {g.data}"

    def slopes(self) -> dict[tuple[str, str], tuple[float | None, float | None]]:

        out = {}
        for param in self.params():
            for engine in self.engines():
                s = self.series(param, engine)
                if len(s) >= 2:
                    xs = [float(p.value) for p in s]
                    out[(param, engine)] = (
                        fit_slope(xs, [p.seconds_per_iter for p in s]),
                        fit_slope(xs, [float(p.peak_bytes) for p in s]),
                    )
        return out

    def summary_lines(self) -> list[str]:
        lines = []
        for (param, engine), (ts, ms) in self.slopes().items():
            t = "–" if ts is None else f"{ts:.2f}"
            m = "–" if ms is None else f"{ms:.2f}"
            lines.append(f"{param:>10} {engine:>10}: time slope {t}, memory slope {m}")
        lines += [f"not available: {e}: {why}" for e, why in self.unavailable.items()]
        return lines


def _engines(grid: ScalingGrid, result: ScalingResult) -> list[Engine]:
    wanted = grid.engines
    out: list[Engine] = []
    spark_problem = spark_available()
    for name in registry.backends:
        if wanted is not None and name not in wanted:
            continue
        if name.startswith("spark") and spark_problem is not None:
            result.unavailable[name] = spark_problem
            continue
        try:
            backend = registry.backends[name]
        except KMeansError as exc:
            result.unavailable[name] = str(exc)
            continue
        spark = name.startswith("spark")
        out.append(
            BackendEngine(
                name, memory="rss" if spark else "traced", partitioned=spark, partition_field=_partition_field(backend)
            )
        )
    for name, module, cls in (("sklearn", "sklearn", SklearnEngine), ("faiss", "faiss", FaissEngine)):
        if wanted is not None and name not in wanted:
            continue
        if importlib.util.find_spec(module) is None:
            result.unavailable[name] = f"{module} is not installed"
            continue
        out.append(cls())
    unknown = set(wanted or ()) - {e.name for e in out} - set(result.unavailable)
    for name in sorted(unknown):
        result.unavailable[name] = "unknown engine (use a registered backend name, sklearn or faiss)"
    return out


def _plan(grid: ScalingGrid, engines: list[Engine]) -> list[tuple[str, int, Engine]]:
    plan = []
    for param, values in (("rows", grid.rows), ("k", grid.ks), ("d", grid.ds), ("partitions", grid.partitions)):
        for engine in engines:
            if param == "partitions" and not engine.partitioned:
                continue
            plan += [(param, v, engine) for v in sorted(values)]
    return plan


def run_scaling(
    grid: ScalingGrid, progress: Callable[[str], None] | None = None, on_start: Callable[[int], None] | None = None
) -> ScalingResult:
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    result = ScalingResult(grid)
    engines = _engines(grid, result)
    session, started_here = None, False
    if any(e.partitioned for e in engines):
        say("starting Spark (local[2])")
        session, started_here = get_or_start_session()
    say("warming up the engines")
    warm = make_data(grid.data, 256, 2, grid.seed)
    for engine in engines:  # imports, thread pools, Spark workers: kept out of the timings
        try:
            engine.fit(warm, initial_centers(warm, 2, grid.seed), 1, 1)
        except Exception as exc:
            result.unavailable[engine.name] = f"{type(exc).__name__}: {exc}"
    engines = [e for e in engines if e.name not in result.unavailable]
    plan = _plan(grid, engines)
    if on_start is not None:
        on_start(len(plan))
    too_slow: set[tuple[str, str]] = set()
    data_cache: dict[tuple[int, int], NDArray[Any]] = {}
    try:
        for param, value, engine in plan:
            n = value if param == "rows" else grid.partition_rows if param == "partitions" else grid.base_rows
            k = value if param == "k" else grid.base_k
            d = value if param == "d" else grid.base_d
            parts = value if param == "partitions" else grid.base_partitions
            say(f"{param}: {engine.name} at {param}={value:,}")
            if (param, engine.name) in too_slow:
                result.skipped.append(
                    f"{engine.name} at {param}={value:,} (a smaller size took over {grid.max_seconds:g} s)"
                )
                continue
            if param == "partitions" and engine.partitioned and getattr(engine, "partition_field", None) is None:
                result.skipped.append(f"{engine.name} at partitions={value} (the backend has no partition-count field)")
                continue
            if (n, d) not in data_cache:
                data_cache.clear()
                data_cache[(n, d)] = make_data(grid.data, n, d, grid.seed)
            X = data_cache[(n, d)]
            if k > X.shape[0]:
                continue
            centers = initial_centers(X, k, grid.seed)
            fits: list[tuple[float, int]] = []
            try:
                fit = functools.partial(engine.fit, X, centers, grid.iterations, parts)
                times, fits = repeat(fit, grid.repeats, grid.max_seconds / 4)
                with measure_memory(trace=engine.memory == "traced") as peak:
                    fit()
            except Exception as exc:  # an engine failing at one size is a result to report, not a crash
                result.skipped.append(f"{engine.name} at {param}={value:,}: {type(exc).__name__}: {exc}")
                too_slow.add((param, engine.name))
                continue
            inertia, n_iter = fits[0]
            result.points.append(
                Point(
                    param=param,
                    value=value,
                    engine=engine.name,
                    seconds=tuple(times),
                    iterations=n_iter,
                    peak_bytes=peak.traced if engine.memory == "traced" else peak.rss,
                    input_bytes=int(X.nbytes),
                    inertia=inertia,
                )
            )
            if min(times) > grid.max_seconds:
                too_slow.add((param, engine.name))
    finally:
        if started_here and session is not None:
            session.stop()
    result.wall_seconds = time.perf_counter() - t_start
    return result


def render_scaling_markdown(result: ScalingResult) -> str:
    g = result.grid
    out = [
        "# How the cost of K-means grows",
        "",
        f"kmeans {__version__}; data: {g.data} (seed {g.seed}); {g.iterations} Lloyd iterations with `tol=0` from "
        "the same initial centers; seconds per iteration = median fit time / iterations run (one-off costs "
        "such as building the dataset are spread over the iterations); peak memory above the start of the "
        "fit: traced NumPy/Python allocations for in-process engines, sampled resident memory of the process "
        "tree (JVM and Python workers included) for Spark and faiss.",
        "",
    ]
    for param in result.params():
        engines = [e for e in result.engines() if result.series(param, e)]
        out += [f"## {param} ({result.base_description(param)})", ""]
        out.append(f"| {param} | " + " | ".join(f"{e}: s/iter · peak MiB (x input)" for e in engines) + " |")
        out.append("|---" * (len(engines) + 1) + "|")
        values = sorted({p.value for p in result.points if p.param == param})
        for v in values:
            cells = []
            for e in engines:
                pt = next((p for p in result.series(param, e) if p.value == v), None)
                if pt is None:
                    cells.append("–")
                else:
                    ratio = pt.peak_bytes / pt.input_bytes if pt.input_bytes else 0.0
                    note = f" ({pt.iterations} it)" if pt.iterations != g.iterations else ""
                    cells.append(f"{fmt_s(pt.seconds_per_iter)}{note} · {pt.peak_bytes / 2**20:.1f} ({ratio:.2f}x)")
            out.append(f"| {v:,} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Fitted log-log slopes", "", "| parameter | engine | time slope | memory slope |", "|---|---|---|---|"]
    for (param, engine), (ts, ms) in result.slopes().items():
        out.append(
            f"| {param} | {engine} | {'–' if ts is None else f'{ts:.2f}'} | {'–' if ms is None else f'{ms:.2f}'} |"
        )
    out += [
        "",
        "A slope of 1 means cost proportional to the parameter; 0 means independent of it.",
        "",
    ]
    if result.skipped or result.unavailable:
        out += ["## Not measured", ""]
        out += [f"- {s}" for s in result.skipped]
        out += [f"- {e}: not available: {why}" for e, why in result.unavailable.items()]
        out.append("")
    out += [f"Total wall time: {result.wall_seconds:.0f} s. Regenerate with `kmeans bench scaling --out DIR`.", ""]
    return "\n".join(out)


def write_scaling_report(result: ScalingResult, out_dir: Path) -> list[Path]:
    from kmeans.bench.plots import scaling_figures
    from kmeans.io import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "kmeans_version": __version__,
        "grid": attrs.asdict(result.grid),
        "points": [attrs.asdict(p) for p in result.points],
        "skipped": result.skipped,
        "unavailable": result.unavailable,
        "wall_seconds": result.wall_seconds,
    }
    written = []
    for name, text in (("scaling.md", render_scaling_markdown(result)), ("scaling.json", json.dumps(data, indent=1))):
        write_atomic(out_dir / name, text.encode("utf-8"))
        written.append(out_dir / name)
    return written + scaling_figures(result, out_dir)
