"""``kmeans bench minibatch``: mini-batch k-means against scikit-learn's ``MiniBatchKMeans``.

Both sides fit the same float32 blobs (:func:`kmeans.bench.scaling.make_data`: 16 Gaussian
blobs) with the same batch size and the same number of steps (``max_iter`` epochs,
``max_no_improvement=None``, ``tol=0``), each seeding k-means++ from ``3 * batch_size``
sampled rows and ending with a full pass for the labels and the inertia. scikit-learn runs
twice, as installed and with its OpenMP threads limited to one (on a loaded machine its
threads spin-wait); ratios are against the faster of the two. Rounds are interleaved (one
fit of each engine per round). Times are whole fits; the inertia of each
is computed the same way, exactly in float64 against the centers it returned.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from kmeans import KMeans
from kmeans.bench._common import inertia_of
from kmeans.bench.scaling import make_data
from kmeans.minibatch import MiniBatch


@attrs.frozen
class Case:
    """Rows, features, clusters, rows per step and epochs (``epochs * rows // batch_size`` steps)."""

    n: int
    d: int
    k: int
    batch_size: int
    epochs: int = 1

    @property
    def steps(self) -> int:
        return self.epochs * self.n // self.batch_size

    @property
    def name(self) -> str:
        return f"{self.n:,} x {self.d} float32, k={self.k}, batch {self.batch_size}, {self.steps} steps"


FULL_CASE = Case(10_000_000, 16, 256, 4096)
QUICK_CASE = Case(200_000, 16, 64, 1024)

#: A fit: ``(data, case, seed) -> (centers, steps)``.
Fit = Callable[[NDArray[Any], Case, int], tuple[NDArray[np.float64], int]]


def fit_ours(X: NDArray[Any], case: Case, seed: int) -> tuple[NDArray[np.float64], int]:
    algorithm = MiniBatch(batch_size=case.batch_size, max_no_improvement=None)
    model = KMeans(case.k, algorithm=algorithm, max_iter=case.epochs, tol=0.0, seed=seed).fit(X)
    return model.cluster_centers_, model.n_steps_


def fit_sklearn(X: NDArray[Any], case: Case, seed: int) -> tuple[NDArray[np.float64], int]:
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(
        case.k, batch_size=case.batch_size, max_iter=case.epochs, max_no_improvement=None, tol=0.0, random_state=seed
    ).fit(X)
    return np.asarray(model.cluster_centers_, dtype=np.float64), int(model.n_steps_)


def fit_sklearn_one_thread(X: NDArray[Any], case: Case, seed: int) -> tuple[NDArray[np.float64], int]:
    """scikit-learn with its OpenMP threads limited to one: on a loaded machine its threads spin-wait.

    Measured at load 10 on 2 cores: 1.4 s with one thread, 25 s with two, for the quick case.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fit_sklearn(X, case, seed)


ENGINES: dict[str, Fit] = {"kmeans": fit_ours, "sklearn": fit_sklearn, "sklearn-1-thread": fit_sklearn_one_thread}


@attrs.frozen
class Row:
    """One engine's rounds: wall seconds, steps run, the exact inertia of its last fit."""

    engine: str
    seconds: tuple[float, ...]
    steps: int
    inertia: float

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run(case: Case, rounds: int = 1, seed: int = 0, engines: dict[str, Fit] | None = None) -> list[Row]:
    """Every engine ``rounds`` times, interleaved, on the case's data; one :class:`Row` each."""
    fits = ENGINES if engines is None else engines
    X = make_data("blobs", case.n, case.d, seed)
    fit_ours(X[: max(case.k * 4, 4 * case.batch_size)], attrs.evolve(case, n=max(case.k * 4, 4 * case.batch_size)), 0)
    times: dict[str, list[float]] = {name: [] for name in fits}
    last: dict[str, tuple[NDArray[np.float64], int]] = {}
    for _ in range(rounds):
        for name, fit in fits.items():
            t0 = time.perf_counter()
            last[name] = fit(X, case, seed)
            times[name].append(time.perf_counter() - t0)
    return [Row(name, tuple(times[name]), last[name][1], inertia_of(X, last[name][0])) for name in fits]


def format_table(case: Case, rows: list[Row]) -> str:
    """A Markdown table: median seconds, steps, inertia, and both relative to the faster scikit-learn setting."""
    refs = [r for r in rows if r.engine.startswith("sklearn")]
    ref = min(refs, key=lambda r: r.median) if refs else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"{case.name}; 1-minute load average {load:.1f}",
        "",
        "| engine | median time | steps | inertia | time / fastest scikit-learn | inertia / its inertia |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = f"{r.median / ref.median:.3f}" if ref else "-"
        i = f"{r.inertia / ref.inertia:.4f}" if ref else "-"
        lines.append(f"| {r.engine} | {r.median:.2f} s | {r.steps} | {r.inertia:.6g} | {t} | {i} |")
    return "\n".join(lines)
