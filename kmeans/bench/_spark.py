"""The benchmarks' Spark session: the library's own local-session helpers, sized for the raccoon."""

from __future__ import annotations

from typing import Any

from kmeans.backends import _spark
from kmeans.errors import MissingDependencyError

#: The paper's code keeps per-pixel Python tuples and several cached RDDs alive: give the driver room.
BENCH_CONF = {"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}


def spark_available() -> str | None:
    """``None`` when a local Spark session can start, else why it cannot."""
    try:
        _spark.require_pyspark()
        _spark.require_java()
    except MissingDependencyError as exc:
        return str(exc)
    return None


def get_or_start_session(master: str = "local[2]") -> tuple[Any, bool]:
    """``(session, started_here)``: the active session, or a quiet loopback one started now.

    The caller stops the session only when ``started_here`` is true.
    """
    active = _spark.active_session()
    if active is not None:
        return active, False
    return _spark.start_local_session(master, BENCH_CONF), True
