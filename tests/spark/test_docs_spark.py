"""The documentation's Spark examples (``<!-- docs-test: spark -->`` blocks) run on the shared session.

A page with Spark blocks runs all its runnable blocks in order here (the plain ones too,
since Spark blocks build on them), with the test session active, so that the library
and ``SparkSession.builder.getOrCreate()`` in the examples use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.doc_examples import ROOT, SPARK_KINDS, examples, pages, run_examples

SPARK_PAGES = [p for p in pages() if any(e.kind in ("spark", "spark-setup") for e in examples(p))]


@pytest.mark.parametrize("page", SPARK_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_spark_examples_run(page: Path, tmp_path: Path, spark: Any) -> None:
    run_examples([e for e in examples(page) if e.kind in SPARK_KINDS], tmp_path)


def test_the_readme_has_a_spark_example() -> None:
    assert ROOT / "README.md" in SPARK_PAGES
