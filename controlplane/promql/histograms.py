"""histogram_quantile(s) and histogram_fraction over classic `le` buckets.

Series are grouped into histograms by their labels without `le`; within a histogram the bucket
counts at each step form one column, so all steps are computed together (steps where a
different subset of buckets is present are computed as their own batch). Native histograms are
not stored by this control plane, so the native-only functions return nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from controlplane.model.series import METRIC_NAME, Labels
from controlplane.promql.context import Evaluator
from controlplane.promql.labelcache import factorize
from controlplane.promql.labelfuncs import string_arg
from controlplane.promql.parse import format_openmetrics
from controlplane.promql.values import F64, Mask, Steps, Value, Vector, merge_same_labels

Args = list[Any]
BUCKET_LABEL = "le"
SMALL_DELTA = 1e-12
# (uppers (B, k), counts (B, k, C), per-column params (C,)) -> (result, forced), both (B, C):
# B histograms with k sorted, distinct bucket bounds each, over C steps.
BucketFn = Callable[[F64, F64, list[F64]], tuple[F64, Mask]]


def _almost_equal(a: F64, b: F64, epsilon: float) -> Mask:
    both_nan = np.isnan(a) & np.isnan(b)
    abs_sum = np.abs(a) + np.abs(b)
    diff = np.abs(a - b)
    tiny = np.finfo(np.float64).tiny
    near_zero = (a == 0) | (b == 0) | (abs_sum < tiny)
    relative = diff / np.minimum(abs_sum, np.finfo(np.float64).max) < epsilon
    return both_nan | (a == b) | np.where(near_zero, diff < epsilon * tiny, relative)


def _coalesce(uppers: F64, counts: F64) -> tuple[F64, F64]:
    """Sort one histogram's buckets by bound and add up buckets with equal bounds."""
    order = np.argsort(uppers, kind="stable")
    uppers, counts = uppers[order], counts[order]
    starts = np.flatnonzero(np.concatenate([[True], uppers[1:] != uppers[:-1]]))
    return uppers[starts], np.add.reduceat(counts, starts, axis=0)


def _make_monotonic(counts: F64) -> Mask:
    """Absorb float noise, then carry the running maximum over any decrease (in place)."""
    prev = counts[:, 0].copy()
    forced = np.zeros(prev.shape, dtype=bool)
    for i in range(1, counts.shape[1]):
        cur = counts[:, i]
        same = cur == prev
        noise = ~same & _almost_equal(prev, cur, SMALL_DELTA)
        dropped = ~same & ~noise & (cur < prev)
        forced |= dropped
        counts[:, i] = np.where(noise | dropped, prev, cur)
        prev = np.where(same | noise | dropped, prev, cur)
    return forced


def bucket_quantile(uppers: F64, counts: F64, params: list[F64]) -> tuple[F64, Mask]:
    (q,) = params
    counts = counts.astype(np.float64)
    forced = _make_monotonic(counts)
    batch, k, columns = counts.shape
    out = np.full((batch, columns), np.nan)
    if k >= 2:
        bi, ci = np.arange(batch)[:, None], np.arange(columns)[None, :]
        observations = counts[:, -1, :]
        rank = q[None, :] * observations
        reached = counts[:, :-1, :] >= rank[:, None, :]
        b = np.where(reached.any(axis=1), reached.argmax(axis=1), k - 1)
        prev = np.maximum(b - 1, 0)
        below = np.where(b > 0, counts[bi, prev, ci], 0.0)
        start = np.where(b > 0, uppers[bi, prev], 0.0)
        end = uppers[bi, b]
        inside = counts[bi, b, ci] - below
        value = start + (end - start) * ((rank - below) / inside)
        first = uppers[:, :1]
        value = np.where((b == 0) & (first <= 0), first, value)
        value = np.where(b == k - 1, uppers[:, k - 2 : k - 1], value)
        out = np.where(observations == 0, np.nan, value)
    top = np.isposinf(uppers[:, -1])[:, None]
    out = np.where(top, out, np.nan)
    forced &= top & ((q >= 0) & (q <= 1))[None, :]
    out = np.where(np.isnan(q), np.nan, out)
    out = np.where(q < 0, -np.inf, out)
    return np.where(q > 1, np.inf, out), forced


def _interpolate(rank: F64, count: F64, lb: F64, ub: F64, at: F64) -> F64:
    """Cumulative count at `at` inside bucket (lb, ub]; none of a bucket reaching -Inf."""
    return np.where(np.isneginf(lb), count, rank + (count - rank) * (at - lb) / (ub - lb))


def bucket_fraction(uppers: F64, counts: F64, params: list[F64]) -> tuple[F64, Mask]:
    lower, upper = params[0][None, :], params[1][None, :]
    counts = counts.astype(np.float64)
    batch, k, columns = counts.shape
    total = counts[:, -1, :]
    rank, low_rank, high_rank = (np.zeros((batch, columns)) for _ in range(3))
    low_set, high_set = (np.zeros((batch, columns), dtype=bool) for _ in range(2))
    first_lower = np.where(uppers[:, 0] > 0, 0.0, -np.inf)
    for i in range(k):
        lb = (first_lower if i == 0 else uppers[:, i - 1])[:, None]
        ub, count = uppers[:, i][:, None], counts[:, i, :]
        for bound, ranked, done in ((lower, low_rank, low_set), (upper, high_rank, high_set)):
            hit = ~done & (lb >= bound)
            ranked[:] = np.where(hit, rank, ranked)
            done |= hit
        for bound, ranked, done in ((lower, low_rank, low_set), (upper, high_rank, high_set)):
            hit = ~done & (lb < bound) & (ub > bound)
            ranked[:] = np.where(hit, _interpolate(rank, count, lb, ub, bound), ranked)
            done |= hit
        rank = count
    low_rank = np.where(~low_set | (low_rank > total), total, low_rank)
    high_rank = np.where(~high_set | (high_rank > total), total, high_rank)
    out = (high_rank - low_rank) / total
    out = np.where(lower >= upper, 0.0, out)
    out = np.where((total == 0) | np.isnan(lower) | np.isnan(upper), np.nan, out)
    out = np.where(np.isposinf(uppers[:, -1])[:, None], out, np.nan)
    return out, np.zeros((batch, columns), dtype=bool)


def _histograms(ev: Evaluator, vec: Vector) -> tuple[list[Labels], list[np.ndarray], F64]:
    """Group rows into histograms: output labels, row indices of each, and every row's `le`."""
    uppers = np.asarray(ev.labels.values("le", vec.labels, _upper_bound), dtype=np.float64)
    for i in np.flatnonzero(np.isnan(uppers)).tolist():
        lb = dict(vec.labels[i])
        ev.warn(
            f'PromQL warning: bucket label "le" is missing or has a malformed value of '
            f'"{lb.get(BUCKET_LABEL, "")}" for metric name "{lb.get(METRIC_NAME, "")}"'
        )
    valid = np.flatnonzero(~np.isnan(uppers))
    keys = ev.labels.derive("without-le", [vec.labels[i] for i in valid.tolist()], _without_le)
    codes, labels = factorize(keys)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    members = [valid[order[a:b]] for a, b in itertools.pairwise(bounds.tolist())]
    return labels, members, uppers


def _upper_bound(labels: Labels) -> float:
    for name, value in labels:
        if name == BUCKET_LABEL:
            try:
                bound = float(value)
            except ValueError:
                return math.nan
            return bound if not math.isnan(bound) else math.nan
    return math.nan


def _without_le(labels: Labels) -> Labels:
    return tuple([p for p in labels if p[0] != BUCKET_LABEL])


def _per_histogram(
    ev: Evaluator, vec: Vector, fn: BucketFn, params: list[F64]
) -> tuple[list[Labels], F64, Mask, Mask]:
    labels, members, uppers = _histograms(ev, vec)
    steps = vec.values.shape[1]
    if _uniform(members, uppers, vec):
        rows = np.vstack(members)
        rows = np.take_along_axis(rows, np.argsort(uppers[rows], axis=1), axis=1)
        values, forced = fn(uppers[rows], vec.values[rows], params)
        return labels, values, np.ones(values.shape, dtype=bool), forced
    values = np.zeros((len(labels), steps))
    present = np.zeros((len(labels), steps), dtype=bool)
    forced = np.zeros((len(labels), steps), dtype=bool)
    for g, rows in enumerate(members):
        patterns, column_pattern = np.unique(vec.present[rows], axis=1, return_inverse=True)
        for p in range(patterns.shape[1]):
            use = patterns[:, p]
            if not use.any():
                continue
            cols = np.flatnonzero(column_pattern.ravel() == p)
            bounds, counts = _coalesce(uppers[rows[use]], vec.values[np.ix_(rows[use], cols)])
            result, fixed = fn(bounds[None, :], counts[None], [x[cols] for x in params])
            values[g, cols], present[g, cols], forced[g, cols] = result[0], True, fixed[0]
    return labels, values, present, forced


def _uniform(members: list[np.ndarray], uppers: F64, vec: Vector) -> bool:
    """Every histogram has the same number of distinct buckets, all present at every step."""
    if not members or not vec.present.all():
        return False
    size = len(members[0])
    if any(len(rows) != size for rows in members):
        return False
    bounds = np.sort(uppers[np.vstack(members)], axis=1)
    return not (bounds[:, 1:] == bounds[:, :-1]).any()


def _output(labels: list[Labels], values: F64, present: Mask) -> Vector:
    return Vector(
        labels=labels,
        values=values,
        present=present,
        drop_name=np.ones(len(labels), dtype=bool),
    )


def _check_quantile(ev: Evaluator, q: F64) -> None:
    for value in np.unique(q).tolist():
        if not 0 <= value <= 1:
            ev.warn(f"PromQL warning: quantile value should be between 0 and 1, got {value:g}")


def _note_forced(ev: Evaluator, forced: Mask) -> None:
    if forced.any():
        ev.warn("PromQL info: input to histogram_quantile needed to be fixed for monotonicity")


def _histogram_quantile(ev: Evaluator, args: Args, steps: Steps) -> Value:
    q = ev.scalar(args[0], steps).values
    _check_quantile(ev, q)
    vec = ev.vector(args[1], steps)
    labels, values, present, forced = _per_histogram(ev, vec, bucket_quantile, [q])
    _note_forced(ev, forced)
    return _output(labels, values, present)


def _histogram_quantiles(ev: Evaluator, args: Args, steps: Steps) -> Value:
    vec = ev.vector(args[0], steps)
    label = string_arg(ev, args[1])
    rows: list[Labels] = []
    values, present = [], []
    for node in args[2:]:
        q = ev.scalar(node, steps).values
        _check_quantile(ev, q)
        labels, v, p, forced = _per_histogram(ev, vec, bucket_quantile, [q])
        _note_forced(ev, forced)
        text = format_openmetrics(float(q[0]))
        rows += [tuple(sorted({**dict(lb), label: text}.items())) for lb in labels]
        values.append(v)
        present.append(p)
    if not rows:
        return Vector.empty(len(steps))
    return merge_same_labels(_output(rows, np.vstack(values), np.vstack(present)), ev.labels)


def _histogram_fraction(ev: Evaluator, args: Args, steps: Steps) -> Value:
    lower = ev.scalar(args[0], steps).values
    upper = ev.scalar(args[1], steps).values
    vec = ev.vector(args[2], steps)
    labels, values, present, _ = _per_histogram(ev, vec, bucket_fraction, [lower, upper])
    return _output(labels, values, present)


def _native_only(ev: Evaluator, args: Args, steps: Steps) -> Value:
    ev.vector(args[-1], steps)
    return Vector.empty(len(steps))


FUNCTIONS: dict[str, Callable[[Evaluator, Args, Steps], Value]] = {
    "histogram_quantile": _histogram_quantile,
    "histogram_quantiles": _histogram_quantiles,
    "histogram_fraction": _histogram_fraction,
    "histogram_count": _native_only,
    "histogram_sum": _native_only,
    "histogram_avg": _native_only,
    "histogram_stddev": _native_only,
    "histogram_stdvar": _native_only,
}
