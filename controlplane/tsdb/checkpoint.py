"""Durability for the store (snapshot + write-ahead log) and the export file format.

Checkpoint directory (`Checkpointer(store, directory)`):

    snapshot-<gen>.npz   the whole store at one instant (numpy .npz, written to a temp file,
                         fsynced and renamed, so a crash never leaves a torn snapshot), its
                         long-term tier included (`history_*` arrays, see history.py)
    wal-<gen>.log        every change since that snapshot: series created, samples appended,
                         retention applied; records are length-prefixed and CRC32-checked

The store reports changes through its `journal` hook; they are buffered in memory and
`checkpoint()` appends them to the log and fsyncs it. Whoever runs the scrapes calls
`checkpoint()` at least once per scrape interval (ScrapeManager does), so a crash loses at most
one interval. Every `snapshot_interval_s`, `checkpoint()` also writes a new snapshot and starts
a new log. `load()` restores the newest snapshot, replays its log up to the first torn or
corrupt record (the tail a crash can leave) and truncates it there.

Export format (`write_export` / `read_export`, used by Store.export_range / import_range and by
backtests): one uncompressed .npz holding a SeriesBatch as is: `timestamps` (int64 ms),
`values` (float64, staleness markers kept bit for bit), `offsets` (int64, series i owns
[offsets[i], offsets[i+1])), and `labels` and `meta` as UTF-8 JSON in uint8 arrays:
`labels` is a list of {name: value} objects, `meta` is
{"format": "controlplane-export", "version": 1}.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from controlplane.errors import StoreError
from controlplane.model.series import Labels
from controlplane.tsdb.chunks import F64, I64, Block
from controlplane.tsdb.export import atomic_write, json_bytes, json_load, savez

if TYPE_CHECKING:
    from controlplane.tsdb.store import Store

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sBIII")  # magic, kind, count, payload bytes, crc32 of payload
_MAGIC = b"CPW1"
_SERIES, _SAMPLES, _SAMPLES_AT, _RETENTION = 1, 2, 3, 4
_SNAPSHOT_RE = re.compile(r"snapshot-(\d{8})\.npz")
_WAL_RE = re.compile(r"wal-(\d{8})\.log")
_MAX_PENDING = 64 << 20  # bytes buffered before they are written without waiting


@dataclass(frozen=True, kw_only=True)
class LoadReport:
    generation: int
    series: int
    records_replayed: int
    torn_bytes: int  # bytes dropped at the end of the log (an interrupted write)


class Checkpointer:
    """Makes `store` survive restarts using `directory` (created if missing).

    Call `load()` once at start (before anything appends), `checkpoint()` periodically (at
    least once per scrape interval) and `close()` at shutdown (a final snapshot).
    `clock` (monotonic seconds) decides when a snapshot is due.
    """

    def __init__(
        self,
        store: Store,
        directory: str | Path,
        *,
        snapshot_interval_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.directory = Path(directory)
        self.snapshot_interval_s = snapshot_interval_s
        self._clock = clock
        self._io = threading.Lock()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._generation = 0
        self._wal: BinaryIO | None = None
        self._last_snapshot = clock()

    # -- the journal the store writes to (called under the store's lock) ---------------------

    def series(self, ref: int, labels: Labels) -> None:
        self._record(_SERIES, 1, struct.pack("<q", ref) + json.dumps(labels).encode())

    def samples(self, refs: I64, t: I64, v: F64) -> None:
        if len(t) and (t == t[0]).all():
            payload = struct.pack("<q", int(t[0])) + refs.tobytes() + v.tobytes()
            self._record(_SAMPLES_AT, len(refs), payload)
        else:
            self._record(_SAMPLES, len(refs), refs.tobytes() + t.tobytes() + v.tobytes())

    def retention(self, now_ms: int) -> None:
        self._record(_RETENTION, 1, struct.pack("<q", now_ms))

    def _record(self, kind: int, count: int, payload: bytes) -> None:
        header = _HEADER.pack(_MAGIC, kind, count, len(payload), zlib.crc32(payload))
        self._pending.append(header + payload)
        self._pending_bytes += len(header) + len(payload)
        if self._pending_bytes > _MAX_PENDING and self._wal is not None:
            self._write_pending()

    def _write_pending(self) -> None:
        """Move buffered records to the log (page cache); the caller holds the store's lock,
        which keeps records in order."""
        assert self._wal is not None
        self._wal.writelines(self._pending)
        self._wal.flush()
        self._pending, self._pending_bytes = [], 0

    # -- files -------------------------------------------------------------------------------

    def _snapshot_path(self, gen: int) -> Path:
        return self.directory / f"snapshot-{gen:08d}.npz"

    def _wal_path(self, gen: int) -> Path:
        return self.directory / f"wal-{gen:08d}.log"

    def _generations(self, pattern: re.Pattern[str]) -> list[int]:
        return sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := pattern.fullmatch(p.name))
        )

    def load(self) -> LoadReport:
        """Restore the store from the directory, then start journaling its changes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        gens = self._generations(_SNAPSHOT_RE)
        self._generation = gens[-1] if gens else 0
        for gen in self._generations(_WAL_RE):
            if gen > self._generation:  # a snapshot that never completed started this log
                self._wal_path(gen).unlink()
        for tmp in self.directory.glob(".snapshot-*.tmp"):
            tmp.unlink()
        if gens:
            self._load_snapshot(self._snapshot_path(self._generation))
        replayed, torn = self._replay(self._wal_path(self._generation))
        self._wal = open(self._wal_path(self._generation), "ab")  # noqa: SIM115 - kept open
        self.store.journal = self
        self._last_snapshot = self._clock()
        report = LoadReport(
            generation=self._generation,
            series=self.store.stats().series,
            records_replayed=replayed,
            torn_bytes=torn,
        )
        log.info("store loaded from %s: %s", self.directory, report)
        return report

    def checkpoint(self) -> None:
        """Make every change so far durable; write a new snapshot when one is due."""
        with self._io:
            if self._wal is None:
                raise StoreError(f"checkpoint of {str(self.directory)!r} before load()")
            if self._clock() - self._last_snapshot >= self.snapshot_interval_s:
                self._snapshot()
                return
            with self.store.lock():
                self._write_pending()
            os.fsync(self._wal.fileno())

    def snapshot(self) -> None:
        with self._io:
            self._snapshot()

    def close(self) -> None:
        """Final snapshot (the next start is fast), then stop journaling."""
        with self._io:
            if self._wal is None:
                return
            self._snapshot()
            with self.store.lock():
                self.store.journal = None
                self._wal.close()
                self._wal = None

    def _snapshot(self) -> None:
        assert self._wal is not None
        with self.store.lock():
            self._write_pending()
            os.fsync(self._wal.fileno())
            meta, blocks, head = self.store.export_state()
            history = self.store.history.export_state() if self.store.history else {}
            self._wal.close()
            self._generation += 1
            # 'wb': a log left by an earlier failed snapshot of this generation is stale
            self._wal = open(self._wal_path(self._generation), "wb")  # noqa: SIM115
        arrays: dict[str, npt.NDArray[Any]] = {"meta": json_bytes(meta)}
        arrays.update({f"head_{k}": a for k, a in head.items()})
        arrays.update({f"history_{k}": a for k, a in history.items()})
        for i, block in enumerate(blocks):
            arrays.update({f"block{i:06d}_{k}": a for k, a in block.to_arrays().items()})
        atomic_write(self._snapshot_path(self._generation), lambda f: savez(f, **arrays))
        for gen in self._generations(_SNAPSHOT_RE):
            if gen < self._generation:
                self._snapshot_path(gen).unlink(missing_ok=True)
        for gen in self._generations(_WAL_RE):
            if gen < self._generation:
                self._wal_path(gen).unlink(missing_ok=True)
        self._last_snapshot = self._clock()

    def _load_snapshot(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read snapshot {str(path)!r}: {exc}") from exc
        meta = json_load(arrays.pop("meta"))
        head = {k[5:]: a for k, a in arrays.items() if k.startswith("head_")}
        history = {k[8:]: a for k, a in arrays.items() if k.startswith("history_")}
        grouped: dict[str, dict[str, npt.NDArray[Any]]] = {}
        for key, a in arrays.items():
            if key.startswith("block"):
                prefix, _, field = key.partition("_")
                grouped.setdefault(prefix, {})[field] = a
        blocks = [Block.from_arrays(grouped[k]) for k in sorted(grouped)]
        self.store.import_state(meta, blocks, head)
        if history and self.store.history is not None:
            with self.store.lock():
                self.store.history.import_state(history)
        elif history:
            log.warning("%s: the store keeps no history now: the snapshot's is dropped", path)

    def _replay(self, path: Path) -> tuple[int, int]:
        if not path.exists():
            return 0, 0
        data = path.read_bytes()
        count, good = 0, 0
        for kind, n, payload, end in _records(data):
            self._apply(kind, n, payload)
            count, good = count + 1, end
        if good < len(data):
            log.warning("%s: dropping %d torn bytes at the end", path, len(data) - good)
            with open(path, "r+b") as f:
                f.truncate(good)
        return count, len(data) - good

    def _apply(self, kind: int, n: int, payload: bytes) -> None:
        store = self.store
        if kind == _SERIES:
            (ref,) = struct.unpack_from("<q", payload)
            labels = tuple((k, v) for k, v in json.loads(payload[8:]))
            store.restore_series(ref, labels)
        elif kind == _SAMPLES:
            refs = np.frombuffer(payload, np.int64, n)
            t = np.frombuffer(payload, np.int64, n, 8 * n)
            store.append_many(refs, t, np.frombuffer(payload, np.float64, n, 16 * n))
        elif kind == _SAMPLES_AT:
            (t0,) = struct.unpack_from("<q", payload)
            refs = np.frombuffer(payload, np.int64, n, 8)
            store.append_many(refs, t0, np.frombuffer(payload, np.float64, n, 8 + 8 * n))
        elif kind == _RETENTION:
            store.apply_retention(struct.unpack_from("<q", payload)[0])


def _records(data: bytes) -> Iterator[tuple[int, int, bytes, int]]:
    """(kind, count, payload, end offset) of each intact record, stopping at the first bad one."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        magic, kind, count, size, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        payload = data[start : start + size]
        if magic != _MAGIC or len(payload) != size or zlib.crc32(payload) != crc:
            return
        pos = start + size
        yield kind, count, payload, pos
