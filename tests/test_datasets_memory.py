"""File-backed fits in bounded memory: a 600 MB file fitted by a process given 200 MB.

Both fits run in one subprocess. After imports and a warm-up fit (kernels compiled) the child
sets ``RLIMIT_DATA`` (private
writable memory: the heap, anonymous maps, thread stacks) to its current size plus 400 MB:
loading the file (600 MB) is refused under that limit, which the child checks first.
``RLIMIT_AS`` is not used: numba, BLAS and Arrow reserve address space they never touch.
Arrow's default allocator (mimalloc) reserves about 1 GB of address space up front, which
``RLIMIT_DATA`` counts, so the child uses Arrow's system allocator. The bound asserted is
the measured one: the peak resident set (``VmHWM``) above the post-warm-up baseline stays
below 200 MB, a third of the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.file_data import STATUS, write_blobs

pytest.importorskip("pyarrow")

N_ROWS, N_FEATURES = 19_660_800, 8  # float32: 600 MiB of values
ALLOWANCE_MB = 200
LIMIT_MB = 400

CHILD = (
    r"""
import json, resource, sys
import numpy as np
from kmeans import KMeans
import kmeans.datasets as kd

"""
    + STATUS
    + r"""

npy_path, pq_path, limit_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
KMeans(n_clusters=4, init="random", n_init=1, seed=0, max_iter=2).fit(rng.normal(size=(5000, 8)).astype(np.float32))
datasets = {"npy": kd.npy(npy_path), "parquet": kd.parquet(pq_path)}
base = status()
limit = (base["VmData"] + limit_mb) << 20
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    np.load(npy_path)
    loaded = True
except MemoryError:
    loaded = False
report = {"loaded": loaded}
for kind, dataset in datasets.items():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    base = status()
    model = KMeans(n_clusters=8, init="random", n_init=1, seed=0, max_iter=1, tol=0).fit(dataset)
    report[kind] = {"base": base, "after": status(), "n_iter": model.n_iter_, "inertia": model.inertia_}
print(json.dumps(report))
"""
)


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 600 MiB ``.npy`` and the same rows as an uncompressed Parquet file."""
    root = tmp_path_factory.mktemp("big")
    paths = {"npy": root / "x.npy", "parquet": root / "x.parquet"}
    write_blobs(paths["npy"], paths["parquet"], N_ROWS, N_FEATURES, k=8)
    return paths


@pytest.mark.slow
def test_fits_of_files_three_times_the_memory_given(big_files: dict[str, Path]) -> None:
    for path in big_files.values():
        assert path.stat().st_size >= 3 * (ALLOWANCE_MB << 20)
    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="system", PYTHONPATH=os.getcwd())
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(big_files["npy"]), str(big_files["parquet"]), str(LIMIT_MB)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["loaded"], "the limit must refuse loading the file itself"
    assert report["npy"]["inertia"] == report["parquet"]["inertia"]  # the same rows, the same bits
    for kind in ("npy", "parquet"):
        fit = report[kind]
        assert fit["n_iter"] == 1 and np.isfinite(fit["inertia"])
        grown = fit["after"]["VmHWM"] - fit["base"]["VmRSS"]
        assert grown < ALLOWANCE_MB, (kind, report)
