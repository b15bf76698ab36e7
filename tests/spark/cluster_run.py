"""Driven by test_spark_cluster.py in a subprocess: fits on a master given on the command line.

``python cluster_run.py MASTER`` starts a session on MASTER (e.g. ``local-cluster[2,1,1024]``),
then prints one JSON object with the results of
- ``reference``: the numpy fit; ``plain``: the spark-rdd fit;
- ``flaky``: the spark-rdd fit where every task fails on its first attempt (Spark retries it);
- ``plain_one_task`` / ``flaky_one_task``: the same on one partition, where a single task runs
  every Lloyd iteration (its retry reruns them all);
- ``killed``: the spark-rdd fit during which one executor process is SIGKILLed (cluster only).
A second SparkContext cannot be started inside the test process, hence the subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kmeans import KMeans  # noqa: E402
from kmeans.backends._spark import session as spark_session  # noqa: E402
from kmeans.backends.spark_rdd import SparkRDDBackend  # noqa: E402
from kmeans.distance.base import Distance  # noqa: E402
from kmeans.distance.l2 import L2  # noqa: E402


def fail_on_first_attempt() -> None:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None and ctx.attemptNumber() == 0:
        raise RuntimeError("injected failure on the first attempt")


class FailFirstAttempt:
    """An L2 assign step that raises in every task's first attempt (and works on retries)."""

    name = "sqeuclidean"

    def __init__(self) -> None:
        self.inner = L2.assign

    def assign(self, points: Any, centers: Any) -> Any:
        fail_on_first_attempt()
        return self.inner.assign(points, centers)

    def pairwise(self, points: Any, centers: Any) -> Any:
        return self.inner.pairwise(points, centers)

    def shift(self, old: Any, new: Any) -> Any:
        return self.inner.shift(old, new)


class FailFirstUpdate:
    """The L2 mean update, failing likewise; its passes run the same fused kernel as L2's."""

    name = "mean"

    def __init__(self) -> None:
        self.inner = L2.update

    def plan(self, dataset: Any, k: int) -> Any:
        return self.inner.plan(dataset, k)

    def partial(self, block: Any, labels: Any, k: int, state: Any) -> Any:
        fail_on_first_attempt()
        return self.inner.partial(block, labels, k, state)

    def fused_partial(self, assign: Any, block: Any, centers: Any, state: Any, memory: Any = None) -> Any:
        fail_on_first_attempt()
        inner_assign = assign.inner if isinstance(assign, FailFirstAttempt) else assign
        return self.inner.fused_partial(inner_assign, block, centers, state, memory)

    def merge(self, a: Any, b: Any) -> Any:
        return self.inner.merge(a, b)

    def finalize(self, summary: Any, old: Any, state: Any) -> Any:
        return self.inner.finalize(summary, old, state)


def executor_pids(app_id: str) -> list[int]:
    """PIDs of this application's executor JVMs (CoarseGrainedExecutorBackend), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [c.decode(errors="replace") for c in cmd]
        if any("CoarseGrainedExecutorBackend" in c for c in text) and app_id in text:
            pids.append(int(entry.name))
    return sorted(pids)


def summary(model: KMeans) -> dict[str, Any]:
    return {
        "centers": model.cluster_centers_.tolist(),
        "labels": np.asarray(model.labels_).tolist(),
        "inertia": model.inertia_,
        "n_iter": model.n_iter_,
    }


def main(master: str) -> None:
    os.environ.setdefault("SPARK_HOME", str(Path(spark_session.require_pyspark().__file__).parent))
    session = spark_session.start_local_session(
        master,
        {"spark.executor.memory": "512m", "spark.task.maxFailures": "4", "spark.default.parallelism": "4"},
    )
    sc = session.sparkContext
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 1.0, size=(5_000, 3)) for c in range(6)])
    params = {"n_clusters": 6, "init": "k-means||", "seed": 3, "max_iter": 8, "tol": 0.0}
    out: dict[str, Any] = {"executors": len(executor_pids(sc.applicationId))}
    out["reference"] = summary(KMeans(**params).fit(X))
    backend = SparkRDDBackend(num_partitions=4)
    out["plain"] = summary(KMeans(**params, backend=backend).fit(X))
    flaky = Distance(name="l2", assign=FailFirstAttempt(), update=FailFirstUpdate())
    out["flaky"] = summary(KMeans(**params, backend=backend, distance=flaky).fit(X))
    one_task = SparkRDDBackend(num_partitions=1)  # every Lloyd iteration in one task
    out["plain_one_task"] = summary(KMeans(**params, backend=one_task).fit(X))
    out["flaky_one_task"] = summary(KMeans(**params, backend=one_task, distance=flaky).fit(X))
    if master.startswith("local-cluster"):
        killed: list[int] = []

        def kill_one(record: Any) -> None:
            if record.iteration == 3 and not killed:
                pid = executor_pids(sc.applicationId)[0]
                killed.append(pid)
                threading.Timer(0.05, os.kill, (pid, signal.SIGKILL)).start()

        t0 = time.perf_counter()
        model = KMeans(**params, backend=backend, callbacks=[kill_one]).fit(X)
        out["killed"] = summary(model)
        out["killed_pid"] = killed[0] if killed else None
        out["killed_seconds"] = time.perf_counter() - t0
        out["executors_after"] = len(executor_pids(sc.applicationId))
    out["persistent_rdds"] = int(sc._jsc.getPersistentRDDs().size())
    session.stop()
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
