"""The distinct-key kernel behind ``compress``: equal to ``np.unique`` for any keys in range."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kmeans._kernels.packing import unique_small_keys


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 1 << 12),
    data=st.data(),
)
def test_unique_small_keys_equals_numpy_unique(size: int, data: st.DataObject) -> None:
    keys = np.asarray(
        data.draw(st.lists(st.integers(0, size - 1), max_size=300)),
        dtype=np.int64,
    )
    uniq, inverse = unique_small_keys(keys, size)
    expected, expected_inverse = np.unique(keys, return_inverse=True)
    assert np.array_equal(uniq, expected)
    assert np.array_equal(inverse, expected_inverse.reshape(-1))
    assert inverse.dtype == np.intp


def test_word_edges_and_the_largest_rgb_key() -> None:
    # Keys at both ends of 64-bit words and of the 24-bit range: the bit counts below
    # a key and the ranks of the words before it must add up exactly there.
    size = 1 << 24
    keys = np.array([size - 1, 0, 63, 64, 65, 127, 128, 0, size - 64, size - 65, 63], dtype=np.int64)
    uniq, inverse = unique_small_keys(keys, size)
    expected, expected_inverse = np.unique(keys, return_inverse=True)
    assert np.array_equal(uniq, expected)
    assert np.array_equal(inverse, expected_inverse)


def test_every_key_of_a_full_word_range() -> None:
    keys = np.arange(256, dtype=np.int64)[::-1].copy()
    uniq, inverse = unique_small_keys(keys, 256)
    assert np.array_equal(uniq, np.arange(256))
    assert np.array_equal(inverse, np.arange(256)[::-1])


def test_no_keys() -> None:
    uniq, inverse = unique_small_keys(np.empty(0, dtype=np.int64), 1 << 24)
    assert uniq.shape == (0,) and inverse.shape == (0,)
