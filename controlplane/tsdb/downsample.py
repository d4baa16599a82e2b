"""Downsampling for the long-term tier (history.py) and the merge of its samples with raw ones.

A bucket is the left-open, right-closed interval (k * res, (k + 1) * res], the same shape as a
PromQL range window; it keeps the **last** sample it holds, stamped at the bucket's end.

Why the last value rather than an average: the series kept long term are gauges that are
already averages over a window (`slo:sli_error:ratio_rate5m` is the error ratio of the 5
minutes before its timestamp) or states (`slo:period_error_budget_remaining:ratio`), and
counters. For all three the last value is exact where an average is not: a 5m ratio's last
sample in a 5m bucket *is* that bucket's ratio (averaging would blur it with the previous
bucket's), a state's last value is the state at the bucket's end, and a counter's last value
keeps `rate`/`increase` right (an average of a counter is meaningless). It is also what PromQL
itself picks: an instant selector, a range query or a subquery step at a bucket's end reads the
newest sample at or before it, which is the bucket's last; so a query stepping on multiples of
the resolution gets the same answer from the downsampled tier as from raw samples. What is
lost: spikes inside a bucket (`max_over_time` over old data sees only bucket ends) and a
counter reset followed by more increments than before it within one bucket.

Stamping at the bucket's end (instead of the sample's own time) keeps a sample within one
resolution of any instant after it, so a 5-minute lookback still finds a value between buckets
when the resolution is at most the lookback (config.py checks it), and makes timestamps
regular, which the block encoder stores in a few bytes per block.
"""

from __future__ import annotations

import numpy as np

from controlplane.model.series import SeriesBatch
from controlplane.tsdb.chunks import I64, segments


def bucket_end(t_ms: int, resolution_ms: int) -> int:
    """The end of the bucket holding `t_ms` (a bucket's own end belongs to it)."""
    return -(-t_ms // resolution_ms) * resolution_ms


def last_per_bucket(batch: SeriesBatch, resolution_ms: int) -> SeriesBatch:
    """Per series, the last sample of each bucket, stamped at the bucket's end. Series without
    samples are left out; the order of the batch is kept."""
    t, counts = batch.timestamps, np.diff(batch.offsets)
    if not len(t):
        return SeriesBatch(labels=[], timestamps=t, values=batch.values, offsets=batch.offsets[:1])
    sid = np.repeat(np.arange(len(counts)), counts)
    ends = -(-t // resolution_ms) * resolution_ms
    last = np.ones(len(t), np.bool_)
    last[:-1] = (sid[1:] != sid[:-1]) | (ends[1:] != ends[:-1])
    keep = np.flatnonzero(last)
    per_series = np.bincount(sid[keep], minlength=len(counts))
    present = np.flatnonzero(per_series)
    offsets = np.zeros(len(present) + 1, np.int64)
    np.cumsum(per_series[present], out=offsets[1:])
    return SeriesBatch(
        labels=[batch.labels[i] for i in present.tolist()],
        timestamps=ends[keep],
        values=batch.values[keep],
        offsets=offsets,
    )


def merge_older(older: SeriesBatch, newer: SeriesBatch) -> SeriesBatch:
    """One batch in label order: per series, `older`'s samples that come before `newer`'s
    first, then `newer`'s. The tier (older) reaches at most one bucket past the raw floor; its
    sample there stays only while no raw sample precedes it, so a step just past the floor
    still finds a value and nothing is duplicated or reordered."""
    if not len(older):
        return newer
    if not len(newer):
        return older
    labels = sorted(set(older.labels) | set(newer.labels))
    where = {lb: i for i, lb in enumerate(labels)}
    i_old = np.array([where[lb] for lb in older.labels], np.int64)
    i_new = np.array([where[lb] for lb in newer.labels], np.int64)
    n_new = np.diff(newer.offsets)
    first_new = np.full(len(labels), np.iinfo(np.int64).max)
    first_new[i_new[n_new > 0]] = newer.timestamps[newer.offsets[:-1][n_new > 0]]
    owner = np.repeat(i_old, np.diff(older.offsets))
    keep = older.timestamps < first_new[owner]
    n_old = np.bincount(owner[keep], minlength=len(labels))
    sizes = n_old.copy()
    sizes[i_new] += n_new
    offsets = np.zeros(len(labels) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    out_t = np.empty(int(offsets[-1]), np.int64)
    out_v = np.empty(int(offsets[-1]), np.float64)
    dest = segments(offsets[:-1], n_old)
    out_t[dest], out_v[dest] = older.timestamps[keep], older.values[keep]
    dest = segments(offsets[:-1][i_new] + n_old[i_new], n_new)
    out_t[dest], out_v[dest] = newer.timestamps, newer.values
    return SeriesBatch(labels=labels, timestamps=out_t, values=out_v, offsets=offsets)


def concat(parts: list[tuple[I64, I64, np.ndarray]]) -> tuple[I64, I64, np.ndarray]:
    """Concatenate (ids, times, values) triples; an empty list gives empty arrays."""
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    ids, t, v = zip(*parts, strict=True)
    return np.concatenate(ids), np.concatenate(t), np.concatenate(v)
