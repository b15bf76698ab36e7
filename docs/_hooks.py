"""MkDocs hook: render the reST roles used in kmeans docstrings as API cross-references.

Docstrings write ``:class:`~kmeans.protocols.Dataset``` (Sphinx style). Markdown renders
that as ``:class:<code>~kmeans.protocols.Dataset</code>``; this hook turns it into an
*optional* autorefs reference: a link when the target is in the API reference, plain code
otherwise (never a broken link, never a warning).
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([\w.]+)(\(\))?</code>")


def _reference(match: re.Match[str]) -> str:
    tilde, target, call = match.group(1), match.group(2), match.group(3) or ""
    title = target.rsplit(".", 1)[-1] if tilde else target
    identifier = target if "." in target and target.startswith("kmeans") else f"kmeans.{target}"
    return f'<autoref identifier="{identifier}" optional><code>{title}{call}</code></autoref>'


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(_reference, html)
