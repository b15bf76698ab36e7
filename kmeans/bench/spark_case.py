"""``kmeans bench shapes --spark``: spark-rdd vs MLlib per Lloyd iteration and in set-up.

Both engines fit the same cached DataFrame (a ``pyspark.ml`` vector column of float32
blobs, ``partitions`` partitions) from the same initial centers with ``tol=0``: ours with
``backend="spark-rdd"``, MLlib through ``pyspark.mllib``'s ``KMeans.train(initialModel=...)``
(the engine under ``pyspark.ml``'s KMeans, which cannot take initial centers), as our
``spark-ml`` backend calls it. Each round fits every engine with ``short`` and with
``long`` iterations, rounds interleaved; per iteration is the difference of the medians
over ``long - short``, and set-up (conversion, caching, validation, the final pass) is
what is left of the short fit.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import attrs
import numpy as np

from kmeans import KMeans
from kmeans.bench.scaling import initial_centers, make_data

ENGINES = {"spark-rdd": "spark-rdd", "MLlib": "spark-ml"}


@attrs.frozen
class SparkCase:
    n: int = 4_000_000
    d: int = 16
    k: int = 64
    partitions: int = 8
    short: int = 2
    long: int = 7
    repeats: int = 3
    seed: int = 0


FULL_SPARK_CASE = SparkCase()
QUICK_SPARK_CASE = SparkCase(n=100_000, k=16, partitions=2, long=4, repeats=1)


@attrs.frozen
class SparkEngineResult:
    short: tuple[float, ...]
    long: tuple[float, ...]
    n_iter: int
    inertia: float

    def per_iteration(self, case: SparkCase) -> float:
        return (statistics.median(self.long) - statistics.median(self.short)) / (case.long - case.short)

    def setup(self, case: SparkCase) -> float:
        return statistics.median(self.short) - case.short * self.per_iteration(case)


def cached_frame(spark: Any, X: np.ndarray, partitions: int) -> Any:
    """``X`` as a cached DataFrame with one ``features`` vector column in ``partitions`` partitions."""
    import pandas as pd
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as sf

    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    frame = spark.createDataFrame(pd.DataFrame({"a": list(X)}), "a array<float>").repartition(partitions)
    df = frame.select(array_to_vector(sf.col("a")).alias("features")).cache()
    df.count()
    return df


def run_spark_case(spark: Any, case: SparkCase) -> dict[str, SparkEngineResult]:
    X = make_data("blobs", case.n, case.d, case.seed)
    centers = initial_centers(X, case.k, case.seed)
    df = cached_frame(spark, X, case.partitions)

    def fit(backend: str, iterations: int) -> tuple[float, KMeans]:
        t0 = time.perf_counter()
        model = KMeans(n_clusters=case.k, init=centers, max_iter=iterations, tol=0.0, backend=backend)
        model.fit(df, features="features")
        return time.perf_counter() - t0, model

    times: dict[str, dict[int, list[float]]] = {name: {case.short: [], case.long: []} for name in ENGINES}
    last: dict[str, KMeans] = {}
    try:
        for backend in ENGINES.values():  # warm-up: Python workers, compiled kernels, JIT
            fit(backend, 1)
        for _ in range(case.repeats):
            for name, backend in ENGINES.items():
                for iterations in (case.short, case.long):
                    seconds, last[name] = fit(backend, iterations)
                    times[name][iterations].append(seconds)
    finally:
        df.unpersist()
    return {
        name: SparkEngineResult(
            tuple(times[name][case.short]),
            tuple(times[name][case.long]),
            int(last[name].n_iter_),
            float(last[name].inertia_),
        )
        for name in ENGINES
    }


def format_spark_case(case: SparkCase, results: dict[str, SparkEngineResult]) -> str:
    """A Markdown table: per iteration and set-up per engine, and our ratios against MLlib."""
    ours, mllib = results["spark-rdd"], results["MLlib"]
    lines = [
        f"{case.n:,} x {case.d} float32 blobs, k={case.k}, {case.partitions} partitions, cached DataFrame, "
        f"{case.short} and {case.long} iterations, medians of {case.repeats}",
        "",
        "| engine | per iteration | set-up | final inertia |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        per_it = f"{r.per_iteration(case) * 1e3:.0f} ms"
        lines.append(f"| {name} | {per_it} | {r.setup(case):.2f} s | {r.inertia:.6g} ({r.n_iter} it) |")
    per = mllib.per_iteration(case) / max(ours.per_iteration(case), 1e-9)
    setup = mllib.setup(case) / max(ours.setup(case), 1e-9)
    lines += ["", f"spark-rdd vs MLlib: {per:.2f}x per iteration, {setup:.2f}x in set-up (> 1: we are faster)"]
    return "\n".join(lines)
