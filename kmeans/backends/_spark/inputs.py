"""Spark inputs: which objects are Spark ones (no pyspark import) and the entry point that makes them blocks."""

from __future__ import annotations

from typing import Any

from kmeans.backends._spark.blocks import BLOCK_ROWS, SparkBlocks, blocks_from_array, blocks_from_rdd
from kmeans.backends._spark.frames import blocks_from_dataframe
from kmeans.backends._spark.session import get_context, loaded
from kmeans.errors import ValidationError


def is_rdd(X: Any) -> bool:
    """True when ``X`` is a ``pyspark.RDD`` (checked without importing pyspark)."""
    if loaded("pyspark") is None:
        return False
    from pyspark import RDD

    return isinstance(X, RDD)


def is_dataframe(X: Any) -> bool:
    """True when ``X`` is a classic ``pyspark.sql.DataFrame`` (checked without importing pyspark)."""
    sql = loaded("pyspark.sql")
    if sql is None:
        return False
    return isinstance(X, sql.DataFrame) and not is_connect(X)


def is_connect(X: Any) -> bool:
    """True for Spark Connect objects, which have no RDD API."""
    return type(X).__module__.startswith("pyspark.sql.connect")


def is_spark_input(X: Any) -> bool:
    """True for an RDD or a DataFrame."""
    return is_rdd(X) or is_dataframe(X)


def to_blocks(
    X: Any,
    sample_weight: Any = None,
    *,
    features: Any = None,
    num_partitions: int | None = None,
    block_rows: int = BLOCK_ROWS,
    store: bool = True,
) -> SparkBlocks:
    """Any supported input (ndarray-like, RDD, DataFrame) as validated, cached :class:`SparkBlocks`."""
    if is_connect(X):
        raise ValidationError(
            "Spark Connect DataFrames have no RDD API, which the spark-rdd backend needs; "
            "use a classic SparkSession, or backend='spark-ml'"
        )
    if is_dataframe(X):
        return blocks_from_dataframe(X, sample_weight, features=features, block_rows=block_rows, store=store)
    if features is not None:
        raise ValidationError("features= selects DataFrame columns; it cannot be used with an array or an RDD")
    if is_rdd(X):
        return blocks_from_rdd(X, sample_weight, block_rows=block_rows, store=store)
    return blocks_from_array(get_context(), X, sample_weight, num_partitions=num_partitions, store=store)
