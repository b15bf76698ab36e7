"""The greedy k-means++ choice among candidates, canonical: pure NumPy (no Numba), shared by every path.

Candidate ``q``'s gain is ``G_q = sum_i t_iq`` with ``t_iq = w_i (D_i - min(D_i, cost_iq))``
in float64 (each difference and product rounded once): the lowest potential
``sum_i w_i min(D_i, cost_iq)`` is the largest gain. The choice is the largest *exact* gain,
equal gains to the lowest index: a function of the terms only, whatever the order in which
an engine, a block layout or a thread pool adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray


def exact_total(parts: Iterable[float]) -> Fraction:
    """The exact sum of float64 values."""
    return sum((Fraction(v) for v in parts), Fraction(0))


def best_gain(
    sums: NDArray[np.float64],
    count: int,
    cands: NDArray[np.float64],
    exact: Callable[[list[int]], list[Fraction]],
) -> int:
    """The candidate of largest exact gain, from float sums ``sums`` of ``count`` terms each.

    ``N`` nonnegative terms summed in any order and merged in any tree are within
    ``γ_{N-1} G`` of the exact ``G`` (Higham 2002, eq. 4.4), so a candidate whose upper bound
    is below the leader's lower bound cannot win. The others (near-ties, equal rows: rare)
    are compared exactly, ``exact(which)`` giving their exact gains; equal candidate rows
    have equal gains, so only the first of them is kept.
    """
    e = 1.01 * count * 2.0**-53 + 8 * 2.0**-53  # + the rounding of the bounds themselves
    lead = int(np.argmax(sums))
    if e < 0.01:
        close = [q for q in range(len(sums)) if q == lead or sums[q] * (1 + e) >= sums[lead] * (1 - e)]
    else:
        close = list(range(len(sums)))
    if len(close) > 1:
        _, first = np.unique(cands[close], axis=0, return_index=True)
        close = [close[i] for i in sorted(first.tolist())]
    if len(close) == 1:
        return close[0]
    totals = exact(close)
    return close[max(range(len(close)), key=lambda t: (totals[t], -close[t]))]
