"""Issue 17's file benchmark: streamed full Lloyd from Parquet (and .npy) vs the in-memory pass.

Full size (``--benchmark-enable``): 10^8 x 8 float32 rows (3.2 GB; ``KMEANS_BENCH_FILE_ROWS``
overrides), written once into ``$TMPDIR/kmeans-bench-files`` and reused; smoke size: 2 * 10^5
rows. Each fit (k=16, ``init="random"``, 6 iterations, ``tol=0``) runs in its own process so
that its peak resident set (``VmHWM`` above the post-import baseline) is its own. The time of
a pass is the median gap between iterations in ``history_``. Goal (full size): a streamed
Parquet pass within 2x of the in-memory pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.conftest import Sizes
from tests.file_data import STATUS, write_blobs

pytest.importorskip("pyarrow")

N_FEATURES, K, ITERATIONS = 8, 16, 6
GOAL = 2.0

CHILD = (
    r"""
import json, sys
import numpy as np
from kmeans import KMeans
import kmeans.datasets as kd

"""
    + STATUS
    + r"""

mode, npy_path, pq_path, iterations = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(0)
KMeans(n_clusters=4, init="random", n_init=1, seed=0, max_iter=2).fit(rng.normal(size=(5000, 8)).astype(np.float32))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status()
if mode == "memory":
    X = np.load(npy_path)
elif mode.startswith("npy"):
    X = kd.npy(npy_path)
else:
    X = kd.parquet(pq_path)
if mode.endswith("+bounds"):
    X.row_state = True
model = KMeans(n_clusters=16, init="random", n_init=1, seed=0, max_iter=iterations, tol=0).fit(X)
gaps = np.diff([r.elapsed for r in model.history_])
print(json.dumps({"pass": float(np.median(gaps)), "grown_mb": status()["VmHWM"] - base["VmRSS"],
                  "inertia": model.inertia_}))
"""
)


def _write(root: Path, n: int) -> tuple[Path, Path]:
    npy_path, pq_path = root / f"x{n}.npy", root / f"x{n}.parquet"
    if not (npy_path.exists() and pq_path.exists()):
        root.mkdir(parents=True, exist_ok=True)
        write_blobs(npy_path, pq_path, n, N_FEATURES, K)
    return npy_path, pq_path


def _run(mode: str, npy_path: Path, pq_path: Path, iterations: int) -> dict[str, Any]:
    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="system", PYTHONPATH=os.getcwd())
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(npy_path), str(pq_path), str(iterations)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_streamed_lloyd_pass_vs_in_memory(sizes: Sizes, tmp_path: Path) -> None:
    n = int(os.environ.get("KMEANS_BENCH_FILE_ROWS", 10**8)) if sizes.full else 200_000
    root = Path(tempfile.gettempdir()) / "kmeans-bench-files" if sizes.full else tmp_path
    npy_path, pq_path = _write(root, n)
    iterations = ITERATIONS if sizes.full else 3
    modes = ("memory", "npy", "parquet", "npy+bounds", "parquet+bounds") if sizes.full else ("memory", "parquet")
    results = {m: _run(m, npy_path, pq_path, iterations) for m in modes}
    inertias = {r["inertia"] for r in results.values()}
    assert len(inertias) == 1, results  # the same rows, the same blocks: the same bits
    base = results["memory"]["pass"]
    lines = [f"{n} x {N_FEATURES} float32, k={K}: seconds per pass, ratio to in-memory, peak RSS growth (MiB)"]
    for mode, r in results.items():
        lines.append(f"  {mode:16s} {r['pass']:8.3f} s  {r['pass'] / base:5.2f}x  {r['grown_mb']:6d} MiB")
    print("\n".join(lines))
    if sizes.full:
        assert results["parquet"]["pass"] <= GOAL * base, "\n".join(lines)
