"""The long-term tier: selected series kept beyond the store's raw retention, downsampled.

SLOs are judged over 30 days while the store keeps a day of raw samples. The tier keeps the
series an SLO page needs (by metric name: `slo:.*` and the SLIs' own inputs, see
HistoryConfig) for the longest SLO window plus a margin, at one sample per `resolution_ms`
(downsample.py says which sample and why). It costs nothing on the append path:

    store = Store(retention_ms=DAY, history=History(HistoryConfig(retention_ms=31 * DAY)))

- **Filled at retention.** When `Store.apply_retention` moves the raw floor, the raw samples of
  kept series up to the end of the bucket holding the new floor are downsampled into the tier
  first (`absorb`), so the tier always covers everything below the floor. A bucket is
  complete by then: the floor is a whole raw retention behind the newest sample, and the
  resolution is at most the raw retention (Store checks it).
- **Read transparently.** `Store.select_batch` reads raw samples from the floor on and the tier
  up to the end of the bucket holding the floor, and merges the two per series
  (downsample.merge_older): tier samples stop where the series' raw ones start, so there are
  no duplicates, no gap at the floor, time order is kept, and series only the tier still holds
  are included.
- **Laid out like the store.** Its own label index (series outlive their raw refs, which the
  store reuses), buckets appended to an open buffer, sealed every `SEAL_BUCKETS` buckets into
  the store's immutable, compressed `Block`s (regular timestamps cost a few bytes per block).
- **Durable through the checkpoint.** Snapshots hold its state (`export_state`); the write-ahead
  log needs nothing new: replaying a retention record replays the absorb, deterministically.

Not thread-safe: the store's lock covers every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from controlplane.errors import StoreError
from controlplane.model.regex import RegexError
from controlplane.model.series import METRIC_NAME, Matcher, MatchOp, SeriesBatch
from controlplane.tsdb.assemble import assemble
from controlplane.tsdb.chunks import Block, Piece, encode_rows, segments
from controlplane.tsdb.downsample import bucket_end, concat, last_per_bucket
from controlplane.tsdb.export import json_bytes, json_load
from controlplane.tsdb.head import NO_TIME
from controlplane.tsdb.postings import LabelIndex

DAY_MS = 86_400_000
DEFAULT_WINDOW_MS = 30 * DAY_MS  # the SLO window assumed until the SLO specs say otherwise
# buckets per sealed block, as the raw store's chunks: 10 h at 5 minutes, ~75 blocks a month;
# the open buffer costs 24 B a sample until sealed, a block 1-9
SEAL_BUCKETS = 120
_EMPTY_I = np.empty(0, np.int64)
_EMPTY_F = np.empty(0, np.float64)


@dataclass(frozen=True, kw_only=True)
class HistoryConfig:
    """Which series the tier keeps and how. `match`: a metric-name regex (RE2, anchored, as
    PromQL's `=~`); `names`: exact metric names kept as well (the SLIs' inputs);
    `retention_ms`: how far back the tier reaches (the longest SLO window + a margin)."""

    match: str = "slo:.*"
    names: frozenset[str] = frozenset()
    resolution_ms: int = 300_000
    retention_ms: int = DEFAULT_WINDOW_MS + DAY_MS

    @property
    def matcher(self) -> Matcher:
        alternatives = [f"(?:{self.match})", *sorted(self.names)]
        return Matcher(name=METRIC_NAME, op=MatchOp.RE, value="|".join(alternatives))

    def check(self, raw_retention_ms: int) -> HistoryConfig:
        # a bucket longer than the raw retention would be downsampled before it is complete
        if self.resolution_ms > raw_retention_ms:
            raise StoreError(
                f"history resolution {self.resolution_ms} ms is longer than the store's "
                f"retention ({raw_retention_ms} ms)"
            )
        return self


@dataclass(frozen=True, kw_only=True)
class HistoryStats:
    series: int
    samples: int
    bytes: int


class History:
    """The tier itself (see the module docstring); the store calls it under its lock."""

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self.config = _checked(config or HistoryConfig())
        self._index = LabelIndex()
        self._blocks: list[Block] = []
        self._block_rows = np.zeros(0, np.int32)  # per tier id: blocks holding it
        self._last_t = np.zeros(0, np.int64)  # per tier id: newest bucket end (NO_TIME: none)
        self._open: tuple[Any, Any, Any] = (_EMPTY_I, _EMPTY_I, _EMPTY_F)  # ids, t, v
        self.done_ms = NO_TIME  # raw samples up to here are downsampled
        self.floor_ms = NO_TIME  # nothing older is kept

    def configure(self, config: HistoryConfig) -> None:
        """Take new settings (the SLO specs were reloaded); what is kept stays until it ages
        out, and series no longer matched stop being added."""
        self.config = _checked(config)

    # -- writing (Store.apply_retention) ---------------------------------------------------

    def pending(self, floor_ms: int) -> tuple[int, int] | None:
        """(start, end) of the raw samples to downsample before the raw floor moves to
        `floor_ms`, or None when those buckets are done already."""
        upto = bucket_end(floor_ms, self.config.resolution_ms)
        return None if upto <= self.done_ms else (self.done_ms + 1, upto)

    def absorb(self, raw: SeriesBatch, upto_ms: int) -> None:
        """Downsample raw samples (all of them at or before `upto_ms`) into the tier."""
        down = last_per_bucket(raw, self.config.resolution_ms)
        if len(down):
            ids = np.array([self._id(labels) for labels in down.labels], np.int64)
            per = np.repeat(ids, np.diff(down.offsets))
            # a bucket already kept (raw samples fed twice) is not kept again
            fresh = down.timestamps > self._last_t[per]
            per, t, v = per[fresh], down.timestamps[fresh], down.values[fresh]
            np.maximum.at(self._last_t, per, t)
            self._open = concat([self._open, (per, t, v)])
        self.done_ms = max(self.done_ms, upto_ms)
        t_open = self._open[1]
        if len(t_open) and np.ptp(t_open) >= (SEAL_BUCKETS - 1) * self.config.resolution_ms:
            self._seal()

    def _id(self, labels: Any) -> int:
        ref, created = self._index.add(labels)
        if created:
            if ref >= len(self._last_t):
                grow = max(ref + 1, len(self._last_t) * 3 // 2, 64) - len(self._last_t)
                self._last_t = np.concatenate([self._last_t, np.full(grow, NO_TIME)])
                self._block_rows = np.concatenate([self._block_rows, np.zeros(grow, np.int32)])
            self._last_t[ref] = NO_TIME
        return ref

    def _seal(self) -> None:
        """The open buffer into blocks: one per distinct sample count, each dense."""
        ids, t, v = self._open
        order = np.lexsort((t, ids))
        ids, t, v = ids[order], t[order], v[order]
        rows, counts = np.unique(ids, return_counts=True)
        width = int(counts.max())
        flat = segments(np.arange(len(rows)) * width, counts)
        t2 = np.zeros((len(rows), width), np.int64)
        v2 = np.zeros((len(rows), width), np.float64)
        t2.reshape(-1)[flat], v2.reshape(-1)[flat] = t, v
        for block in encode_rows(rows, t2, v2, counts):
            self._blocks.append(block)
            self._block_rows[block.refs] += 1
        self._open = (_EMPTY_I, _EMPTY_I, _EMPTY_F)

    def apply_retention(self, now_ms: int) -> None:
        """Forget buckets older than now - retention, then the series left with none."""
        self.floor_ms = max(self.floor_ms, now_ms - self.config.retention_ms)
        kept = []
        for block in self._blocks:
            if block.max_t < self.floor_ms:
                self._block_rows[block.refs] -= 1
            else:
                kept.append(block)
        self._blocks = kept
        ids, t, v = self._open
        young = t >= self.floor_ms
        self._open = (ids[young], t[young], v[young])
        live = self._index.live_refs()
        dead = live[(self._last_t[live] < self.floor_ms) & (self._block_rows[live] == 0)]
        self._index.release()
        if len(dead):
            self._index.remove(dead.tolist())

    # -- reading ---------------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesBatch:
        """Kept samples of the matching series in [start_ms, end_ms], in label order."""
        ids = self._index.match(matchers)
        start = max(start_ms, self.floor_ms)
        pieces = []
        if start <= end_ms and len(ids):
            for block in self._blocks:
                if block.max_t >= start and block.min_t <= end_ms:
                    rows, pos = block.rows_of(ids)
                    piece = block.decode(rows, start, end_ms) if len(rows) else None
                    if piece is not None:
                        pieces.append((pos, piece))
            pieces.extend(self._read_open(ids, start, end_ms))
        order = np.searchsorted(ids, self._index.order(ids))
        return assemble(ids, order, pieces, self._index.labels)

    def _read_open(self, ids: Any, start: int, end: int) -> list[tuple[Any, Piece]]:
        open_ids, t, v = self._open
        hit = (t >= start) & (t <= end) & np.isin(open_ids, ids)
        if not hit.any():
            return []
        open_ids, t, v = open_ids[hit], t[hit], v[hit]
        order = np.lexsort((t, open_ids))
        rows, counts = np.unique(open_ids, return_counts=True)
        pos = np.searchsorted(ids, rows)
        return [(pos, Piece(t=t[order], v=v[order], counts=counts.astype(np.int64)))]

    def stats(self) -> HistoryStats:
        open_ids, t, v = self._open
        arrays = (open_ids, t, v, self._last_t, self._block_rows)
        return HistoryStats(
            series=len(self._index),
            samples=len(t) + sum(len(b.refs) * b.n for b in self._blocks),
            bytes=sum(b.nbytes for b in self._blocks) + sum(a.nbytes for a in arrays),
        )

    # -- state for checkpoint.py -----------------------------------------------------------

    def export_state(self) -> dict[str, npt.NDArray[Any]]:
        """Arrays for a snapshot (blocks are immutable: shared, not copied)."""
        live = self._index.live_refs()
        free, quarantine = self._index.free_refs()
        meta = {
            "labels": [[int(r), [list(p) for p in self._index.labels[r] or ()]] for r in live],
            "free": free,
            "quarantine": quarantine,
            "done_ms": self.done_ms,
            "floor_ms": self.floor_ms,
        }
        ids, t, v = self._open
        out: dict[str, npt.NDArray[Any]] = {"meta": json_bytes(meta), "last_t": self._last_t.copy()}
        out.update(open_ids=ids, open_t=t, open_v=v)
        for i, block in enumerate(self._blocks):
            out.update({f"b{i:06d}_{k}": a for k, a in block.to_arrays().items()})
        return out

    def import_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Restore a snapshot's tier into this (empty) one."""
        if len(self._index) or self._blocks:
            raise StoreError("History.import_state needs an empty tier")
        meta = json_load(arrays["meta"])
        for ref, pairs in meta["labels"]:
            self._index.add_with_ref(ref, tuple((k, v) for k, v in pairs))
        self._index.restore_free(meta["free"], meta["quarantine"])
        self._last_t = arrays["last_t"].astype(np.int64)
        self._block_rows = np.zeros(len(self._last_t), np.int32)
        self._open = (arrays["open_ids"], arrays["open_t"], arrays["open_v"])
        grouped: dict[str, dict[str, npt.NDArray[Any]]] = {}
        for key, a in arrays.items():
            if key.startswith("b") and "_" in key:
                prefix, _, name = key.partition("_")
                grouped.setdefault(prefix, {})[name] = a
        self._blocks = [Block.from_arrays(grouped[k]) for k in sorted(grouped)]
        for block in self._blocks:
            self._block_rows[block.refs] += 1
        self.done_ms, self.floor_ms = meta["done_ms"], meta["floor_ms"]


def _checked(config: HistoryConfig) -> HistoryConfig:
    if config.resolution_ms <= 0 or config.retention_ms <= 0:
        raise StoreError(f"bad history settings: {config!r}")
    try:
        config.matcher.compiled()
    except RegexError as exc:
        raise StoreError(f"history match {config.match!r}: {exc}") from None
    return config
