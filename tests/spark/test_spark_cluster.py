"""Fault tolerance and separate executor processes, in a subprocess with its own master.

``local-cluster[2,1,1024]`` runs two executor JVMs (each with its own Python workers), so
blocks are really shipped between processes; tasks are retried on failure. One
subprocess run (about 25 s to start the cluster) checks that
- the fit agrees with NumPy;
- every task failing on its first attempt still gives exactly the no-fault result;
- SIGKILLing one executor mid-fit: the fit completes with exactly the no-fault result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster_run() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HERE / "cluster_run.py"), "local-cluster[2,1,1024]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


pytestmark = pytest.mark.cluster


def test_the_cluster_has_two_executor_processes(cluster_run: dict[str, Any]) -> None:
    assert cluster_run["executors"] == 2


def test_a_multi_executor_fit_agrees_with_numpy(cluster_run: dict[str, Any]) -> None:
    ref, got = cluster_run["reference"], cluster_run["plain"]
    np.testing.assert_allclose(got["centers"], ref["centers"], rtol=1e-9)
    assert got["labels"] == ref["labels"]
    assert got["inertia"] == pytest.approx(ref["inertia"], rel=1e-9)


def test_tasks_failing_on_their_first_attempt_give_exactly_the_no_fault_result(cluster_run: dict[str, Any]) -> None:
    assert cluster_run["flaky"] == cluster_run["plain"]


def test_a_single_task_running_every_iteration_survives_its_failed_first_attempt(cluster_run: dict[str, Any]) -> None:
    ref, got = cluster_run["reference"], cluster_run["plain_one_task"]
    np.testing.assert_allclose(got["centers"], ref["centers"], rtol=1e-9)
    assert got["labels"] == ref["labels"]
    assert cluster_run["flaky_one_task"] == got


def test_killing_an_executor_mid_fit_gives_exactly_the_no_fault_result(cluster_run: dict[str, Any]) -> None:
    assert cluster_run["killed_pid"] is not None
    assert cluster_run["killed"] == cluster_run["plain"]


def test_nothing_stays_cached_on_the_cluster(cluster_run: dict[str, Any]) -> None:
    assert cluster_run["persistent_rdds"] == 0
