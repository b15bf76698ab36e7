"""Spark sessions: the caller's active one, or a quiet loopback session this package starts and stops."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import kmeans
from kmeans.errors import MissingDependencyError

INSTALL_HINT = "Install it with: pip install 'kmeans[spark]' (pyspark, pandas<3 and pyarrow)"


INSTALL_HINT = "Install it with: pip install 'kmeans[spark]' (pyspark, pandas<3 and pyarrow)"
JAVA_HINT = (
    "Spark needs a Java 17 or 21 runtime: install one (e.g. 'apt-get install openjdk-17-jre-headless' "
    "or https://adoptium.net) and put 'java' on PATH or set JAVA_HOME"
)


_LOG4J2 = """\
# Written by kmeans: Spark logs errors only (started sessions are otherwise very chatty).
rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


_lock = threading.Lock()


_lock = threading.Lock()
_owned: Any = None  # the SparkSession this module started, if any


def loaded(module: str) -> Any:
    return sys.modules.get(module)


def require_pyspark() -> Any:
    """Import and return ``pyspark``, or raise :class:`MissingDependencyError` saying what to install."""
    try:
        import pyspark
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Spark backends need pyspark, which is not installed ({exc}). {INSTALL_HINT}"
        ) from exc
    return pyspark


def require_java() -> str:
    """Path of the ``java`` executable Spark will start, or :class:`MissingDependencyError`."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
    java = shutil.which("java")
    if java is None:
        raise MissingDependencyError(f"no Java runtime found (JAVA_HOME unset and no 'java' on PATH). {JAVA_HINT}")
    return java


def log4j2_file() -> Path:
    """A log4j2 properties file that makes Spark log errors only (written once, atomically)."""
    path = Path(tempfile.gettempdir()) / f"kmeans-log4j2-{os.getuid() if hasattr(os, 'getuid') else 0}.properties"
    if not path.exists() or path.read_text() != _LOG4J2:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J2)
        os.replace(tmp, path)
    return path


def _python_path() -> str:
    """PYTHONPATH for Python workers: this ``kmeans`` checkout first, then the caller's path."""
    root = str(Path(kmeans.__file__).resolve().parents[1])
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    if Path(root).name in ("site-packages", "dist-packages"):
        return os.pathsep.join(current)  # an installed kmeans: workers find it already
    return os.pathsep.join([root, *current])


def local_conf(master: str = "local[*]", app_name: str = "kmeans") -> dict[str, str]:
    """Configuration of a local session: loopback only, no UI, quiet logs, workers see ``kmeans``."""
    log = f"-Dlog4j2.configurationFile=file:{log4j2_file()}"
    path = {"spark.executorEnv.PYTHONPATH": _python_path()} if _python_path() else {}
    return {
        **path,
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": log,
        "spark.executor.extraJavaOptions": log,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.pyspark.python": sys.executable,
    }


def start_local_session(master: str = "local[*]", conf: dict[str, str] | None = None) -> Any:
    """Start a SparkSession on this machine bound to 127.0.0.1 (``conf`` overrides :func:`local_conf`)."""
    require_pyspark()
    require_java()
    from pyspark.sql import SparkSession

    # The JVM reads these when it starts: the driver must listen on loopback only, and
    # Python workers must use this interpreter and find this ``kmeans``.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if _python_path():
        os.environ["PYTHONPATH"] = _python_path()
    builder = SparkSession.builder
    for key, value in {**local_conf(master), **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def active_session() -> Any:
    """The caller's SparkSession (a session over the caller's SparkContext), or None."""
    if loaded("pyspark") is None:
        return None
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    if SparkContext._active_spark_context is not None:
        return SparkSession.builder.getOrCreate()  # wraps the running context, creates no new one
    return None


def get_session() -> Any:
    """The active SparkSession, else a local one this module starts (and later stops)."""
    global _owned
    require_pyspark()
    with _lock:
        session = active_session()
        if session is not None:
            return session
        _owned = start_local_session()
        return _owned


def get_context() -> Any:
    """The SparkContext of :func:`get_session`."""
    return get_session().sparkContext


def owns_session(session: Any) -> bool:
    """True when ``session`` was started by this module (so it may be stopped by it)."""
    return _owned is not None and session is _owned


@atexit.register
def stop_owned_session() -> None:
    """Stop the session this module started, if any; sessions the caller owns are left alone."""
    global _owned
    with _lock:
        if _owned is not None:
            _owned.stop()
            _owned = None
