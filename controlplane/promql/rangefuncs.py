"""Functions over range vectors: rate and friends, the *_over_time family, regressions.

Each takes the flattened `Windows` (one per series and step) and returns (values, present) of
length W. Semantics follow Prometheus's functions.go, including rate's extrapolation rules and
the Kahan-compensated sums, so results agree with Prometheus to the last few bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from controlplane.promql.values import F64, Mask
from controlplane.promql.windows import (
    ColumnWalk,
    Windows,
    chunks,
    expand,
    kahan_inc,
    kahan_sum,
    quantile_sorted,
    sorted_windows,
)

Result = tuple[F64, Mask]


def extrapolated_rate(win: Windows, *, counter: bool, per_second: bool) -> Result:
    cnt = win.cnt
    ok = cnt >= 2
    first_i, last_i = win.first(), win.last()
    first, last = win.vals[first_i], win.vals[last_i]
    t0, t1 = win.ts[first_i], win.ts[last_i]
    result = last - first
    if counter:
        result = result + _reset_correction(win, ok)
    to_start = (t0 - win.starts) / 1000.0
    to_end = (win.ends - t1) / 1000.0
    sampled = (t1 - t0) / 1000.0
    average = sampled / np.maximum(cnt - 1, 1)
    threshold = average * 1.1
    to_start = np.where(to_start >= threshold, average / 2, to_start)
    if counter:
        # Counters cannot go below zero: do not extrapolate past the zero point.
        to_zero = np.where((result > 0) & (first >= 0), sampled * (first / result), to_start)
        to_start = np.where(to_zero < to_start, to_zero, to_start)
    to_end = np.where(to_end >= threshold, average / 2, to_end)
    factor = (sampled + to_start + to_end) / sampled
    if per_second:
        factor = factor / (win.range_ms / 1000.0)
    return result * factor, ok


def _reset_correction(win: Windows, ok: Mask) -> F64:
    """For each window, the sum of the values just before each counter reset in it."""
    vals = win.vals
    reset = np.zeros(len(vals), dtype=bool)
    reset[1:] = vals[1:] < vals[:-1]
    resets = np.concatenate([[0], np.cumsum(reset)])
    # Resets at sample i (lo < i < hi) compare i with i - 1, both inside the window.
    n_resets = np.where(ok, resets[win.hi] - resets[np.minimum(win.lo + 1, win.hi)], 0)
    out = np.zeros(len(win.lo))
    hit = np.flatnonzero(n_resets > 0)
    if len(hit) == 0:
        return out
    lo, cnt = win.lo[hit] + 1, win.cnt[hit] - 1
    for part in chunks(cnt):
        idx, seg_start = expand(lo[part], cnt[part])
        before = np.where(reset[idx], vals[idx - 1], 0.0)
        nonempty = cnt[part] > 0
        sums = np.zeros(len(seg_start))
        if len(idx):
            sums[nonempty] = np.add.reduceat(before, seg_start[nonempty])
        out[hit[part]] = sums
    return out


def instant_value(win: Windows, *, per_second: bool) -> Result:
    ok = win.cnt >= 2
    last_i = win.last()
    prev_i = np.where(ok, last_i - 1, 0)
    last, prev = win.vals[last_i], win.vals[prev_i]
    dt = win.ts[last_i] - win.ts[prev_i]
    ok &= dt != 0
    if not per_second:
        return last - prev, ok
    result = np.where(last < prev, last, last - prev)
    return result / (np.where(dt != 0, dt, 1) / 1000.0), ok


def count_over_time(win: Windows) -> Result:
    return win.cnt.astype(np.float64), win.cnt > 0


def present_over_time(win: Windows) -> Result:
    return np.ones(len(win.lo)), win.cnt > 0


def last_over_time(win: Windows) -> Result:
    return win.vals[win.last()], win.cnt > 0


def first_over_time(win: Windows) -> Result:
    return win.vals[win.first()], win.cnt > 0


def ts_of_last_over_time(win: Windows) -> Result:
    return win.ts[win.last()] / 1000.0, win.cnt > 0


def ts_of_first_over_time(win: Windows) -> Result:
    return win.ts[win.first()] / 1000.0, win.cnt > 0


def sum_over_time(win: Windows) -> Result:
    return kahan_sum(win.vals, win.lo, win.cnt), win.cnt > 0


def avg_over_time(win: Windows) -> Result:
    """Direct mean with Kahan summation, switching to an incremental mean on overflow."""
    walk = ColumnWalk(win.lo, win.cnt)
    size = len(win.lo)
    total, comp, mean = np.zeros(size), np.zeros(size), np.zeros(size)
    incremental = np.zeros(size, dtype=bool)
    for k, m, idx in walk:
        f = win.vals[idx]
        if k == 0:
            total[:m] = f
            continue
        count = float(k + 1)
        t, c, mu, inc = total[:m], comp[:m], mean[:m], incremental[:m]
        new_t, new_c = kahan_inc(f, t, c)
        direct = ~inc & ~np.isinf(new_t)
        switch = ~inc & ~direct
        mu = np.where(switch, t / (count - 1), mu)
        c = np.where(switch, c / (count - 1), c)
        inc = inc | switch
        q = (count - 1) / count
        new_mu, new_mc = kahan_inc(f / count, q * mu, q * c)
        total[:m] = np.where(direct, new_t, t)
        comp[:m] = np.where(direct, new_c, np.where(inc, new_mc, c))
        mean[:m] = np.where(inc, new_mu, mu)
        incremental[:m] = inc
    counts = np.maximum(walk.cnt, 1).astype(np.float64)
    out = np.where(incremental, mean + comp, total / counts + comp / counts)
    return walk.unsort(out), win.cnt > 0


def _extreme(win: Windows, better: Callable[[F64, F64], Mask], want_ts: bool) -> Result:
    walk = ColumnWalk(win.lo, win.cnt)
    best = np.full(len(win.lo), np.nan)
    when = np.zeros(len(win.lo), dtype=np.int64)
    for k, m, idx in walk:
        f = win.vals[idx]
        take = np.ones(m, dtype=bool) if k == 0 else better(f, best[:m]) | np.isnan(best[:m])
        best[:m] = np.where(take, f, best[:m])
        when[:m] = np.where(take, win.ts[idx], when[:m])
    out = walk.unsort(when / 1000.0 if want_ts else best)
    return out, win.cnt > 0


def max_over_time(win: Windows) -> Result:
    return _extreme(win, np.greater, False)


def min_over_time(win: Windows) -> Result:
    return _extreme(win, np.less, False)


def ts_of_max_over_time(win: Windows) -> Result:
    return _extreme(win, np.greater_equal, True)


def ts_of_min_over_time(win: Windows) -> Result:
    return _extreme(win, np.less_equal, True)


def _variance(win: Windows) -> F64:
    """Welford's algorithm with Kahan-compensated mean and sum of squares."""
    walk = ColumnWalk(win.lo, win.cnt)
    size = len(win.lo)
    mean, c_mean, aux, c_aux = (np.zeros(size) for _ in range(4))
    for k, m, idx in walk:
        f = win.vals[idx]
        delta = f - (mean[:m] + c_mean[:m])
        mean[:m], c_mean[:m] = kahan_inc(delta / (k + 1), mean[:m], c_mean[:m])
        spread = delta * (f - (mean[:m] + c_mean[:m]))
        aux[:m], c_aux[:m] = kahan_inc(spread, aux[:m], c_aux[:m])
    return walk.unsort((aux + c_aux) / np.maximum(walk.cnt, 1))


def stdvar_over_time(win: Windows) -> Result:
    return _variance(win), win.cnt > 0


def stddev_over_time(win: Windows) -> Result:
    return np.sqrt(_variance(win)), win.cnt > 0


def _changes_count(win: Windows, flag_of: Callable[[F64, F64], Mask]) -> Result:
    vals = win.vals
    flags = np.zeros(len(vals), dtype=bool)
    flags[1:] = flag_of(vals[1:], vals[:-1])
    total = np.concatenate([[0], np.cumsum(flags)])
    ok = win.cnt > 0
    count = np.where(ok, total[win.hi] - total[np.minimum(win.lo + 1, win.hi)], 0)
    return count.astype(np.float64), ok


def resets(win: Windows) -> Result:
    return _changes_count(win, np.less)


def changes(win: Windows) -> Result:
    return _changes_count(win, lambda cur, prev: (cur != prev) & ~(np.isnan(cur) & np.isnan(prev)))


def linear_regression(win: Windows, intercept_at: np.ndarray) -> tuple[F64, F64]:
    """Least-squares slope and intercept (at `intercept_at`, ms) over each window."""
    walk = ColumnWalk(win.lo, win.cnt)
    at = intercept_at[walk.order]
    size = len(win.lo)
    sums = [np.zeros(size) for _ in range(8)]  # x, cx, y, cy, xy, cxy, x2, cx2
    first = np.zeros(size)
    constant = np.ones(size, dtype=bool)
    for k, m, idx in walk:
        y = win.vals[idx]
        if k == 0:
            first[:m] = y
        else:
            constant[:m] &= y == first[:m]
        x = (win.ts[idx] - at[:m]) / 1e3
        for j, term in enumerate((x, y, x * y, x * x)):
            s, c = sums[2 * j], sums[2 * j + 1]
            s[:m], c[:m] = kahan_inc(term, s[:m], c[:m])
    n = np.maximum(walk.cnt, 1).astype(np.float64)
    sx, sy, sxy, sx2 = (sums[2 * j] + sums[2 * j + 1] for j in range(4))
    slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n)
    intercept = sy / n - slope * sx / n
    inf_const = constant & np.isinf(first)
    slope = np.where(constant, np.where(inf_const, np.nan, 0.0), slope)
    intercept = np.where(constant, np.where(inf_const, np.nan, first), intercept)
    return walk.unsort(slope), walk.unsort(intercept)


def deriv(win: Windows) -> Result:
    slope, _ = linear_regression(win, win.ts[win.first()])
    return slope, win.cnt >= 2


def predict_linear(win: Windows, duration: F64) -> Result:
    slope, intercept = linear_regression(win, win.eval_ts)
    return slope * win.per_window(duration) + intercept, win.cnt >= 2


def quantile_over_time(win: Windows, q: F64) -> Result:
    out = np.full(len(win.lo), np.nan)
    qs = win.per_window(q)
    for part in chunks(win.cnt):
        cnt = win.cnt[part]
        x, seg_start = sorted_windows(win.vals, win.lo[part], cnt)
        out[part] = quantile_sorted(x, seg_start, cnt, qs[part])
    return out, win.cnt > 0


def mad_over_time(win: Windows) -> Result:
    out = np.full(len(win.lo), np.nan)
    for part in chunks(win.cnt):
        cnt, half = win.cnt[part], np.full(part.stop - part.start, 0.5)
        x, seg_start = sorted_windows(win.vals, win.lo[part], cnt)
        median = quantile_sorted(x, seg_start, cnt, half)
        deviation = np.abs(x - np.repeat(median, cnt))
        ordered, _ = sorted_windows(deviation, seg_start, cnt)
        out[part] = quantile_sorted(ordered, seg_start, cnt, half)
    # A NaN sample makes the result NaN instead of being sorted out of the middle.
    nans = np.concatenate([[0], np.cumsum(np.isnan(win.vals))])
    out = np.where(nans[win.hi] - nans[win.lo] > 0, np.nan, out)
    return out, win.cnt > 0


def double_exponential_smoothing(win: Windows, sf: F64, tf: F64) -> Result:
    walk = ColumnWalk(win.lo, win.cnt)
    sfs, tfs = win.per_window(sf)[walk.order], win.per_window(tf)[walk.order]
    size = len(win.lo)
    s0, s1, trend = np.zeros(size), np.zeros(size), np.zeros(size)
    for k, m, idx in walk:
        f = win.vals[idx]
        if k == 0:
            s1[:m] = f
            continue
        a, b = sfs[:m], tfs[:m]
        if k == 1:
            trend[:m] = f - s1[:m]
        else:
            trend[:m] = b * (s1[:m] - s0[:m]) + (1 - b) * trend[:m]
        smoothed = a * f + (1 - a) * (s1[:m] + trend[:m])
        s0[:m], s1[:m] = s1[:m], smoothed
    return walk.unsort(s1), win.cnt >= 2
