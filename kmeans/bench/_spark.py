"""The benchmarks' Spark session: the library's own local-session helpers, sized for the raccoon."""

from __future__ import annotations

from typing import Any

from kmeans.spark.session import active_session, spark_available, start_local_session

__all__ = ["BENCH_CONF", "get_or_start_session", "spark_available"]

#: The paper's code keeps per-pixel Python tuples and several cached RDDs alive: give the driver room.
BENCH_CONF = {"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}


def get_or_start_session(master: str = "local[2]") -> tuple[Any, bool]:
    """``(session, started_here)``: the active session, or a quiet loopback one started now.

    The caller stops the session only when ``started_here`` is true.
    """
    active = active_session()
    if active is not None:
        return active, False
    return start_local_session(master, BENCH_CONF), True
