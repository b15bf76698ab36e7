"""``import kmeans`` loads no compiled kernels; the lazy names are the same objects as before."""

from __future__ import annotations

import subprocess
import sys


def test_import_kmeans_loads_no_numba_and_every_public_name_resolves() -> None:
    script = (
        "import sys, kmeans\n"
        "before = 'numba' in sys.modules\n"
        "from kmeans.sweep import parse_ks\n"  # the submodule: kmeans.sweep stays the function
        "import kmeans.estimator\n"
        "ok = [callable(kmeans.sweep), kmeans.sweep is kmeans.sweep.__globals__['sweep'],\n"
        "      kmeans.KMeans is kmeans.estimator.KMeans, set(kmeans.__all__) <= set(dir(kmeans)),\n"
        "      all(getattr(kmeans, n) is not None for n in kmeans.__all__), kmeans.driver.lloyd is kmeans.lloyd]\n"
        "try:\n    kmeans.no_such_name\nexcept AttributeError:\n    ok.append(True)\n"
        "print(before, ok)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False [True, True, True, True, True, True, True]"
