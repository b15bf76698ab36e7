"""BLAS threads: one per block while blocks run in parallel (no oversubscription).

The NumPy backend runs blocks on its own threads; a BLAS library that also starts its
threads inside every call oversubscribes the cores (measured: a 20-iteration fit at
d=16 took 9x longer). Like scikit-learn's KMeans, we limit BLAS to one thread for the
length of a parallel pass, through threadpoolctl (one controller, made once: a limit
then costs microseconds).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS libraries loaded in this process use one thread inside the ``with`` block."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
