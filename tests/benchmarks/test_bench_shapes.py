"""Fit time at every shape vs scikit-learn, scikit-learn-intelex and faiss (``kmeans bench shapes`` cells).

Smoke mode (the default run): the quick cells once, quality only: the same Lloyd
iterations from the same centers reach the inertia scikit-learn reaches. With
``--benchmark-enable``: the full grid, our fit timed by pytest-benchmark with one round of
every reference engine before each of ours (interleaved), and the goals asserted:
at least 1.0x the fastest reference in every cell, at least 2x in the d >= 16 cells of
20 iterations.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import pytest

from kmeans.bench.shapes import FULL_CELLS, QUICK_CELLS, Cell, Data, engines, make_cell_data
from tests import oracle
from tests.benchmarks.conftest import Book, Sizes

FITS, MISSING = engines()
REFS = {name: fit for name, fit in FITS.items() if name != "kmeans"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The full grid with --benchmark-enable, the quick cells otherwise.
    if "cell" in metafunc.fixturenames:
        cells = FULL_CELLS if metafunc.config.getoption("benchmark_enable") else QUICK_CELLS
        metafunc.parametrize("cell", cells, ids=[c.name for c in cells])


def goal_for(cell: Cell) -> float:
    return 2.0 if cell.d >= 16 and cell.iterations >= 20 else 1.0


def test_shapes(benchmark: Any, book: Book, sizes: Sizes, cell: Cell) -> None:
    data: Data = make_cell_data(cell)
    ref_times: dict[str, list[float]] = {name: [] for name in REFS}
    ref_out: dict[str, tuple[np.ndarray, int]] = {}

    def references() -> None:
        for name, fit in REFS.items():
            t0 = time.perf_counter()
            ref_out[name] = fit(data, cell.iterations)
            ref_times[name].append(time.perf_counter() - t0)

    result: list[tuple[np.ndarray, int]] = []
    FITS["kmeans"](data, 1)  # warm-up: compiled kernels
    if not sizes.full:
        references()
    benchmark.pedantic(
        lambda: result.append(FITS["kmeans"](data, cell.iterations)),
        setup=references if sizes.full else None,
        rounds=3 if sizes.full else 1,
        iterations=1,
    )
    from kmeans.bench._common import inertia_of

    ours = inertia_of(data.points, result[-1][0], data.weights)
    rec = book.record(benchmark, f"shapes {cell.name}", "kmeans", ours)
    n, d = data.points.shape
    if not sizes.full and n * cell.k * d <= 20_000_000:
        # Smoke sizes: the brute-force Lloyd from the same centers, exactly.
        _, _, want = oracle.lloyd(data.points, data.centers, cell.iterations, data.weights)
        assert ours == pytest.approx(want, rel=1e-9)
    elif "sklearn" in ref_out:
        # scikit-learn computes float32 data in float32: its trajectory drifts a little.
        theirs = inertia_of(data.points, ref_out["sklearn"][0], data.weights)
        assert ours <= theirs * (1 + 1e-3)
    for name, times in ref_times.items():
        book.results.setdefault(f"shapes {cell.name}", {})
        benchmark.extra_info[f"{name}_median"] = statistics.median(times)
    if sizes.full and rec.median is not None and ref_times:
        fastest = min(statistics.median(t) for t in ref_times.values())
        ratio = fastest / rec.median
        benchmark.extra_info["ratio_vs_fastest"] = ratio
        book.targets.append((f"shapes {cell.name}", "kmeans", "fastest reference", goal_for(cell), ratio))
        book.goal(
            f"{cell.name}: speed vs the fastest reference", ratio, ratio >= goal_for(cell), f">= {goal_for(cell)}"
        )
