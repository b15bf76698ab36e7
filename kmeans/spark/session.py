"""Spark sessions as the library uses them, for scripts and applications; imports pyspark only when called.

- :func:`get_session`: the active session, else a loopback ``local[*]`` session started now,
  owned by the library and stopped at exit (or by :func:`stop_owned_session`).
- :func:`active_session`: the caller's session, or ``None``; never starts one.
- :func:`start_local_session`: a new session on this machine bound to 127.0.0.1, quiet logs,
  Python workers on this interpreter; ``conf`` overrides :func:`local_conf`.
- :func:`spark_available`: ``None`` when a local session can start, else the reason
  (pyspark or Java missing) with the fix.
"""

from __future__ import annotations

from kmeans.backends._spark.session import (
    active_session,
    get_session,
    local_conf,
    require_java,
    require_pyspark,
    start_local_session,
    stop_owned_session,
)
from kmeans.errors import MissingDependencyError

__all__ = [
    "active_session",
    "get_session",
    "local_conf",
    "spark_available",
    "start_local_session",
    "stop_owned_session",
]


def spark_available() -> str | None:
    """``None`` when a local Spark session can start here, else why it cannot (and how to fix it)."""
    try:
        require_pyspark()
        require_java()
    except MissingDependencyError as exc:
        return str(exc)
    return None
