"""The block store's files, without Spark: atomic writes, unreadable files read as absent, owner cleanup."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from kmeans._kernels.bounds import Bounds
from kmeans.backends._spark.store import BlockStore, StoredMemory


def test_blocks_round_trip_with_and_without_weights(tmp_path: Path) -> None:
    store = BlockStore(str(tmp_path / "store"))
    stored = [
        (np.arange(6.0).reshape(3, 2), None, 0, True),
        (np.ones((2, 2), np.float32), np.array([1.0, 2.0]), 3, False),
    ]
    assert store.read(0) is None
    store.write(0, stored)
    store.write(0, [])  # a second attempt's copy loses: the first stays
    got = store.read(0)
    assert got is not None and len(got) == 2
    for (p, w, s, i), (q, v, t, j) in zip(got, stored, strict=True):
        np.testing.assert_array_equal(p, q)
        assert p.dtype == q.dtype and (s, i) == (t, j)
        assert (w is None) == (v is None)
    store.remove()
    assert not Path(store.root).exists()


def test_stored_memory_round_trips_and_reads_broken_files_as_absent(tmp_path: Path) -> None:
    memory = BlockStore(str(tmp_path / "store")).memory()
    bounds = Bounds(np.eye(3), np.array([0, 2, 1], dtype=np.int32), np.array([0.5, 1.0, 2.0], dtype=np.float32))
    assert memory.get(7) is None and memory.get(7, "none") == "none"
    memory[7] = bounds
    copy = pickle.loads(pickle.dumps(memory))  # what a task gets: the same files, not the deleting owner
    got = copy.get(7)
    np.testing.assert_array_equal(got.labels, bounds.labels)
    np.testing.assert_array_equal(got.centers, bounds.centers)
    Path(memory.root, "7.pickle").write_bytes(b"\x80\x05broken")
    assert copy.get(7) is None
    root = Path(memory.root)
    del copy
    assert root.exists()
    del memory
    assert not root.exists()


def test_stored_memory_is_a_no_op_where_files_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    memory = StoredMemory(str(blocker / "below"))  # a directory under a plain file: cannot exist
    memory[1] = "state"
    assert memory.get(1) is None
    store = BlockStore(str(blocker / "store"))
    store.write(0, [(np.zeros((2, 2)), None, 0, True)])
    assert store.read(0) is None


def test_stored_memory_keeps_other_keys_in_the_process(tmp_path: Path) -> None:
    memory = BlockStore(str(tmp_path / "store")).memory()
    memory["shared"] = (1, 2)
    memory[np.int64(4)] = "four"
    assert memory.get("shared") == (1, 2)
    copy = pickle.loads(pickle.dumps(memory))
    assert copy.get("shared") is None  # not shipped: any entry may be missing
    assert copy.get(4) == "four"
