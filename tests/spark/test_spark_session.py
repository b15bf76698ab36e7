"""Session handling and input detection of kmeans.backends._spark."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmeans import KMeans, MissingDependencyError
from kmeans.backends._spark import inputs
from kmeans.backends._spark import session as spark_session

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_callers_active_session_is_used(spark: Any) -> None:
    assert spark_session.get_session() is spark
    assert not spark_session.owns_session(spark)


def test_a_fit_never_stops_the_callers_session(spark: Any) -> None:
    KMeans(2, backend="spark-rdd", init="random", seed=0, max_iter=2).fit(np.arange(8.0).reshape(4, 2))
    assert spark.sparkContext._jsc is not None
    assert spark.range(3).count() == 3


def test_stop_owned_session_leaves_the_callers_session_alone(spark: Any) -> None:
    spark_session.stop_owned_session()
    assert spark.sparkContext._jsc is not None


def test_spark_objects_are_detected(spark: Any, sc: Any) -> None:
    rdd = sc.parallelize([[1.0]])
    df = spark.createDataFrame([(1.0,)], ["x"])
    assert inputs.is_rdd(rdd) and not inputs.is_dataframe(rdd)
    assert inputs.is_dataframe(df) and not inputs.is_rdd(df)
    assert not inputs.is_spark_input(np.zeros((2, 2)))


def test_the_numpy_backend_never_imports_pyspark() -> None:
    result = _run(
        """
        import sys
        import numpy as np
        from kmeans import KMeans
        from kmeans.backends._spark import inputs, session as spark_session
        X = np.arange(20.0).reshape(10, 2)
        KMeans(2, seed=0).fit(X).predict(X)
        assert not inputs.is_spark_input(X)
        assert "pyspark" not in sys.modules, "pyspark was imported"
        """
    )
    assert result.returncode == 0, result.stderr


def test_missing_pyspark_names_the_package_to_install() -> None:
    result = _run(
        """
        import sys
        sys.modules["pyspark"] = None  # makes 'import pyspark' fail like an absent package
        from kmeans import KMeans, MissingDependencyError
        import numpy as np
        try:
            KMeans(2, backend="spark-rdd").fit(np.zeros((4, 2)))
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'kmeans[spark]'" in result.stdout
    assert "spark-rdd" in result.stdout


def test_missing_java_says_to_install_a_java_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="Java 17 or 21"):
        spark_session.start_local_session()


def test_local_sessions_bind_to_loopback_and_log_quietly() -> None:
    conf = spark_session.local_conf()
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert "log4j2.configurationFile=file:" in conf["spark.driver.extraJavaOptions"]
    assert "rootLogger.level = error" in spark_session.log4j2_file().read_text()


def test_without_a_session_one_is_started_on_loopback_and_stopped_at_exit() -> None:
    result = _run(
        """
        import numpy as np
        from kmeans import KMeans
        from kmeans.backends._spark import inputs, session as spark_session
        m = KMeans(2, backend="spark-rdd", seed=0, max_iter=3).fit(np.array([[0.0], [1.0], [9.0], [10.0]]))
        s = spark_session.get_session()
        assert spark_session.owns_session(s)
        print(s.conf.get("spark.driver.host"), sorted(m.cluster_centers_.ravel().tolist()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["127.0.0.1", "[0.5,", "9.5]"]
