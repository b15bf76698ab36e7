"""``kmeans bench paper``: the paper's Tables 1-3 and Figures 5-9, redone on this machine.

Every implementation clusters the raccoon's pixels for each ``(k, iterations)`` cell
with ``tol=0`` (exactly that many Lloyd updates), starting from the same initial
centers (:func:`kmeans.bench._common.shared_centers`), so times are comparable and
the final inertias must agree. The implementations are every registered backend that
can run here (``KMeans(..., backend=name).fit(pixels)``, the natural call) and the
ports of the paper's own code in :mod:`kmeans.bench.baselines`.
"""

from __future__ import annotations

import functools
import itertools
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import KMeans, __version__, registry
from kmeans.bench import baselines, plots
from kmeans.bench._common import (
    CENTER_OFFSET,
    Stats,
    distinct_colors,
    fmt_s,
    inertia_of,
    load_raccoon,
    repeat,
    shared_centers,
)
from kmeans.bench._spark import get_or_start_session, spark_available
from kmeans.bench.paper_tables import (  # re-exported: the paper's numbers, as before
    MLLIB_DEFAULT_ITER,
    PAPER_ITERATIONS,
    PAPER_KS,
    PAPER_TABLE1,
    PAPER_TABLE2,
    PAPER_TABLE3,
)
from kmeans.bench.plots import figure5_series
from kmeans.errors import KMeansError

#: Which paper table each implementation reproduces, and which port it is measured against.
PAPER_TABLE_OF = {"numpy": 1, "paper-numpy": 1, "spark-rdd": 2, "paper-rdd": 2, "spark-ml": 3, "paper-ml": 3}
PORT_OF = {"numpy": "paper-numpy", "spark-rdd": "paper-rdd", "spark-ml": "paper-ml"}

Cell = tuple[int, int]


@attrs.frozen
class PaperGrid:
    """What ``kmeans bench paper`` runs.

    ``rdd_port_cells`` / ``ml_port_ks`` cap the slow paper ports (``None``: every cell);
    ``repeats`` runs per cell at most, stopping early once a cell used ``cell_budget``
    seconds (at least one run); ``downsample`` > 1 keeps every n-th pixel per axis.
    """

    ks: tuple[int, ...] = PAPER_KS
    iterations: tuple[int, ...] = PAPER_ITERATIONS
    repeats: int = 5
    cell_budget: float = 5.0
    downsample: int = 1
    rdd_port_cells: frozenset[Cell] | None = frozenset(
        {(k, 1) for k in PAPER_KS} | {(k, 5) for k in PAPER_KS} | {(10, 50)}
    )
    ml_port_ks: tuple[int, ...] | None = None
    only: tuple[str, ...] | None = None
    seed: int = 0

    def cells(self) -> list[Cell]:
        return [(k, it) for k in self.ks for it in self.iterations]


FULL_GRID = PaperGrid()
QUICK_GRID = PaperGrid(
    ks=(2, 10),
    iterations=(1, 5),
    repeats=3,
    cell_budget=1.0,
    downsample=4,
    rdd_port_cells=frozenset({(2, 1)}),
    ml_port_ks=(2,),
)


@attrs.frozen
class Run:
    """One timed run: wall seconds, final inertia, per-iteration seconds when known."""

    seconds: float
    inertia: float
    iteration_times: tuple[float, ...] = ()


@attrs.frozen
class Measurement:
    runs: tuple[Run, ...]

    @property
    def stats(self) -> Stats:
        return Stats(tuple(r.seconds for r in self.runs))

    @property
    def median_run(self) -> Run:
        ordered = sorted(self.runs, key=lambda r: r.seconds)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def inertia(self) -> float:
        return self.runs[0].inertia


class Implementation(Protocol):
    name: str
    title: str
    shared_init: bool

    def cells(self, grid: PaperGrid) -> list[Cell]: ...

    def run(self, img: NDArray[np.uint8], k: int, iterations: int, centers: NDArray[np.float64]) -> Run: ...


@attrs.define
class BackendImpl:
    """A registered backend, called the natural way: ``KMeans(...).fit(pixels)``."""

    name: str
    shared_init: bool = True

    @property
    def title(self) -> str:
        return f"`{self.name}` (this library)"

    def cells(self, grid: PaperGrid) -> list[Cell]:
        return grid.cells()

    def run(self, img: NDArray[np.uint8], k: int, iterations: int, centers: NDArray[np.float64]) -> Run:
        init: Any = centers if self.shared_init else "k-means++"
        model = KMeans(n_clusters=k, init=init, max_iter=iterations, tol=0.0, seed=0, backend=self.name)
        t0 = time.perf_counter()
        model.fit(img.reshape(-1, img.shape[-1]))
        seconds = time.perf_counter() - t0
        ends = [0.0] + [h.elapsed for h in model.history_]
        return Run(seconds, float(model.inertia_), tuple(b - a for a, b in itertools.pairwise(ends)))


_PortOut = tuple[NDArray[Any], tuple[float, ...]]
PortFit = Callable[[NDArray[np.uint8], int, int, NDArray[np.float64]], _PortOut]


@attrs.define
class PortImpl:
    """One of the paper's functions (:mod:`kmeans.bench.baselines`), timed as the paper did: the whole call.

    ``fit(img, k, iterations, centers)`` returns ``(final means, per-iteration seconds)``;
    ``select`` picks the cells it runs (the slow ports are capped).
    """

    name: str
    title: str
    fit: PortFit
    select: Callable[[PaperGrid], list[Cell]]
    colors: NDArray[Any]
    counts: NDArray[np.float64]
    shared_init: bool = True

    def cells(self, grid: PaperGrid) -> list[Cell]:
        return self.select(grid)

    def run(self, img: NDArray[np.uint8], k: int, iterations: int, centers: NDArray[np.float64]) -> Run:
        t0 = time.perf_counter()
        means, its = self.fit(img, k, iterations, centers)
        seconds = time.perf_counter() - t0
        return Run(seconds, inertia_of(self.colors, means, self.counts), its)


def numpy_port(colors: NDArray[Any], counts: NDArray[np.float64]) -> PortImpl:
    """Appendix A.1, on every cell."""

    def fit(img: NDArray[np.uint8], k: int, it: int, centers: NDArray[np.float64]) -> _PortOut:
        return baselines.paper_kmeans_numpy(img, k, it, init_centers=centers)[1], ()

    return PortImpl("paper-numpy", "paper's NumPy code (A.1, ported)", fit, PaperGrid.cells, colors, counts)


def rdd_port(sc: Any, colors: NDArray[Any], counts: NDArray[np.float64]) -> PortImpl:
    """Appendix A.2, on ``grid.rdd_port_cells`` only."""

    def fit(img: NDArray[np.uint8], k: int, it: int, centers: NDArray[np.float64]) -> _PortOut:
        _, means, its = baselines.paper_kmeans_spark(sc, img, k, it, init_centers=centers)
        return means, tuple(its)

    def select(grid: PaperGrid) -> list[Cell]:
        cap = grid.rdd_port_cells
        return [c for c in grid.cells() if cap is None or c in cap]

    return PortImpl("paper-rdd", "paper's RDD code (A.2, ported)", fit, select, colors, counts)


def ml_port(spark: Any, colors: NDArray[Any], counts: NDArray[np.float64]) -> PortImpl:
    """Appendix A.3: MLlib's defaults (its own init, up to 20 iterations), one cell per k."""

    def fit(img: NDArray[np.uint8], k: int, it: int, centers: NDArray[np.float64]) -> _PortOut:
        return baselines.paper_kmeans_spark_ml(spark, img, k)[1], ()

    def select(grid: PaperGrid) -> list[Cell]:
        ks = grid.ks if grid.ml_port_ks is None else tuple(k for k in grid.ks if k in grid.ml_port_ks)
        return [(k, MLLIB_DEFAULT_ITER) for k in ks]

    title = "paper's pyspark.ml code (A.3, ported; MLlib's own init and iterations)"
    return PortImpl("paper-ml", title, fit, select, colors, counts, shared_init=False)


@attrs.define
class PaperResult:
    """Everything one ``kmeans bench paper`` run measured."""

    grid: PaperGrid
    image_shape: tuple[int, ...]
    n_distinct: int
    titles: dict[str, str] = attrs.field(factory=dict)
    shared_init: dict[str, bool] = attrs.field(factory=dict)
    measurements: dict[str, dict[Cell, Measurement]] = attrs.field(factory=dict)
    skipped: dict[str, list[Cell]] = attrs.field(factory=dict)
    unavailable: dict[str, str] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)
    spark_start_seconds: float | None = None
    wall_seconds: float = 0.0
    load_before: float | None = None
    load_after: float | None = None
    finished: bool = False

    def median(self, impl: str, cell: Cell) -> float | None:
        m = self.measurements.get(impl, {}).get(cell)
        return None if m is None else m.stats.median

    def to_json(self) -> dict[str, Any]:
        return {
            "kmeans_version": __version__,
            "grid": {
                "ks": list(self.grid.ks),
                "iterations": list(self.grid.iterations),
                "repeats": self.grid.repeats,
                "cell_budget": self.grid.cell_budget,
                "downsample": self.grid.downsample,
                "seed": self.grid.seed,
            },
            "image_shape": list(self.image_shape),
            "n_distinct": self.n_distinct,
            "unavailable": self.unavailable,
            "spark_start_seconds": self.spark_start_seconds,
            "wall_seconds": self.wall_seconds,
            "finished": self.finished,
            "load_average": [self.load_before, self.load_after],
            "results": {
                impl: [
                    {
                        "k": k,
                        "iterations": it,
                        "seconds": [r.seconds for r in m.runs],
                        "inertia": m.inertia,
                        "iteration_times": list(m.median_run.iteration_times),
                    }
                    for (k, it), m in sorted(cells.items())
                ]
                for impl, cells in self.measurements.items()
            },
            "skipped": {impl: [list(c) for c in cells] for impl, cells in self.skipped.items()},
        }


Progress = Callable[[str], None]


def _warm_backend(impl: BackendImpl, img: NDArray[np.uint8]) -> str | None:
    """Run a tiny fit (starting Spark if needed); ``None`` if it worked, else why not.

    A backend that refuses explicit initial centers falls back to its own init.
    """
    small = np.ascontiguousarray(img[::16, ::16])
    centers = shared_centers(small.reshape(-1, 3), 2)
    try:
        impl.run(small, 2, 1, centers)
        return None
    except (KMeansError, NotImplementedError, TypeError) as exc:
        impl.shared_init = False
        try:
            impl.run(small, 2, 1, centers)
        except Exception as exc2:  # any failure means: not usable here, say why
            return f"{type(exc2).__name__}: {exc2}"
        return f"explicit initial centers refused ({exc}); ran with its own init"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _backend_impls(img: NDArray[np.uint8], result: PaperResult, wanted: Callable[[str], bool]) -> list[BackendImpl]:
    impls = []
    spark_problem = spark_available()
    known_first = [n for n in PORT_OF if n in registry.backends]  # numpy, spark-rdd, spark-ml: the paper's order
    for name in known_first + [n for n in registry.backends if n not in PORT_OF]:
        if not wanted(name):
            continue
        if name.startswith("spark") and spark_problem is not None:
            result.unavailable[name] = spark_problem
            continue
        try:
            registry.backends[name]
        except KMeansError as exc:
            result.unavailable[name] = str(exc)
            continue
        impl = BackendImpl(name)
        problem = _warm_backend(impl, img)
        if problem is not None and not impl.shared_init and problem.startswith("explicit"):
            result.notes.append(f"`{name}`: {problem}")
        elif problem is not None:
            result.unavailable[name] = problem
            continue
        impls.append(impl)
    return impls


def run_paper(
    grid: PaperGrid,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
    on_partial: Callable[[PaperResult], object] | None = None,
) -> PaperResult:
    """Measure every implementation on ``grid``; see the module docstring.

    ``on_partial`` is called with the result so far after each implementation finishes,
    so that an interrupted run still leaves its measurements behind.
    """
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    img = load_raccoon(grid.downsample)
    pixels = img.reshape(-1, 3)
    colors, counts = distinct_colors(pixels)
    result = PaperResult(grid=grid, image_shape=img.shape, n_distinct=int(colors.shape[0]), load_before=_load())

    def wanted(name: str) -> bool:
        return grid.only is None or name in grid.only

    session, started_here = None, False
    needs_spark = any(wanted(n) for n in registry.backends if n.startswith("spark")) or any(
        wanted(n) for n in ("paper-rdd", "paper-ml")
    )
    spark_problem = spark_available()
    if needs_spark and spark_problem is None:
        say("starting Spark (local[2])")
        t0 = time.perf_counter()
        session, started_here = get_or_start_session()
        session.sparkContext.parallelize(range(4), 2).count()
        result.spark_start_seconds = time.perf_counter() - t0
    try:
        say("warming up the backends")
        impls: list[Any] = list(_backend_impls(img, result, wanted))
        if wanted("paper-numpy"):
            impls.append(numpy_port(colors, counts))
        for port in ("paper-rdd", "paper-ml"):
            if not wanted(port):
                continue
            if session is None:
                result.unavailable[port] = spark_problem or "Spark was not started"
                continue
            if port == "paper-rdd":
                impl = rdd_port(session.sparkContext, colors, counts)
            else:
                impl = ml_port(session, colors, counts)
            # The first RDD / SQL jobs pay for Python worker start-up and JVM warm-up: keep it out of the table.
            say(f"warming up {port}")
            small = np.ascontiguousarray(img[::16, ::16])
            impl.run(small, 2, 1, shared_centers(small, 2))
            impls.append(impl)
        plan = [(impl, cell) for impl in impls for cell in impl.cells(grid)]
        if on_start is not None:
            on_start(len(plan))
        for impl in impls:
            result.titles[impl.name] = impl.title
            result.shared_init[impl.name] = impl.shared_init
            run_cells = impl.cells(grid)
            if impl.name == "paper-rdd":
                result.skipped[impl.name] = [c for c in grid.cells() if c not in run_cells]
            if impl.name == "paper-ml":
                result.skipped[impl.name] = [
                    (k, MLLIB_DEFAULT_ITER) for k in grid.ks if (k, MLLIB_DEFAULT_ITER) not in run_cells
                ]
            cells: dict[Cell, Measurement] = {}
            for k, it in run_cells:
                say(f"{impl.name}: k={k}, {it} iterations")
                centers = shared_centers(pixels, k, grid.seed)
                try:
                    _, runs = repeat(functools.partial(impl.run, img, k, it, centers), grid.repeats, grid.cell_budget)
                except Exception as exc:  # a crash (e.g. a JVM out of memory) is a result: report it, go on
                    why = f"failed at k={k}, {it} iterations: {type(exc).__name__}: {exc}"
                    result.unavailable[impl.name] = why[:500]
                    break
                cells[(k, it)] = Measurement(tuple(runs))
            result.measurements[impl.name] = cells
            if on_partial is not None:
                result.wall_seconds = time.perf_counter() - t_start
                on_partial(result)
    finally:
        if started_here and session is not None:
            session.stop()
    result.wall_seconds = time.perf_counter() - t_start
    result.load_after = _load()
    result.finished = True
    return result


def _load() -> float | None:
    """The 1-minute load average (other work on the machine makes timings noisier)."""
    import os

    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


# -- the report -------------------------------------------------------------------------


def _paper_value(table: int, cell: Cell) -> float | None:
    if table == 1:
        return PAPER_TABLE1.get(cell)
    if table == 2:
        return PAPER_TABLE2.get(cell)
    return PAPER_TABLE3.get(cell[0]) if cell[1] == MLLIB_DEFAULT_ITER else None


def _grid_table(
    rows: Sequence[int], cols: Sequence[int], cell: Callable[[int, int], str], corner: str = "k \\ iterations"
) -> list[str]:
    lines = [f"| {corner} | " + " | ".join(str(c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {r} | " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return lines


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b <= 0 else f"{a / b:.3g}x"


def _iteration_columns(result: PaperResult, impl: str) -> tuple[int, ...]:
    if impl == "paper-ml":
        return (MLLIB_DEFAULT_ITER,)
    return result.grid.iterations


def render_markdown(result: PaperResult) -> str:
    """The report: one table per implementation, the paper's numbers, speed-ups, Figure 5, quality."""
    g = result.grid
    out = [
        "# The paper's benchmark, on this machine",
        "",
        f"kmeans {__version__}, Python {platform.python_version()}, NumPy {np.__version__}, "
        f"{platform.machine()} with {_cpu_count()} CPU(s); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        + (f"; 1-minute load average {result.load_before:.1f} before" if result.load_before is not None else "")
        + (f", {result.load_after:.1f} after." if result.load_after is not None else "."),
        f"Image: raccoon {result.image_shape[1]}x{result.image_shape[0]} "
        f"({result.image_shape[0] * result.image_shape[1]:,} pixels, {result.n_distinct:,} distinct colors)"
        + (f", every {g.downsample}th pixel per axis" if g.downsample > 1 else "")
        + f". `tol=0`; each cell runs up to {g.repeats} times (fewer once it has used {g.cell_budget:g} s): "
        "**median [min–max] seconds**.",
        "All implementations start from the same initial centers: k distinct colors drawn with "
        f"seed {g.seed}, offset by ({', '.join(f'{v:.4f}' for v in CENTER_OFFSET)}) so that no pixel is equidistant "
        "from two "
        "of them (the implementations break ties differently). Times include building the data "
        "structures from the pixel array, as the paper's functions did; Spark session start-up "
        "is excluded"
        + (f" (it took {result.spark_start_seconds:.1f} s)." if result.spark_start_seconds is not None else "."),
        "",
    ]
    if not result.finished:
        out += [
            f"> **Partial report**, written while the run was still going ({result.wall_seconds:.0f} s in): "
            "only the implementations listed below had finished.",
            "",
        ]
    if g.downsample > 1:
        out += [
            "> This is a reduced run (`--quick` or `--downsample`): the paper's numbers are for the full image "
            "and are shown for orientation only.",
            "",
        ]
    for impl, cells in result.measurements.items():
        table = PAPER_TABLE_OF.get(impl)
        cols = _iteration_columns(result, impl)
        out += [f"## {result.titles.get(impl, impl)}", ""]
        if impl == "paper-ml":
            out += [
                "MLlib picks its own initial centers (k-means||, seed 1) and iterations (`maxIter=20`, "
                "`tol=1e-4`), as in the paper's Table 3, so this is one column.",
                "",
            ]
        elif not result.shared_init.get(impl, True):
            out += ["This backend ran with its own initialization (see notes below).", ""]

        def measured(k: int, it: int, cells: dict[Cell, Measurement] = cells) -> str:
            m = cells.get((k, it))
            return m.stats.cell() if m is not None else "skipped"

        out += _grid_table(g.ks, cols, measured)
        if table is not None:
            out += ["", f"The paper's Table {table} (seconds) and its time divided by ours (speed-up):", ""]

            def paper(k: int, it: int, table: int = table, cells: dict[Cell, Measurement] = cells) -> str:
                p = _paper_value(table, (k, it))
                m = cells.get((k, it))
                if p is None:
                    return "–"
                return f"{p:g} ({_ratio(p, m.stats.median if m else None)})"

            out += _grid_table(g.ks, cols, paper)
        port = PORT_OF.get(impl)
        if port is not None and port in result.measurements:
            port_cells = result.measurements[port]
            out += ["", f"Speed-up over the paper's code run here (`{port}` median / `{impl}` median):", ""]

            def vs_port(
                k: int,
                it: int,
                port_cells: dict[Cell, Measurement] = port_cells,
                cells: dict[Cell, Measurement] = cells,
            ) -> str:
                m = cells.get((k, it))
                p = port_cells.get((k, it))
                return _ratio(p.stats.median if p else None, m.stats.median if m else None)

            out += _grid_table(g.ks, cols, vs_port)
        out.append("")
    out += _figure5_section(result)
    out += _quality_section(result)
    out += ["## Cells not run", ""]
    any_skipped = False
    for impl, skipped in result.skipped.items():
        if skipped:
            any_skipped = True
            listed = ", ".join(f"k={k}/{it}" for k, it in skipped)
            out.append(f"- `{impl}`: {listed} (too slow for the time budget; not measured, not estimated).")
    for impl, why in result.unavailable.items():
        any_skipped = True
        out.append(f"- `{impl}`: {why if why.startswith('failed') else f'not available here: {why}'}")
    if not any_skipped:
        out.append("None.")
    if result.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    out += [
        "",
        f"Total wall time of this benchmark: {result.wall_seconds:.0f} s. "
        "Regenerate with `kmeans bench paper --out DIR` (`--quick` for a one-minute subset).",
        "",
    ]
    return "\n".join(out)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _figure5_section(result: PaperResult) -> list[str]:
    k = max(result.grid.ks)
    series = figure5_series(result, k)
    out = [f"## Time per iteration (the paper's Figure 5), k={k}", ""]
    if not series:
        return [*out, "No implementation reported per-iteration times.", ""]
    n = min(8, max(len(s) for s in series.values()))
    out += [
        "Seconds per Lloyd iteration, from the median run of the longest cell. For this library the "
        "time of dataset building, compression and initialization is not inside iteration 1; for the "
        "paper's RDD code it is (lazy evaluation builds the grouped RDD in the first iteration), as in "
        "the paper's Figure 5 (about 30 s, then about 5 s per iteration on Colab).",
        "",
        "| implementation | " + " | ".join(str(i + 1) for i in range(n)) + " | median of iterations 2+ |",
        "|---" * (n + 2) + "|",
    ]
    for impl, times in series.items():
        cells = [fmt_s(times[i]) if i < len(times) else "" for i in range(n)]
        rest = fmt_s(statistics.median(times[1:])) if len(times) > 1 else "–"
        out.append(f"| `{impl}` | " + " | ".join(cells) + f" | {rest} |")
    return [*out, ""]


def _quality_section(result: PaperResult) -> list[str]:
    ref = result.measurements.get("numpy")
    out = ["## Quality", ""]
    if ref is None:
        return [*out, "The `numpy` backend was not run, so there is no reference inertia.", ""]
    out += [
        "Largest relative difference of the final inertia from the `numpy` backend's, over the cells both ran "
        "(same initial centers and iteration count, so it should be ~0):",
        "",
        "| implementation | cells compared | max relative inertia difference |",
        "|---|---|---|",
    ]
    for impl, cells in result.measurements.items():
        if impl == "numpy" or not result.shared_init.get(impl, True):
            continue
        diffs = [abs(m.inertia / ref[c].inertia - 1) for c, m in cells.items() if c in ref and ref[c].inertia > 0]
        if diffs:
            out.append(f"| `{impl}` | {len(diffs)} | {max(diffs):.2e} |")
    if "paper-ml" in result.measurements:
        inertias = ", ".join(f"k={k}: {m.inertia:.4g}" for (k, _), m in sorted(result.measurements["paper-ml"].items()))
        out += ["", f"`paper-ml` (own init, not comparable cell by cell) final inertias: {inertias}."]
    return [*out, ""]


def summary_lines(result: PaperResult) -> list[str]:
    """A few lines for stdout: the k=10 headline cells and where the files are."""
    lines = []
    k = max(result.grid.ks)
    it = max(result.grid.iterations)
    for impl, cells in result.measurements.items():
        cell = (k, MLLIB_DEFAULT_ITER) if impl == "paper-ml" else (k, it)
        m = cells.get(cell)
        if m is None:
            continue
        line = f"{impl:>12}  k={cell[0]} {cell[1]:>2} iterations: {m.stats.cell()} s"
        port = PORT_OF.get(impl)
        if port is not None and result.median(port, cell) is not None:
            line += f"   {_ratio(result.median(port, cell), m.stats.median)} faster than {port}"
        table = PAPER_TABLE_OF.get(impl)
        p = _paper_value(table, cell) if table is not None else None
        if p is not None:
            line += f"   paper: {p:g} s ({_ratio(p, m.stats.median)})"
        lines.append(line)
    for impl, why in result.unavailable.items():
        lines.append(f"{impl:>12}  not available: {why}")
    return lines


def write_report(result: PaperResult, out_dir: Path) -> list[Path]:
    """Write ``report.md``, ``results.json`` and the PNG figures into ``out_dir``, atomically each."""
    from kmeans.io import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("report.md", render_markdown(result)),
        ("results.json", json.dumps(result.to_json(), indent=1)),
    ):
        write_atomic(out_dir / name, text.encode("utf-8"))
        written.append(out_dir / name)
    written += plots.paper_figures(result, out_dir)
    return written


def cells_of(result: PaperResult, impl: str) -> Iterable[Cell]:
    return result.measurements.get(impl, {}).keys()
