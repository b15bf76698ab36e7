"""The :class:`Distance` pairing of an assign step and an update step."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Distance:
    """A metric (:class:`~kmeans.protocols.AssignStep`) and its center update
    (:class:`~kmeans.protocols.UpdateStep`), under one registry name.

    ``cost_power`` declares how the pair behaves when the data are multiplied by ``2**e``
    (exactly, so every step commutes with it): costs scale by ``2**(p e)`` and centers by
    ``2**e`` for ``p >= 1`` (L2: 2, L1: 1); ``p == 0`` means costs and centers do not change
    (cosine: directions). ``squares``: the metric squares coordinates, so data far from 1
    overflow or underflow unless rescaled. With ``cost_power=None`` (the default, e.g. a
    custom update paired with a built-in metric) the data are fitted as given.
    """

    name: str
    assign: Any
    update: Any
    cost_power: int | None = None
    squares: bool = False
