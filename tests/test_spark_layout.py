"""The Spark package's layout contracts, checked without a Spark session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kmeans
from kmeans.backends._spark import session


def test_python_workers_get_the_directory_that_holds_the_package() -> None:
    # Regression: after the move into a package the path pointed at kmeans/ itself, so
    # workers imported kmeans/_random.py as the standard library's _random.
    root = Path(kmeans.__file__).resolve().parents[1]
    first = session._python_path().split(os.pathsep)[0]
    if root.name not in ("site-packages", "dist-packages"):
        assert Path(first) == root and (Path(first) / "kmeans" / "__init__.py").is_file()


def test_no_spark_module_imports_pyspark_when_imported() -> None:
    code = (
        "import sys\n"
        "import kmeans.backends._spark.session, kmeans.backends._spark.inputs, kmeans.backends._spark.blocks\n"
        "import kmeans.backends._spark.frames, kmeans.backends._spark.store, kmeans.backends._spark.mllib\n"
        "import kmeans.spark, kmeans.spark.session\n"
        "assert 'pyspark' not in sys.modules, sorted(m for m in sys.modules if m.startswith('pyspark'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(kmeans.__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
