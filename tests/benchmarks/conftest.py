"""Benchmark fixtures: a quick "smoke" mode by default, full sizes with ``--benchmark-enable``.

The default ``pytest`` run passes ``--benchmark-disable`` (see pyproject.toml): every
benchmark then runs once on tiny inputs, so the suite cannot rot, and only quality is
checked. ``tox -e bench`` (``--benchmark-enable``) runs the real sizes, several rounds,
and prints, per group, each implementation's median and its ratio to the baseline run in
the same session (``baseline median / this median``: above 1 means faster than it).
With full sizes every goal is asserted: a missed goal fails the benchmark (``tox -e bench``
fails). Smoke runs check quality only, claim no goal and print no table.

Groups are stable names, so ``pytest tests/benchmarks --benchmark-enable
--benchmark-autosave`` on two commits and ``--benchmark-compare`` line them up.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from numpy.typing import NDArray

from kmeans.bench._common import distinct_colors, load_raccoon, shared_centers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every benchmark is ``slow``: the inner loop (``tox -e fast``) leaves them to the full suite."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)


@attrs.frozen
class Sizes:
    """Problem sizes: ``full`` (the issue's targets) or the smoke stand-ins."""

    full: bool
    downsample: int
    memory_rows: int
    rounds: int

    def iterations(self, n: int) -> int:
        """The real iteration count when full, at most 3 in smoke mode."""
        return n if self.full else min(n, 3)


@attrs.define
class Record:
    median: float | None
    inertia: float
    info: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class Book:
    """What the benchmarks of this session measured, by group and implementation."""

    sizes: Sizes
    results: dict[str, dict[str, Record]] = attrs.field(factory=dict)
    targets: list[tuple[str, str, str, float | None, float | None]] = attrs.field(factory=list)

    def run(
        self,
        benchmark: Any,
        fn: Callable[[], float],
        *,
        rounds: int | None = None,
        interleave: Callable[[], object] | None = None,
    ) -> tuple[float, list[float]]:
        """Benchmark ``fn`` (which returns the inertia of its fit): ``(inertia, interleaved baseline times)``.

        With full sizes, ``interleave`` (the baseline's fit) runs untimed by the fixture before
        every round, and its own wall times are returned: both sides then share the
        machine's load of the moment, which makes their ratio much steadier on a busy host.
        """
        n = self.sizes.rounds if rounds is None else rounds
        out: list[float] = []
        base_times: list[float] = []

        def call() -> None:
            out.append(fn())

        def setup() -> None:
            assert interleave is not None
            t0 = time.perf_counter()
            interleave()
            base_times.append(time.perf_counter() - t0)

        use_setup = setup if interleave is not None and self.sizes.full else None
        benchmark.pedantic(
            call, setup=use_setup, rounds=n, iterations=1, warmup_rounds=1 if self.sizes.full and n > 1 else 0
        )
        return out[-1], base_times

    def record(self, benchmark: Any, group: str, impl: str, inertia: float, **info: Any) -> Record:
        """Store what ``impl`` measured in ``group`` (median seconds when timing was on)."""
        median = None if benchmark.stats is None else float(benchmark.stats.stats.median)
        benchmark.extra_info.update(inertia=inertia, **info)
        rec = Record(median, inertia, dict(info))
        self.results.setdefault(group, {})[impl] = rec
        return rec

    def reference(self, group: str, name: str, seconds: float) -> None:
        """A published time (e.g. the paper's) to compare against, as a pseudo-implementation."""
        self.results.setdefault(group, {})[name] = Record(seconds, float("nan"))

    def baseline(self, group: str, impl: str) -> Record | None:
        """What ``impl`` measured earlier in this session in ``group`` (``None`` if it did not run)."""
        return self.results.get(group, {}).get(impl)

    def compare(
        self,
        benchmark: Any,
        group: str,
        impl: str,
        base: str,
        target: float | None,
        interleaved: list[float] | None = None,
    ) -> float | None:
        """Ratio ``base median / impl median`` (None without timings); noted in ``extra_info`` and the summary.

        ``interleaved``: the baseline's times taken between this benchmark's rounds; when
        given, the ratio uses their median (the separate-test ratio is kept in ``extra_info``).
        """
        mine, theirs = self.baseline(group, impl), self.baseline(group, base)
        ratio = None
        if mine is not None and theirs is not None and mine.median and theirs.median:
            ratio = theirs.median / mine.median
            benchmark.extra_info[f"ratio_vs_{base}_separate_runs"] = ratio
        if mine is not None and mine.median and interleaved:
            ratio = statistics.median(interleaved) / mine.median
            mine.info[f"{base}_interleaved_median"] = round(statistics.median(interleaved), 4)
        if ratio is not None:
            benchmark.extra_info[f"ratio_vs_{base}"] = ratio
        self.targets.append((group, impl, base, target, ratio))
        if target is not None:
            self.goal(
                f"{group}: {impl} vs {base} speed ratio", ratio, ratio is not None and ratio >= target, f">= {target:g}"
            )
        return ratio

    def goal(self, what: str, value: object, met: bool, target: str) -> None:
        """Assert a benchmark goal at full sizes (smoke sizes are too small to say anything)."""
        if self.sizes.full:
            assert met, f"benchmark goal missed: {what} = {value} (target {target})"


_BOOK = pytest.StashKey[Book]()


@pytest.fixture(scope="session")
def sizes(request: pytest.FixtureRequest) -> Sizes:
    if request.config.getoption("benchmark_enable"):
        return Sizes(full=True, downsample=1, memory_rows=20_000_000, rounds=5)
    return Sizes(full=False, downsample=8, memory_rows=200_000, rounds=1)


@pytest.fixture(scope="session")
def raccoon(sizes: Sizes) -> NDArray[np.uint8]:
    """The raccoon's pixels, ``(n, 3)`` uint8 (every 8th pixel per axis in smoke mode)."""
    return load_raccoon(sizes.downsample).reshape(-1, 3)


@pytest.fixture(scope="session")
def raccoon_colors(raccoon: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """The raccoon's distinct colors and how many pixels have each."""
    return distinct_colors(raccoon)


@pytest.fixture(scope="session")
def centers_for(raccoon: NDArray[np.uint8]) -> Callable[[int], NDArray[np.float64]]:
    """Shared initial centers: ``k`` distinct colors (seed 0), off the integer grid."""
    cache: dict[int, NDArray[np.float64]] = {}

    def get(k: int) -> NDArray[np.float64]:
        if k not in cache:
            cache[k] = shared_centers(raccoon, k, seed=0)
        return cache[k].copy()

    return get


@pytest.fixture(scope="session")
def book(request: pytest.FixtureRequest, sizes: Sizes) -> Book:
    """The session's record of medians and inertias, for same-session ratios and the summary."""
    return request.config.stash.setdefault(_BOOK, Book(sizes))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    book = config.stash.get(_BOOK, None)
    if book is None or not book.results or not book.sizes.full:
        return  # smoke runs time nothing: a table of "not timed" rows would only look like failures
    tr = terminalreporter
    tr.section("benchmark medians and ratios (same session)")
    for group, impls in book.results.items():
        for impl, rec in impls.items():
            med = "not timed" if rec.median is None else f"{rec.median:.4g} s"
            extra = ", ".join(f"{k}={v}" for k, v in rec.info.items())
            tr.write_line(f"{group:<28} {impl:<16} median {med:<12} inertia {rec.inertia:.10g} {extra}")
    for group, impl, base, target, ratio in book.targets:
        if ratio is None:
            continue
        verdict = "" if target is None else (f"  target >= {target:g}: " + ("met" if ratio >= target else "NOT met"))
        tr.write_line(f"{group:<28} {impl} vs {base}: speed ratio {ratio:.3g} ({base} median / {impl} median){verdict}")
