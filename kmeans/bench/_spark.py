"""A local Spark session for the benchmarks, configured as SPARK_NOTES.md recommends."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


def spark_available() -> str | None:
    """``None`` when a local Spark session can start, else why it cannot."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'kmeans[spark]')"
    import shutil

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime on PATH (install Java 17 or 21)"
    return None


def get_or_start_session(master: str = "local[2]") -> tuple[Any, bool]:
    """``(session, started_here)``: the active session, or a quiet loopback one started now.

    The caller stops the session only when ``started_here`` is true.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    log4j = Path(tempfile.gettempdir()) / "kmeans-bench-log4j2.properties"
    if not log4j.exists():
        log4j.write_text(_LOG4J)
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
    session = (
        SparkSession.builder.master(master)
        .appName("kmeans-bench")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "3g")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session, True
