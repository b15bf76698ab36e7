"""Engines. ``numpy`` is always available; the Spark backends import pyspark lazily."""
