"""Picking samples for selectors, for every series and every step with a few numpy calls.

The samples of all series are laid end to end (CSR). "Last sample at or before t" and "window
(t-range, t]" for every (series, step) pair come from one histogram: the step from which each
sample counts (a search among the T step times, which stay in cache), counted per series and
step, summed along the steps. That is linear in samples and windows; a binary search of every
(series, step) among all samples was not, once the samples outgrew the CPU's cache.

Series are taken a block at a time (`row_blocks`, at most BLOCK_WINDOWS (series, step) pairs),
so that the temporaries of each block stay in cache as well.

`Segments` (all series' timestamps shifted into disjoint key intervals, one sorted array) is
kept for sources that search few times in many samples (memsource.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from controlplane.model import deadline
from controlplane.model.series import SeriesBatch, stale_mask
from controlplane.promql.values import F64, I64, Mask

# Times are clipped into this range so that shifted keys never overflow int64.
TIME_LIMIT = 2**52
# (series, step) pairs computed together: a block's float64 temporaries (256 KiB each) stay in
# cache, and the numpy calls per block (about a hundred) stay a small share of its work.
BLOCK_WINDOWS = 32_768


def row_blocks(rows: int, steps: int, limit: int | None = None) -> Iterator[tuple[int, int]]:
    """[start, stop) row ranges of at most `limit` (series, step) pairs each (at least a row)."""
    per = max(1, (limit or BLOCK_WINDOWS) // max(steps, 1))
    for start in range(0, rows, per):
        deadline.check()
        yield start, min(rows, start + per)


def column_blocks(rows: int, steps: int, limit: int | None = None) -> Iterator[tuple[int, int]]:
    """[start, stop) step ranges of at most `limit` (series, step) pairs each (at least a step)."""
    per = max(1, (limit or BLOCK_WINDOWS) // max(rows, 1))
    for start in range(0, steps, per):
        deadline.check()
        yield start, min(steps, start + per)


def counts_upto(timestamps: I64, offsets: I64, times: I64) -> I64:
    """Global index one past the last sample with t <= times[j], per (series, j).

    `times` ascending (a grid of steps, or one time repeated); the result is (n, T) and always
    inside each series' segment."""
    n, steps = len(offsets) - 1, len(times)
    # every sample counts from the first step at or after it on
    first = np.searchsorted(times, timestamps, side="left")
    base = np.repeat(np.arange(n, dtype=np.int64) * (steps + 1), np.diff(offsets))
    hist = np.bincount(base + first, minlength=n * (steps + 1)).reshape(n, steps + 1)
    return np.cumsum(hist[:, :steps], axis=1) + offsets[:-1, None]


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
    values = np.zeros((n, steps))
    ok = np.zeros((n, steps), dtype=bool)
    ts = np.zeros((n, steps), np.int64)
    for start, stop in row_blocks(n, steps):
        lo, hi = int(batch.offsets[start]), int(batch.offsets[stop])
        if hi == lo:
            continue
        offsets = batch.offsets[start : stop + 1] - lo
        t, v = batch.timestamps[lo:hi], batch.values[lo:hi]
        pos = counts_upto(t, offsets, refs) - 1
        found = pos >= offsets[:-1, None]
        pos = np.where(found, pos, 0)
        ts[start:stop], values[start:stop] = t[pos], v[pos]
        found &= ts[start:stop] > (refs - lookback_ms)[None, :]
        found &= ~stale_mask(values[start:stop])
        ok[start:stop] = found
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
    n, steps = len(offsets) - 1, len(ends)
    if n == 0 or len(timestamps) == 0:
        start = np.repeat(offsets[:-1, None], steps, axis=1)
        return start, start.copy()
    # starts and ends counted in one pass: on a step grid most window starts are other
    # windows' ends, so this is T + range/step edges instead of 2T
    edges, where = np.unique(np.concatenate([ends - range_ms, ends]), return_inverse=True)
    upto = counts_upto(timestamps, offsets, edges)
    return upto[:, where[:steps]], upto[:, where[steps:]]
