"""Helpers shared by the benchmarks: the test image, shared initial centers, timing, memory."""

from __future__ import annotations

import os
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import registry
from kmeans.data import raccoon_path
from kmeans.dataset import compress_rows

T = TypeVar("T")

#: Added to every shared initial center: a fixed offset off the integer grid, so that no
#: 8-bit pixel is at the same distance from two initial centers. Implementations break
#: assignment ties differently (the paper's NumPy code picks the *last* center; GEMM
#: rounding decides in others), and without ties they all follow exactly the same
#: trajectory from the same start. For integer pixels x and centers p + o (p integer),
#: a tie needs ``2 o·v`` to be an integer for some integer ``v`` with ``|v_i| <= 255``;
#: with these irrational-based components it stays at least 1e-9 away from one, and
#: every component is below 0.5, so each initial center is closest to its own color.
CENTER_OFFSET = 0.45 * np.array([np.sqrt(2) - 1, np.sqrt(3) - 1.5, np.sqrt(5) - 2])


def load_raccoon(downsample: int = 1) -> NDArray[np.uint8]:
    """The paper's 1024x768 raccoon as an ``(h, w, 3)`` uint8 array (every ``downsample``-th pixel)."""
    from PIL import Image

    with Image.open(raccoon_path()) as im:
        img = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if downsample > 1:
        img = np.ascontiguousarray(img[::downsample, ::downsample])
    return img


def distinct_colors(pixels: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """``(colors, counts)``: the distinct rows of ``pixels`` and how often each occurs."""
    colors, counts, _ = compress_rows(pixels, None)
    return colors, counts


def shared_centers(pixels: NDArray[Any], k: int, seed: int = 0) -> NDArray[np.float64]:
    """``k`` distinct pixel colors drawn with ``seed``, plus :data:`CENTER_OFFSET`.

    Every implementation in a benchmark starts from these same centers. An ``(h, w, c)``
    image is read as its ``h * w`` pixels.
    """
    colors, _ = distinct_colors(pixels.reshape(-1, pixels.shape[-1]))
    rng = np.random.default_rng(seed)
    picked = colors[np.sort(rng.choice(colors.shape[0], size=k, replace=False))]
    offset = np.resize(CENTER_OFFSET, picked.shape[1])
    out: NDArray[np.float64] = picked.astype(np.float64) + offset
    return out


def inertia_of(points: NDArray[Any], centers: NDArray[Any], weights: NDArray[Any] | None = None) -> float:
    """``sum_i w_i min_j ||x_i - c_j||²``, ignoring non-finite centers (the paper's empty clusters)."""
    c = np.asarray(centers, dtype=np.float64)
    c = c[np.isfinite(c).all(axis=1)]
    costs = registry.distances["l2"].assign.assign(np.asarray(points, dtype=np.float64), c)[1]
    return float(np.sum(costs) if weights is None else np.dot(weights, costs))


@attrs.frozen
class Stats:
    """Summary of repeated timings, in seconds."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.runs))

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    def cell(self) -> str:
        """``median [min-max]`` in seconds, compact."""
        if len(self.runs) == 1:
            return f"{fmt_s(self.median)} (1 run)"
        return f"{fmt_s(self.median)} [{fmt_s(self.min)}–{fmt_s(self.max)}]"


def fmt_s(seconds: float) -> str:
    """Seconds with 3 significant digits (``0.0123``, ``1.23``, ``123``)."""
    if seconds >= 100:
        return f"{seconds:.0f}"
    return f"{seconds:.3g}"


def repeat(fn: Callable[[], T], repeats: int, budget: float) -> tuple[list[float], list[T]]:
    """Run ``fn`` up to ``repeats`` times (at least once), stopping once ``budget`` seconds are used.

    Returns the wall times and the return values, in order.
    """
    times: list[float] = []
    values: list[T] = []
    while len(times) < max(1, repeats):
        t0 = time.perf_counter()
        values.append(fn())
        times.append(time.perf_counter() - t0)
        if sum(times) >= budget:
            break
    return times, values


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Linux ``/proc``); 0 elsewhere."""
    proc = Path("/proc")
    if not proc.exists():
        return 0
    children: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        with suppress(OSError, IndexError, ValueError):
            total += int((proc / str(p) / "statm").read_text().split()[1]) * page
        todo.extend(children.get(p, []))
    return total


@attrs.define
class PeakMemory:
    """Peak memory seen while the ``measure_memory`` block ran, in bytes above the start.

    ``traced`` is the tracemalloc peak (Python and NumPy allocations of this process);
    ``rss`` is the sampled resident size of this process and its children (Spark's JVM
    and Python workers included), every 50 ms, so short spikes can be missed.
    """

    traced: int = 0
    rss: int = 0


@contextmanager
def measure_memory(trace: bool = True) -> Iterator[PeakMemory]:
    """Measure peak memory of the block (see :class:`PeakMemory`): traced, or else sampled RSS."""
    peak = PeakMemory()
    base = 0 if trace else _tree_rss_bytes(os.getpid())
    top = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            top[0] = max(top[0], _tree_rss_bytes(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    if not trace:
        sampler.start()
    started = False
    if trace and not tracemalloc.is_tracing():
        tracemalloc.start()
        started = True
    traced_base = 0
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
        traced_base = tracemalloc.get_traced_memory()[0]
    try:
        yield peak
    finally:
        if tracemalloc.is_tracing():
            peak.traced = max(0, tracemalloc.get_traced_memory()[1] - traced_base)
        if started:
            tracemalloc.stop()
        if not trace:
            stop.set()
            sampler.join()
            top[0] = max(top[0], _tree_rss_bytes(os.getpid()))
            peak.rss = max(0, top[0] - base)


def fit_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ``log y`` against ``log x`` (the exponent of a power law)."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(lx, ly, 1)[0])
