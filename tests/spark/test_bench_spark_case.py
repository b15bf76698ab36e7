"""``kmeans bench shapes --spark`` in smoke size: both engines run the same Lloyd iterations to the same model."""

from __future__ import annotations

from typing import Any

import pytest

from kmeans.bench.spark_case import SparkCase, format_spark_case, run_spark_case


def test_spark_case_runs_both_engines_to_the_same_inertia(spark: Any) -> None:
    case = SparkCase(n=4_000, d=4, k=4, partitions=2, short=1, long=2, repeats=1)
    results = run_spark_case(spark, case)
    assert set(results) == {"spark-rdd", "MLlib"}
    ours, mllib = results["spark-rdd"], results["MLlib"]
    assert ours.n_iter == mllib.n_iter == case.long
    assert ours.inertia == pytest.approx(mllib.inertia, rel=1e-9)
    table = format_spark_case(case, results)
    assert "| spark-rdd |" in table and "| MLlib |" in table and "per iteration" in table
