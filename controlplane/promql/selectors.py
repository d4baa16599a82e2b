"""Picking samples for selectors, for every series and every step in one numpy call.

The samples of all series are laid end to end (CSR). Shifting each series' timestamps into its
own disjoint key interval makes the whole block one sorted array, so a single `searchsorted`
answers "last sample at or before t" or "window (t-range, t]" for every (series, step) pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controlplane.model.series import SeriesBatch, stale_mask
from controlplane.promql.values import F64, I64, Mask

# Times are clipped into this range so that shifted keys never overflow int64.
TIME_LIMIT = 2**52


@dataclass(frozen=True)
class Segments:
    keys: I64
    base: int
    stride: int
    offsets: I64

    @classmethod
    def build(cls, timestamps: I64, offsets: I64) -> Segments:
        n = len(offsets) - 1
        if len(timestamps) == 0:
            base, span = 0, 0
        else:
            base = int(timestamps.min())
            span = int(timestamps.max()) - base
        stride = span + 2
        series_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        keys = timestamps - base + series_of * stride
        return cls(keys=keys, base=base, stride=stride, offsets=offsets)

    def count_upto(self, times: I64, rows: I64 | None = None) -> I64:
        """Global index one past the last sample with t <= times, per (row, time).

        `times` is (T,) or (n, T); the result is (n, T), always inside each row's segment.
        """
        if rows is None:
            rows = np.arange(len(self.offsets) - 1, dtype=np.int64)
        rel = np.clip(np.asarray(times, dtype=np.int64) - self.base, -1, self.stride - 2)
        rel = np.atleast_2d(rel)
        query = rel + (rows * self.stride)[:, None]
        return np.searchsorted(self.keys, query.ravel(), side="right").reshape(query.shape)


def clip_times(times: I64) -> I64:
    return np.clip(times, -TIME_LIMIT, TIME_LIMIT)


def pick_latest(batch: SeriesBatch, refs: I64, lookback_ms: int) -> tuple[F64, Mask, I64]:
    """Per series and step: the latest sample in (ref - lookback, ref], unless it is stale."""
    n, steps = len(batch), len(refs)
    if n == 0 or len(batch.timestamps) == 0:
        return (
            np.empty((n, steps)),
            np.zeros((n, steps), dtype=bool),
            np.zeros((n, steps), np.int64),
        )
    segments = Segments.build(batch.timestamps, batch.offsets)
    pos = segments.count_upto(refs) - 1
    ok = pos >= batch.offsets[:-1, None]
    pos = np.where(ok, pos, 0)
    ts = batch.timestamps[pos]
    values = batch.values[pos]
    ok &= ts > (refs - lookback_ms)[None, :]
    ok &= ~stale_mask(values)
    return values, ok, ts


def drop_stale(batch: SeriesBatch) -> SeriesBatch:
    keep = ~stale_mask(batch.values)
    if keep.all():
        return batch
    kept = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return SeriesBatch(
        labels=batch.labels,
        timestamps=batch.timestamps[keep],
        values=batch.values[keep],
        offsets=kept[batch.offsets],
    )


def window_bounds(timestamps: I64, offsets: I64, ends: I64, range_ms: int) -> tuple[I64, I64]:
    """Global [lo, hi) sample indices of the window (end - range, end] per (series, step)."""
    n = len(offsets) - 1
    if n == 0 or len(timestamps) == 0:
        start = np.repeat(offsets[:-1, None], len(ends), axis=1)
        return start, start.copy()
    segments = Segments.build(timestamps, offsets)
    hi = segments.count_upto(ends)
    lo = segments.count_upto(ends - range_ms)
    return lo, hi
