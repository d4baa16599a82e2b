"""Checkpoint: write, "crash" without a clean close, load, compare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from controlplane.errors import StoreError
from controlplane.model.series import STALE_NAN, SeriesBatch, labels_from
from controlplane.tsdb.checkpoint import Checkpointer
from controlplane.tsdb.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fill(store: Store, start: int, count: int, series: int = 30) -> None:
    refs = [store.series_ref(labels_from({"__name__": "m", "i": str(i)}))[0] for i in range(series)]
    for k in range(start, start + count):
        values = np.arange(series) * 1.5 + k
        if k % 17 == 0:
            values[3] = STALE_NAN
        store.append_many(refs, k * 5000, values)


def _same(a: SeriesBatch, b: SeriesBatch) -> None:
    assert a.labels == b.labels
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.timestamps, b.timestamps)
    assert np.array_equal(a.values.view(np.uint64), b.values.view(np.uint64))


def _everything(store: Store) -> SeriesBatch:
    return store.select_batch([], -(2**50), 2**50)


def _crash(cp: Checkpointer) -> None:
    """Drop the checkpointer as a killed process would: no close(), no final snapshot."""
    if cp._wal is not None:
        cp._wal.close()  # only to keep the test free of ResourceWarnings; nothing is flushed


@pytest.fixture(autouse=True)
def _close_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    opened: list[Checkpointer] = []
    load = Checkpointer.load

    def tracking_load(self: Checkpointer) -> object:
        opened.append(self)
        return load(self)

    monkeypatch.setattr(Checkpointer, "load", tracking_load)
    yield
    for cp in opened:
        _crash(cp)


def test_restart_loses_nothing_checkpointed(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store(chunk_samples=8)
    cp = Checkpointer(store, tmp_path, snapshot_interval_s=60, clock=clock)
    assert cp.load().series == 0
    _fill(store, 0, 30)
    cp.checkpoint()  # log only
    clock.now += 61
    _fill(store, 30, 25)
    cp.checkpoint()  # snapshot
    _fill(store, 55, 7)
    store.apply_retention(40 * 5000)
    cp.checkpoint()  # log after the snapshot, retention included
    _fill(store, 62, 3)  # after the last checkpoint: lost in the crash
    expected = store.select_batch([], -(2**50), 61 * 5000)
    _crash(cp)

    again = Store(chunk_samples=8)
    report = Checkpointer(again, tmp_path, clock=clock).load()
    assert report.generation == 1 and report.records_replayed > 0 and report.torn_bytes == 0
    _same(_everything(again), expected)
    assert again.generation != 0  # callers caching refs must look them up again
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "snapshot-00000001.npz",
        "wal-00000001.log",
    ]


def test_torn_log_tail_is_dropped_and_appends_continue(tmp_path: Path) -> None:
    store = Store(chunk_samples=8)
    cp = Checkpointer(store, tmp_path)
    cp.load()
    _fill(store, 0, 10)
    cp.checkpoint()
    expected = _everything(store)
    _fill(store, 10, 1)
    cp.checkpoint()
    _crash(cp)
    wal = tmp_path / "wal-00000000.log"
    wal.write_bytes(wal.read_bytes()[:-7])  # the last record was being written

    again = Store(chunk_samples=8)
    cp2 = Checkpointer(again, tmp_path)
    report = cp2.load()
    assert report.torn_bytes > 0
    _same(_everything(again), expected)
    _fill(again, 11, 2)
    cp2.checkpoint()
    want = _everything(again)
    _crash(cp2)
    third = Store(chunk_samples=8)
    Checkpointer(third, tmp_path).load()
    _same(_everything(third), want)


def test_close_writes_a_final_snapshot(tmp_path: Path) -> None:
    store = Store()
    cp = Checkpointer(store, tmp_path)
    cp.load()
    _fill(store, 0, 130, series=5)
    cp.close()
    assert store.journal is None
    again = Store()
    report = Checkpointer(again, tmp_path).load()
    assert report.records_replayed == 0
    _same(_everything(again), _everything(store))
    assert again.stats().blocks == store.stats().blocks


def test_interrupted_snapshot_leaves_the_previous_state(tmp_path: Path) -> None:
    store = Store(chunk_samples=8)
    cp = Checkpointer(store, tmp_path)
    cp.load()
    _fill(store, 0, 12)
    cp.checkpoint()
    expected = _everything(store)
    _crash(cp)
    # what a crash in the middle of the next snapshot leaves: a temp file and a new, empty log
    (tmp_path / ".snapshot-00000001.npz.1234.tmp").write_bytes(b"half a zip")
    (tmp_path / "wal-00000001.log").write_bytes(b"")
    again = Store(chunk_samples=8)
    Checkpointer(again, tmp_path).load()
    _same(_everything(again), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal-00000000.log"]


def test_checkpoint_needs_load_and_a_matching_store(tmp_path: Path) -> None:
    store = Store(chunk_samples=8)
    cp = Checkpointer(store, tmp_path)
    with pytest.raises(StoreError, match="before load"):
        cp.checkpoint()
    cp.load()
    _fill(store, 0, 3)
    cp.close()
    with pytest.raises(StoreError, match="chunk_samples"):
        Checkpointer(Store(chunk_samples=16), tmp_path).load()
