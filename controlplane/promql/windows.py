"""Range-vector windows, flattened: one window per (series, step), W = n * T of them.

A function over a range vector runs block by block: a few thousand series at a time, at most
`selectors.BLOCK_WINDOWS` windows, and each block's result lands in its rows of the (n, T)
output. Every function makes a dozen passes over arrays of length W; done on the whole of a
50,000-series range query those arrays (12 MB each) left the CPU's cache and the cost per
window grew with the number of series (5x the series cost 10-16x the time). A block's arrays
stay in cache, so the cost is linear in windows and samples.

Sequential algorithms (Kahan sums, Welford variance, smoothing) run "by column": the k-th sample
of every window at once. Windows are sorted by length, longest first, so the windows still
active at column k are a prefix and each column is a handful of numpy operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from controlplane.model import deadline
from controlplane.promql.selectors import row_blocks, window_bounds
from controlplane.promql.values import F64, I64, Mask, RangeVector, Steps, Vector

# Cap on samples expanded at once (gathered copies of windows), to bound memory.
EXPAND_LIMIT = 4_000_000


@dataclass(frozen=True, kw_only=True)
class Windows:
    ts: I64
    vals: F64
    lo: I64
    hi: I64
    starts: I64
    ends: I64
    eval_ts: I64
    rows: int
    steps: int
    range_ms: int

    @classmethod
    def of(cls, rv: RangeVector, steps: Steps) -> Windows:
        lo, hi = window_bounds(rv.timestamps, rv.offsets, rv.ends, rv.range_ms)
        n, t = len(rv), len(steps)
        return cls(
            ts=rv.timestamps,
            vals=rv.values,
            lo=lo.ravel(),
            hi=hi.ravel(),
            starts=np.tile(rv.ends - rv.range_ms, n),
            ends=np.tile(rv.ends, n),
            eval_ts=np.tile(steps.times, n),
            rows=n,
            steps=t,
            range_ms=rv.range_ms,
        )

    @property
    def cnt(self) -> I64:
        return self.hi - self.lo

    def per_window(self, scalar_values: F64) -> F64:
        """A per-step scalar argument, repeated for every series."""
        return np.tile(scalar_values, self.rows)

    def first(self) -> I64:
        return np.where(self.cnt > 0, self.lo, 0)

    def last(self) -> I64:
        return np.where(self.cnt > 0, self.hi - 1, 0)


def evaluate_blocked(
    rv: RangeVector, steps: Steps, fn: Callable[[Windows], tuple[F64, Mask]]
) -> tuple[F64, Mask]:
    """(values, present), both (n, T): `fn` over the windows of each block of rows."""
    shape = (len(rv), len(steps))
    values, present = np.zeros(shape), np.zeros(shape, dtype=bool)
    for start, stop in row_blocks(len(rv), len(steps)):
        v, ok = fn(Windows.of(rv.rows(start, stop), steps))
        ok = ok.reshape(stop - start, len(steps))
        present[start:stop] = ok
        np.copyto(values[start:stop], v.reshape(ok.shape), where=ok)
    return values, present


def to_vector(rv: RangeVector, values: F64, ok: Mask, *, drop_name: bool) -> Vector:
    return Vector(
        labels=rv.labels,
        values=values,
        present=ok,
        drop_name=rv.drop_name | drop_name,
    ).nonempty()


class ColumnWalk:
    """Iterate windows column by column; state arrays live in the walk's (sorted) order."""

    def __init__(self, lo: I64, cnt: I64) -> None:
        self.order = np.argsort(-cnt, kind="stable")
        self.lo = lo[self.order]
        self.cnt = cnt[self.order]
        self.width = int(self.cnt[0]) if len(cnt) else 0
        self._active = np.searchsorted(-self.cnt, -np.arange(self.width), side="left")

    def __iter__(self) -> Iterator[tuple[int, int, I64]]:
        for k in range(self.width):
            deadline.check()  # a month of samples per window is a long walk
            m = int(self._active[k])
            yield k, m, self.lo[:m] + k

    def unsort(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.order] = values
        return out


def kahan_inc(inc: F64, total: F64, comp: F64) -> tuple[F64, F64]:
    """One step of Kahan-Babuska (Neumaier) summation, elementwise."""
    t = total + inc
    big = np.abs(total) >= np.abs(inc)
    comp = comp + np.where(big, (total - t) + inc, (inc - t) + total)
    return t, np.where(np.isinf(t), 0.0, comp)


def kahan_sum(ts_vals: F64, lo: I64, cnt: I64) -> F64:
    walk = ColumnWalk(lo, cnt)
    total = np.zeros(len(lo))
    comp = np.zeros(len(lo))
    for _, m, idx in walk:
        total[:m], comp[:m] = kahan_inc(ts_vals[idx], total[:m], comp[:m])
    return walk.unsort(np.where(np.isinf(total), total, total + comp))


def chunks(cnt: I64, limit: int = EXPAND_LIMIT) -> Iterator[slice]:
    """Consecutive window ranges whose total length stays under `limit` (at least one)."""
    bounds = np.cumsum(cnt)
    start = 0
    while start < len(cnt):
        deadline.check()
        base = bounds[start - 1] if start else 0
        stop = int(np.searchsorted(bounds, base + limit, side="right"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        start = stop


def expand(lo: I64, cnt: I64) -> tuple[I64, I64]:
    """Sample indices of the windows laid end to end, and where each window starts."""
    seg_start = np.cumsum(cnt) - cnt
    idx = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(seg_start - lo, cnt)
    return idx, seg_start


def sorted_windows(vals: F64, lo: I64, cnt: I64) -> tuple[F64, I64]:
    """Window contents sorted ascending with NaN first (as Prometheus's sort), end to end."""
    idx, seg_start = expand(lo, cnt)
    x = vals[idx]
    seg = np.repeat(np.arange(len(cnt)), cnt)
    nan = np.isnan(x)
    order = np.lexsort((np.where(nan, 0.0, x), ~nan, seg))
    return x[order], seg_start


def quantile_sorted(x: F64, seg_start: I64, cnt: I64, q: F64) -> F64:
    """Prometheus's quantile over already sorted windows (linear between neighbours)."""
    n = cnt.astype(np.float64)
    safe = (cnt > 0) & (q >= 0) & (q <= 1)
    rank = np.where(safe, q * (n - 1), 0.0)
    lower = np.maximum(0.0, np.floor(rank))
    upper = np.minimum(n - 1, lower + 1)
    weight = rank - np.floor(rank)
    li = np.where(safe, seg_start + lower.astype(np.int64), 0)
    ui = np.where(safe, seg_start + np.maximum(upper, 0).astype(np.int64), 0)
    out = x[li] * (1 - weight) + x[ui] * weight if len(x) else np.full(len(cnt), np.nan)
    out = np.where(np.isnan(q), np.nan, out)
    out = np.where(q < 0, -np.inf, out)
    return np.where(q > 1, np.inf, out)
