"""PNG figures for the benchmarks (matplotlib, Agg backend), each written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kmeans.bench._common import fit_slope
from kmeans.bench.paper_tables import MLLIB_DEFAULT_ITER, PAPER_TABLE1, PAPER_TABLE2, PAPER_TABLE3
from kmeans.io import write_atomic

if TYPE_CHECKING:
    from kmeans.bench.paper import PaperResult
    from kmeans.bench.scaling import ScalingResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    write_atomic(path, buf.getvalue())
    return path


def figure5_series(result: PaperResult, k: int = 10) -> dict[str, tuple[float, ...]]:
    """Per-iteration seconds of the median run of the longest measured cell at ``k``, per implementation."""
    series = {}
    for impl, cells in result.measurements.items():
        at_k = [(it, m) for (kk, it), m in cells.items() if kk == k and m.median_run.iteration_times]
        if at_k:
            series[impl] = max(at_k, key=lambda t: t[0])[1].median_run.iteration_times
    return series


def paper_figures(result: PaperResult, out_dir: Path) -> list[Path]:
    """Figures 5-9 of the paper, redone: per-iteration times, runtime vs k, ratios, all together."""
    plt = _pyplot()
    written = []
    g = result.grid
    k_top = max(g.ks)

    series = figure5_series(result, k_top)
    if series:
        fig, ax = plt.subplots(figsize=(7, 4))
        n = min(8, max(len(s) for s in series.values()))
        width = 0.8 / len(series)
        for i, (impl, times) in enumerate(series.items()):
            xs = np.arange(1, min(n, len(times)) + 1)
            ax.bar(xs + (i - (len(series) - 1) / 2) * width, times[: len(xs)], width, label=impl)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("seconds")
        ax.set_title(f"Time per iteration, k={k_top} (paper's Figure 5)")
        ax.legend()
        written.append(_save(fig, out_dir / "fig5_per_iteration.png"))

    for impl, cells in result.measurements.items():
        if impl == "paper-ml":
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for it in g.iterations:
            pts = sorted((k, m.stats.median) for (k, i), m in cells.items() if i == it)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{it} iterations")
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel("seconds (median)")
        ax.set_yscale("log")
        ax.set_title(f"{impl}: runtime vs k (paper's Figures 6-7)")
        ax.legend(fontsize="small")
        written.append(_save(fig, out_dir / f"fig6-7_runtime_vs_k_{impl}.png"))

    pairs = [("paper (Tables 1/2)", PAPER_TABLE1, PAPER_TABLE2)]
    for num, den in (("paper-numpy", "paper-rdd"), ("numpy", "spark-rdd")):
        if num in result.measurements and den in result.measurements:
            pairs.append(
                (
                    f"{num} / {den} (here)",
                    {c: m.stats.median for c, m in result.measurements[num].items()},
                    {c: m.stats.median for c, m in result.measurements[den].items()},
                )
            )
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4), squeeze=False)
    for ax, (title, num_t, den_t) in zip(axes[0], pairs, strict=True):
        for it in g.iterations:
            pts = [(k, num_t[(k, it)] / den_t[(k, it)]) for k in g.ks if (k, it) in num_t and (k, it) in den_t]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{it} iterations")
        ax.set_title(title)
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel("NumPy time / Spark time")
        ax.legend(fontsize="small")
    fig.suptitle("Ratio of runtimes, NumPy over Spark (paper's Figure 8)")
    written.append(_save(fig, out_dir / "fig8_ratio_numpy_over_spark.png"))

    it20 = MLLIB_DEFAULT_ITER if MLLIB_DEFAULT_ITER in g.iterations else max(g.iterations)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for impl, cells in result.measurements.items():
        pts = sorted(
            (k, m.stats.median)
            for (k, i), m in cells.items()
            if i == (MLLIB_DEFAULT_ITER if impl == "paper-ml" else it20)
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"{impl} (here)")
    for label, table in (("paper Table 1", PAPER_TABLE1), ("paper Table 2", PAPER_TABLE2)):
        ax.plot(g.ks, [table.get((k, it20), np.nan) for k in g.ks], linestyle="--", label=label)
    ax.plot(g.ks, [PAPER_TABLE3.get(k, np.nan) for k in g.ks], linestyle="--", label="paper Table 3")
    ax.set_yscale("log")
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"All implementations, {it20} iterations (paper's Figure 9)")
    ax.legend(fontsize="small", ncol=2)
    written.append(_save(fig, out_dir / "fig9_all_implementations.png"))
    return written


def scaling_figures(result: ScalingResult, out_dir: Path) -> list[Path]:
    """One log-log figure per swept parameter: seconds per iteration and peak memory, with fitted slopes."""
    plt = _pyplot()
    written = []
    for param in result.params():
        fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
        for engine in result.engines():
            rows = result.series(param, engine)
            if not rows:
                continue
            xs = [float(r.value) for r in rows]
            times = [r.seconds_per_iter for r in rows]
            mem = [r.peak_bytes / 2**20 for r in rows]
            slope = fit_slope(xs, times)
            ax_t.plot(xs, times, marker="o", label=f"{engine}" + (f" (slope {slope:.2f})" if slope is not None else ""))
            mslope = fit_slope(xs, mem)
            ax_m.plot(xs, mem, marker="o", label=f"{engine}" + (f" (slope {mslope:.2f})" if mslope is not None else ""))
        for ax, ylabel in ((ax_t, "seconds per iteration"), (ax_m, "peak memory above start (MiB)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(param)
            ax.set_ylabel(ylabel)
            ax.legend(fontsize="small")
        fig.suptitle(f"Cost as {param} grows (others at {result.base_description(param)})")
        written.append(_save(fig, out_dir / f"scaling_{param}.png"))
    return written
