"""One local Spark session for the whole test run (``local[2]``, loopback, no UI, quiet logs).

Python workers import this checkout's ``kmeans`` (PYTHONPATH and ``spark.executorEnv.PYTHONPATH``
point at it). Every test here is marked ``spark``; none is ever skipped: a missing pyspark
or Java fails the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kmeans.backends._spark import session as spark_session

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.spark)


def local_test_session() -> Any:
    """The tests' local[2] session (the running one if a test module started it already)."""
    return spark_session.start_local_session(
        "local[2]",
        {
            "spark.app.name": "kmeans-tests",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.executorEnv.PYTHONPATH": str(ROOT),
        },
    )


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = local_test_session()
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sc(spark: Any) -> Any:
    return spark.sparkContext
