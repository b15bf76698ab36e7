"""The documentation site builds with warnings as errors, and every example in it runs.

See :mod:`tests.doc_examples` for how examples are found and marked. Examples that need
Spark run in ``tests/spark/test_docs_spark.py``; module doctests run here for every
module of ``kmeans`` that does not need Spark.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest

import kmeans
from tests.doc_examples import LOCAL_KINDS, ROOT, examples, pages, run_examples


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_EXAMPLES = [p for p in pages() if any(e.kind == "run" for e in examples(p))]


@pytest.mark.slow
def test_docs_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=_page_id)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    blocks = [e for e in examples(page) if e.kind in LOCAL_KINDS]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an example that warns is teaching the wrong call
        run_examples(blocks, tmp_path)


def test_every_page_parses_and_has_no_unmarked_skips() -> None:
    skipped = [e.where for p in pages() for e in examples(p) if e.kind == "skip"]
    assert len(skipped) <= 3, f"too many skipped examples (run them instead): {skipped}"


def _local_modules() -> list[str]:
    """Every module of ``kmeans`` that does not need Spark (name without ``spark``).

    ``__main__`` modules are left out: importing one runs the command line.
    """
    names = [kmeans.__name__]
    for info in pkgutil.walk_packages(kmeans.__path__, prefix="kmeans."):
        if "spark" not in info.name and not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def _doctests(module: ModuleType) -> list[doctest.DocTest]:
    return [t for t in doctest.DocTestFinder().find(module, module.__name__) if t.examples]


MODULES_WITH_DOCTESTS = [m for m in _local_modules() if _doctests(importlib.import_module(m))]


def test_the_package_docstring_has_a_doctest() -> None:
    assert "kmeans" in MODULES_WITH_DOCTESTS


@pytest.mark.parametrize("name", MODULES_WITH_DOCTESTS)
def test_module_doctests_pass(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in _doctests(module):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
