"""The code examples of the documentation: extracted from Markdown, run like a notebook.

Every fenced ```` ```python ```` block of ``docs/**/*.md`` and ``README.md`` is an example.
The blocks of one page run in order in one shared namespace, in a fresh working
directory, so a page reads like a tutorial and files it writes go nowhere.

A block may be preceded by one marker line (an HTML comment, invisible in the site):

- ``<!-- docs-test: spark -->``: needs a Spark session; run by ``tests/spark/test_docs_spark.py``
  with the shared test session active (the page's other blocks run before it there too).
- ``<!-- docs-test: skip REASON -->``: never run; the reason is required (keep these rare:
  only for snippets that cannot run anywhere, such as a ``spark-submit`` cluster URL).

A page may also hold hidden set-up code, run in order with its blocks but not shown on
the site, for examples that name a user's file (``quantize("photo.jpg")``) or data::

    <!-- docs-test: setup
    Image.open(raccoon_path()).save("photo.jpg")
    -->

``<!-- docs-test: spark-setup`` is the same for set-up that needs Spark (run only by the
Spark docs test), such as building the ``df`` or ``rdd`` an example fits.

Any other ``docs-test`` marker is an error, so a typo cannot silently skip an example.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmeans import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```python\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<kind>\S+)\s*(?P<reason>.*?)\s*-->\s*$")
_SETUP = re.compile(r"^<!--\s*docs-test:\s*(?P<kind>setup|spark-setup)\s*$")
KINDS = ("run", "spark", "skip")
#: Kinds run by the plain docs test, and by the Spark docs test (which runs them all in page order).
LOCAL_KINDS = ("setup", "run")
SPARK_KINDS = ("setup", "run", "spark-setup", "spark")


@dataclass(frozen=True)
class Example:
    """One ``python`` block: its page, first line (1-based), marker kind and source."""

    page: Path
    line: int
    kind: str
    source: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """Every Markdown page of the docs site, and the README."""
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def examples(page: Path) -> list[Example]:
    """The ``python`` blocks of ``page`` in order, with their markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        setup = _SETUP.match(lines[i].strip())
        if setup:
            end = i + 1
            while end < len(lines) and lines[end].strip() != "-->":
                end += 1
            if end == len(lines):
                raise ValueError(f"{page}:{i + 1}: unclosed docs-test setup comment")
            found.append(Example(page, i + 2, setup["kind"], "\n".join(lines[i + 1 : end]) + "\n"))
            i = end + 1
            continue
        if not _FENCE.match(lines[i]):
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{page}:{i + 1}: unclosed ```python block")
        found.append(Example(page, start + 1, _marker(page, lines, i), "\n".join(lines[start:end]) + "\n"))
        i = end + 1
    return found


def _marker(page: Path, lines: list[str], fence: int) -> str:
    j = fence - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or "docs-test" not in lines[j]:
        return "run"
    match = _MARKER.match(lines[j].strip())
    if match is None or match["kind"] not in KINDS[1:]:
        raise ValueError(f"{page}:{j + 1}: unknown marker {lines[j].strip()!r}; use one of {KINDS[1:]}")
    if match["kind"] == "skip" and not match["reason"]:
        raise ValueError(f"{page}:{j + 1}: a docs-test skip marker needs a reason")
    return match["kind"]


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextmanager
def isolated_registries() -> Iterator[None]:
    """Strategies an example registers are forgotten afterwards (other tests see the real registries)."""
    saved = [
        (reg, dict(reg._entries), dict(reg._hints))
        for reg in (registry.backends, registry.initializers, registry.distances)
    ]
    try:
        yield
    finally:
        for reg, entries, hints in saved:
            reg._entries.clear()
            reg._entries.update(entries)
            reg._hints.clear()
            reg._hints.update(hints)


def run_examples(blocks: list[Example], workdir: Path) -> dict[str, Any]:
    """Run ``blocks`` in order in one namespace inside ``workdir``; return the namespace.

    A failure names the page and line of the block that failed.
    """
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    with working_directory(workdir), isolated_registries():
        for block in blocks:
            # padded so tracebacks show the page's own line numbers
            code = compile("\n" * (block.line - 1) + block.source, str(block.page), "exec")
            try:
                exec(code, namespace)
            except Exception as exc:
                raise AssertionError(f"the example at {block.where} failed: {exc!r}") from exc
    return namespace
