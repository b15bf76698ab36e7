"""Helpers for the issue-14 subprocess tests (imported by the child process)."""

from __future__ import annotations

import os
import signal

import numpy as np

from kmeans import KMeans


def save_under_sigterm(path: str) -> None:
    """Fit a small model and save it to ``path`` while SIGTERM arrives mid-write (in fsync)."""
    model = KMeans(2, seed=0).fit(np.arange(20.0).reshape(10, 2))
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real_fsync(fd)

    os.fsync = fsync
    try:
        model.save(path)
    finally:
        os.fsync = real_fsync
