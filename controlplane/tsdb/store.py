"""The embedded time-series store: in memory, columnar, numpy; a `SeriesSource`.

    store = Store(retention_ms=86_400_000)          # nothing else to wire
    ref, created = store.series_ref(labels)         # once per new series (scrapers cache refs)
    store.append_many(refs, t_ms, values)           # a whole scrape in one call: the hot path
    store.select_batch(matchers, start_ms, end_ms)  # what the PromQL engine reads

Layout: a series is a ref (see postings.py). Its newest samples are a row of the head
(head.py); full rows are cut together into immutable, compactly encoded blocks (chunks.py).
Reads decode blocks and the head for many series at once and assemble one CSR SeriesBatch.

Semantics, as Prometheus's TSDB: per series, a sample must be newer than the last one; one with
the same timestamp and the same value is ignored, other older or equal-timestamp samples are
rejected and counted as out of order. Retention is by time relative to the newest sample (or
the `now_ms` given): reads never return samples older than the horizon, blocks entirely older
are freed, series left with no samples are deleted (and `generation` changes, so callers that
cache refs know to drop them). Thread-safe: one lock around every operation.

Long windows: with `history`, selected series (the SLO series) are also kept beyond retention,
downsampled, and reads reaching below the floor get them transparently (history.py).

Durability is the job of checkpoint.Checkpointer, which records every change through the
`journal` hook below and snapshots the state.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from controlplane.errors import StoreError
from controlplane.model import deadline
from controlplane.model.series import Labels, Matcher, Series, SeriesBatch
from controlplane.tsdb import export
from controlplane.tsdb.assemble import assemble
from controlplane.tsdb.blockindex import BlockIndex
from controlplane.tsdb.chunks import CHUNK_SAMPLES, F64, I64, Block, Piece, encode_rows, segments
from controlplane.tsdb.downsample import merge_older
from controlplane.tsdb.head import NO_TIME, Head
from controlplane.tsdb.history import History, HistoryConfig, HistoryStats
from controlplane.tsdb.postings import LabelIndex

DEFAULT_RETENTION_MS = 24 * 3600 * 1000
MAX_ABS_TIME = 2**53  # ms: +-285,000 years; keeps the encoders' arithmetic inside int64


class Journal(Protocol):
    """Receives every state change, in order, under the store's lock (see checkpoint.py)."""

    def series(self, ref: int, labels: Labels) -> None: ...

    def samples(self, refs: I64, t: I64, v: F64) -> None: ...

    def retention(self, now_ms: int) -> None: ...


@dataclass(frozen=True, kw_only=True)
class AppendResult:
    appended: int
    out_of_order: int = 0  # older than (or at the time of, with another value) the last sample
    duplicates: int = 0  # the same series more than once in one call
    unknown: int = 0  # refs of deleted series: drop cached refs and look them up again


@dataclass(frozen=True, kw_only=True)
class StoreStats:
    series: int
    head_samples: int
    block_samples: int
    blocks: int
    head_bytes: int
    block_bytes: int
    value_kinds: dict[str, int]  # samples in closed chunks per value encoding
    history: HistoryStats | None = None  # the long-term tier, when there is one


_KIND_NAMES = {0: "const", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float64"}


class Store:
    """In-memory columnar store. `retention_ms`: how much history to keep; `chunk_samples`:
    samples per closed chunk (rows are cut after that many); `align_fraction`: when rows are
    cut, rows of the same append holding at least this fraction of a chunk are cut with them,
    so series created at different times end up in the same blocks; `history`: the long-term
    tier (None: nothing outlives `retention_ms`)."""

    def __init__(
        self,
        *,
        retention_ms: int = DEFAULT_RETENTION_MS,
        chunk_samples: int = CHUNK_SAMPLES,
        align_fraction: float = 0.5,
        history: History | None = None,
    ) -> None:
        if retention_ms <= 0 or chunk_samples < 2:
            raise StoreError(f"bad store settings: {retention_ms=!r}, {chunk_samples=!r}")
        self.retention_ms = retention_ms
        if history is not None:
            history.config.check(retention_ms)
        self._lock = threading.RLock()
        self._index = LabelIndex()
        self._head = Head(chunk_samples)
        self._align = max(1, int(chunk_samples * align_fraction))
        self._blocks: list[Block] = []
        self._block_rows = np.zeros(0, np.int32)  # blocks holding each ref
        self._block_index = BlockIndex()  # which blocks hold which refs: reads visit only those
        self._floor_t = NO_TIME
        self._max_t = NO_TIME
        self.generation = 0
        self.journal: Journal | None = None
        self.history = history

    # -- writing -----------------------------------------------------------------------------

    def series_ref(self, labels: Labels) -> tuple[int, bool]:
        """(ref, created) for a label set as `controlplane.model.series.labels_from` builds them."""
        with self._lock:
            ref, created = self._index.add(labels)
            if created:
                self._make_room(ref)
                if self.journal is not None:
                    self.journal.series(ref, labels)
            return ref, created

    def labels_of(self, ref: int) -> Labels:
        labels = self._index.labels[ref] if 0 <= ref < self._index.capacity else None
        if labels is None:
            raise StoreError(f"no series with ref {ref!r}")
        return labels

    def append(self, labels: Labels, t_ms: int, value: float) -> AppendResult:
        ref, _ = self.series_ref(labels)
        return self.append_many([ref], t_ms, [value])

    def append_many(self, refs: Any, timestamps: Any, values: Any) -> AppendResult:
        """Append one sample per ref. `timestamps`: one int (ms) for all, or one per sample."""
        refs = np.asarray(refs, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        t = np.broadcast_to(np.asarray(timestamps, dtype=np.int64), refs.shape)
        if len(refs) == 0:
            return AppendResult(appended=0)
        if v.shape != refs.shape:
            raise StoreError(f"{len(refs)} refs but values of shape {v.shape!r}")
        if int(t.min()) < -MAX_ABS_TIME or int(t.max()) > MAX_ABS_TIME:
            raise StoreError(f"timestamp out of range: {int(t.min())!r}..{int(t.max())!r} ms")
        with self._lock:
            cap = self._index.capacity
            if int(refs.min()) < 0 or int(refs.max()) >= cap:
                raise StoreError(f"unknown series ref in {refs[(refs < 0) | (refs >= cap)]!r}")
            known = self._index.is_live(refs)
            unknown = len(refs) - int(known.sum())
            if unknown:
                refs, t, v = refs[known], t[known], v[known]
            acc = self._head.append(refs, t, v)
            if len(acc.refs):
                self._max_t = max(self._max_t, int(acc.t.max()))
                if self.journal is not None:
                    self.journal.samples(acc.refs, acc.t, acc.v)
                filled = self._head.n[acc.refs]
                if int(filled.max()) >= self._head.width:
                    self._cut(acc.refs[filled >= self._align])
            return AppendResult(
                appended=len(acc.refs),
                out_of_order=acc.out_of_order,
                duplicates=acc.duplicates,
                unknown=unknown,
            )

    def _make_room(self, ref: int) -> None:
        self._head.ensure(ref + 1)
        if ref >= len(self._block_rows):
            grown = np.zeros(self._head.capacity, np.int32)
            grown[: len(self._block_rows)] = self._block_rows
            self._block_rows = grown
        self._head.reset(np.array([ref], np.int64))

    def _cut(self, refs: I64) -> None:
        refs = np.sort(refs)
        t, v, n = self._head.take(refs)
        for block in encode_rows(refs, t, v, n):
            self._blocks.append(block)
            self._block_rows[block.refs] += 1

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Forget samples older than now - retention (the long-term tier gets the kept series'
        first); returns the number of series deleted."""
        with self._lock:
            now = self._max_t if now_ms is None else now_ms
            if now == NO_TIME:
                return 0
            if self.journal is not None:
                self.journal.retention(now)
            cutoff = now - self.retention_ms
            if self.history is not None:
                self._to_history(cutoff, now)
            self._floor_t = max(self._floor_t, cutoff)
            kept = []
            for block in self._blocks:
                if block.max_t < cutoff:
                    self._block_rows[block.refs] -= 1
                else:
                    kept.append(block)
            self._blocks = kept
            live = self._index.live_refs()
            expired = live[self._head.last_t[live] < cutoff]
            self._head.n[expired] = 0
            dead = expired[self._block_rows[expired] == 0]
            self._index.release()
            if len(dead):
                self._index.remove(dead.tolist())
                self._head.reset(dead)
                self.generation += 1
            return len(dead)

    def _to_history(self, cutoff: int, now: int) -> None:
        """Downsample what the floor is about to hide (kept series only), then age the tier."""
        assert self.history is not None
        todo = self.history.pending(cutoff)
        if todo is not None:
            refs = self._index.match([self.history.config.matcher])
            start = max(todo[0], self._floor_t)
            pieces = self._pieces(refs, start, todo[1]) if start <= todo[1] else []
            batch = assemble(refs, np.arange(len(refs)), pieces, self._index.labels)
            self.history.absorb(batch, todo[1])
        self.history.apply_retention(now)

    def configure_history(self, config: HistoryConfig) -> None:
        """New settings for the long-term tier (the SLO windows or their inputs changed)."""
        with self._lock:
            if self.history is None:
                raise StoreError("this store keeps no history")
            self.history.configure(config.check(self.retention_ms))

    def restore_series(self, ref: int, labels: Labels) -> None:
        """Register a series under a known ref (checkpoint loading and log replay)."""
        with self._lock:
            self._index.add_with_ref(ref, labels)
            self._make_room(ref)
            if self.journal is not None:
                self.journal.series(ref, labels)

    # -- reading -----------------------------------------------------------------------------

    def select_batch(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesBatch:
        """Series matching all matchers with samples in [start_ms, end_ms], in label order."""
        with self._lock:
            refs = self._index.match(matchers)
            start = max(start_ms, self._floor_t)
            pieces = self._pieces(refs, start, end_ms) if start <= end_ms else []
            order = np.searchsorted(refs, self._index.order(refs))
            batch = assemble(refs, order, pieces, self._index.labels)
            older = self._below_floor(matchers, start_ms, end_ms)
            return batch if older is None else merge_older(older, batch)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        batch = self.select_batch(matchers, start_ms, end_ms)
        return [batch.series(i) for i in range(len(batch))]

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        """Label names (incl. __name__) of the matching series that have data in the range.

        As in Prometheus, "has data" is judged per chunk: a series whose chunk overlaps the
        range counts even if no single sample falls inside it."""
        with self._lock:
            names = self._index.names_of(self._in_range(matchers, start_ms, end_ms))
            older = self._below_floor(matchers, start_ms, end_ms)
            return sorted(set(names).union(*map(dict, older.labels))) if older else names

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        with self._lock:
            values = self._index.values_of(name, self._in_range(matchers, start_ms, end_ms))
            older = self._below_floor(matchers, start_ms, end_ms)
            more = {v for lb in older.labels for k, v in lb if k == name} if older else set()
            return sorted(more.union(values)) if more else values

    def _below_floor(self, matchers: Sequence[Matcher], start: int, end: int) -> SeriesBatch | None:
        """The tier's samples in range (None: no tier, or the range starts above the floor);
        they end within a bucket of the floor, and merge_older drops those raw ones cover."""
        if self.history is None or start >= self._floor_t:
            return None
        return self.history.select(matchers, start, end)

    def _in_range(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> I64:
        refs = self._index.match(matchers)
        start = max(start_ms, self._floor_t)
        if start > end_ms or not len(refs):
            return refs[:0]
        head_first = self._head.first_t(refs)
        hit = (head_first != NO_TIME) & (head_first <= end_ms)
        hit &= self._head.last_t[refs] >= start
        for block in self._overlapping(start, end_ms):
            rows, i = block.rows_of(refs)
            first, last = block.row_bounds(rows)
            hit[i] |= (first <= end_ms) & (last >= start)
        return refs[hit]

    def _overlapping(self, start: int, end: int) -> list[Block]:
        return [b for b in self._blocks if b.max_t >= start and b.min_t <= end]

    def _pieces(self, refs: I64, start: int, end: int) -> list[tuple[I64, Piece]]:
        """(positions in refs, samples) per source, oldest source first."""
        pieces = []
        for block in self._block_index.holding(self._blocks, refs, start, end):
            deadline.check()  # a query over the whole retention reads many blocks
            rows, pos = block.rows_of(refs)
            if len(rows):
                piece = block.decode(rows, start, end)
                if piece is not None:
                    pieces.append((pos, piece))
        pieces.extend(self._head.read(refs, start, end))
        return pieces

    # -- export, import, introspection --------------------------------------------------------

    def export_range(self, start_ms: int, end_ms: int, path: str | Path) -> int:
        """Write every series' samples in [start_ms, end_ms] to `path` (format: export.py);
        returns the number of series written."""
        batch = self.select_batch([], start_ms, end_ms)
        export.write_export(batch, Path(path))
        return len(batch)

    def import_range(self, path: str | Path) -> AppendResult:
        """Append the samples of an export (samples not newer than a series' last are counted
        as out of order, so importing twice adds nothing)."""
        return self.append_batch(export.read_export(Path(path)))

    def append_batch(self, batch: SeriesBatch) -> AppendResult:
        """Append many samples per series: one append_many per sample rank (whole columns)."""
        refs = np.array([self.series_ref(labels)[0] for labels in batch.labels], dtype=np.int64)
        counts = np.diff(batch.offsets)
        totals = np.zeros(4, np.int64)
        for rank in range(int(counts.max()) if len(counts) else 0):
            has = counts > rank
            idx = batch.offsets[:-1][has] + rank
            r = self.append_many(refs[has], batch.timestamps[idx], batch.values[idx])
            totals += (r.appended, r.out_of_order, r.duplicates, r.unknown)
        a, o, d, u = (int(x) for x in totals)
        return AppendResult(appended=a, out_of_order=o, duplicates=d, unknown=u)

    def stats(self) -> StoreStats:
        with self._lock:
            kinds = np.zeros(len(_KIND_NAMES), np.int64)
            for b in self._blocks:
                kinds += np.bincount(b.v_kind, minlength=len(_KIND_NAMES)) * b.n
            return StoreStats(
                series=len(self._index),
                head_samples=int(self._head.n.sum()),
                block_samples=sum(len(b.refs) * b.n for b in self._blocks),
                blocks=len(self._blocks),
                head_bytes=self._head.nbytes,
                block_bytes=sum(b.nbytes for b in self._blocks),
                value_kinds={_KIND_NAMES[k]: int(c) for k, c in enumerate(kinds)},
                history=None if self.history is None else self.history.stats(),
            )

    # -- state for checkpoint.py ------------------------------------------------------------

    def lock(self) -> threading.RLock:
        return self._lock

    def export_state(self) -> tuple[dict[str, Any], list[Block], dict[str, npt.NDArray[Any]]]:
        """(meta, blocks, head arrays) for a snapshot; call with `lock()` held."""
        live = self._index.live_refs()
        n = self._head.n[live].astype(np.int64)
        flat = segments(live * self._head.width, n)
        free, quarantine = self._index.free_refs()
        meta = {
            "labels": [[int(r), [list(p) for p in self._index.labels[r] or ()]] for r in live],
            "free": free,
            "quarantine": quarantine,
            "floor_t": self._floor_t,
            "max_t": self._max_t,
            "generation": self.generation,
            "chunk_samples": self._head.width,
        }
        head = {
            "refs": live,
            "n": n,
            "t": self._head.t.ravel()[flat],
            "v": self._head.v.ravel()[flat],
            "last_t": self._head.last_t[live],
            "last_v": self._head.last_v[live],
        }
        return meta, list(self._blocks), head

    def import_state(
        self, meta: dict[str, Any], blocks: list[Block], head: dict[str, npt.NDArray[Any]]
    ) -> None:
        """Replace an empty store's state with a snapshot's (see export_state)."""
        with self._lock:
            if len(self._index) or self._blocks:
                raise StoreError("import_state needs an empty store")
            if meta["chunk_samples"] != self._head.width:
                raise StoreError(f"snapshot chunk_samples {meta['chunk_samples']!r} differs")
            journal, self.journal = self.journal, None
            try:
                for ref, pairs in meta["labels"]:
                    self.restore_series(ref, tuple((k, v) for k, v in pairs))
            finally:
                self.journal = journal
            self._index.restore_free(meta["free"], meta["quarantine"])
            refs = head["refs"]
            self._head.n[refs] = head["n"]
            self._head.last_t[refs], self._head.last_v[refs] = head["last_t"], head["last_v"]
            flat = segments(refs * self._head.width, head["n"])
            self._head.t.ravel()[flat], self._head.v.ravel()[flat] = head["t"], head["v"]
            self._blocks = list(blocks)
            for block in blocks:
                self._block_rows[block.refs] += 1
            self._floor_t, self._max_t = meta["floor_t"], meta["max_t"]
            self.generation = meta["generation"] + 1
