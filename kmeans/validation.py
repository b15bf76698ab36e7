"""Public input checks for strategy authors: the ones the built-in backends use.

A backend's ``dataset(X, sample_weight)`` validates before any pass over the data with
these, so its errors read like the built-in ones (:class:`~kmeans.errors.ValidationError`
naming the problem and the fix):

- :func:`check_points`: ``X`` as a 2-D numeric ``(n_rows, n_features)`` array in its own
  dtype (an ``(h, w, c)`` image is flattened to pixels); empty, 1-D, non-numeric and
  non-finite input are refused.
- :func:`check_weights`: ``sample_weight`` as ``(n_rows,)`` finite non-negative float64 with
  at least one positive value (``None`` stays ``None``: unit weights).
- :func:`check_finite`, :func:`check_centers`, :func:`check_positive_int`, :func:`check_tol`.
"""

from __future__ import annotations

from kmeans._validation import (
    check_centers,
    check_finite,
    check_points,
    check_positive_int,
    check_tol,
    check_weights,
)

__all__ = ["check_centers", "check_finite", "check_points", "check_positive_int", "check_tol", "check_weights"]
