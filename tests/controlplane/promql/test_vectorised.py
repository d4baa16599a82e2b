"""The vectorised window machinery against a plain, one-window-at-a-time reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.model.series import STALE_NAN, Series, is_stale_marker, labels_from
from controlplane.promql import Engine, MemorySource

STEP = 10_000
RANGE = 45_000

values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.just(math.nan),
    st.just(STALE_NAN),
)
one_series = st.lists(
    st.tuples(st.integers(min_value=1, max_value=25_000), values), min_size=0, max_size=25
)


def build(raw: list[list[tuple[int, float]]]) -> tuple[Engine, list[list[tuple[int, float]]]]:
    items, kept = [], []
    for i, points in enumerate(raw):
        t, out = 0, []
        for gap, v in points:
            t += gap
            out.append((t, v))
        kept.append(out)
        if out:
            items.append(
                Series(
                    labels=labels_from({"__name__": "m", "i": str(i)}),
                    timestamps=np.asarray([p[0] for p in out], dtype=np.int64),
                    values=np.asarray([p[1] for p in out], dtype=np.float64),
                )
            )
    return Engine(MemorySource(items)), kept


def window(points: list[tuple[int, float]], end: int) -> list[tuple[int, float]]:
    return [(t, v) for t, v in points if end - RANGE < t <= end and not is_stale_marker(v)]


def reference_rate(win: list[tuple[int, float]], end: int) -> float | None:
    if len(win) < 2:
        return None
    (t0, first), (t1, last) = win[0], win[-1]
    result = last - first
    for (_, prev), (_, cur) in itertools.pairwise(win):
        if cur < prev:
            result += prev
    sampled = (t1 - t0) / 1000
    average = sampled / (len(win) - 1)
    to_start, to_end = (t0 - (end - RANGE)) / 1000, (end - t1) / 1000
    if to_start >= average * 1.1:
        to_start = average / 2
    if result > 0 and first >= 0:
        to_start = min(to_start, sampled * (first / result))
    if to_end >= average * 1.1:
        to_end = average / 2
    return result * (sampled + to_start + to_end) / sampled / (RANGE / 1000)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(one_series, min_size=1, max_size=4), st.integers(min_value=0, max_value=200_000))
def test_range_functions_match_a_plain_reference(raw: list, start: int) -> None:
    engine, kept = build(raw)
    end = start + 6 * STEP
    checks = {
        "count_over_time": lambda w, t: float(len(w)) if w else None,
        "last_over_time": lambda w, t: w[-1][1] if w else None,
        "max_over_time": lambda w, t: (
            (max((v for _, v in w if not math.isnan(v)), default=math.nan)) if w else None
        ),
        "sum_over_time": lambda w, t: math.fsum(v for _, v in w) if w else None,
        "rate": reference_rate,
    }
    for name, fn in checks.items():
        result = engine.range(f"{name}(m[45s])", start, end, STEP)
        got = {
            (dict(s.labels)["i"], t): v
            for s in result.matrix
            for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
        }
        want = {}
        for i, points in enumerate(kept):
            for t in range(start, end + 1, STEP):
                value = fn(window(points, t), t)
                if value is not None:
                    want[(str(i), t)] = value
        assert got.keys() == want.keys(), name
        for key, value in want.items():
            assert same(got[key], value), (name, key, got[key], value)
