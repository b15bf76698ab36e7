"""The :class:`Distance` pairing of an assign step and an update step."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Distance:
    """A metric (:class:`~kmeans.protocols.AssignStep`) and its center update
    (:class:`~kmeans.protocols.UpdateStep`), under one registry name."""

    name: str
    assign: Any
    update: Any
