"""Spark plumbing shared by the Spark backends, one module per concept.

- :mod:`.session`: the caller's active ``SparkSession`` (never stopped), or a loopback
  session with quiet logs started here and stopped at exit (:func:`.session.stop_owned_session`).
- :mod:`.inputs`: whether an object is an RDD or a DataFrame, from ``sys.modules`` only (no
  pyspark import), and :func:`.inputs.to_blocks`, which turns an ndarray, an RDD of rows or a
  DataFrame into blocks.
- :mod:`.blocks`: :class:`.blocks.SparkBlocks`, a cached RDD of ``(points, weights or None,
  local_start)`` tuples with per-partition row offsets, viewed lazily as
  :class:`~kmeans._types.Block` objects with *global* row offsets. The one validation pass
  (non-numeric values, nulls, NaN/inf, ragged rows, empty input) also fills the cache and
  raises :class:`~kmeans.errors.ValidationError` before any iteration runs.
- :mod:`.frames`: DataFrame feature columns and the Arrow path from a DataFrame to blocks.
- :mod:`.store`: per-partition block files on local masters, read copy-on-write by every pass.
- :mod:`.mllib`: the calls into Spark MLlib that the ``spark-ml`` adapter makes.

No module here imports pyspark at import time.
"""
