from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from controlplane.errors import EvalError, ParseError, QueryTimeout
from controlplane.model.series import STALE_NAN, Series, labels_from
from controlplane.promql import Engine, MemorySource
from controlplane.promql.results import Querier, ResultType

MIN = 60_000


def series(name: str, values: list[float], step_ms: int = MIN, **labels: str) -> Series:
    return Series(
        labels=labels_from({"__name__": name, **labels}),
        timestamps=np.arange(len(values), dtype=np.int64) * step_ms,
        values=np.asarray(values, dtype=np.float64),
    )


def engine(*items: Series, **kwargs: object) -> Engine:
    return Engine(MemorySource(items), **kwargs)  # type: ignore[arg-type]


def instant(e: Engine, expr: str, t_ms: int) -> dict[tuple[tuple[str, str], ...], float]:
    result = e.instant(expr, t_ms)
    assert result.type is ResultType.VECTOR
    return {s.labels: s.value for s in result.vector}


def test_engine_is_a_querier() -> None:
    querier: Querier = engine()
    assert querier.instant("1", 0).scalar is not None


def test_lookback_and_staleness() -> None:
    e = engine(series("m", [1, 2, STALE_NAN, 4], job="a"))
    assert instant(e, "m", 90_000) == {(("__name__", "m"), ("job", "a")): 2.0}
    assert instant(e, "m", 2 * MIN) == {}  # a staleness marker ends the series at once
    assert instant(e, "m", 3 * MIN + 299_999) != {}
    assert instant(e, "m", 3 * MIN + 300_000) == {}  # five minutes after the last sample
    # Range functions see samples only, never the marker.
    assert instant(e, "count_over_time(m[10m])", 3 * MIN) == {(("job", "a"),): 3.0}


def test_windows_are_left_open() -> None:
    e = engine(series("m", [1, 2, 3]))
    assert instant(e, "count_over_time(m[1m])", 2 * MIN) == {(): 1.0}
    assert instant(e, "count_over_time(m[1m1ms])", 2 * MIN) == {(): 2.0}


def test_rate_extrapolates_like_prometheus() -> None:
    # Samples every 60s from 0; at t=5m a 5m window holds t=1m..5m: 4 intervals of 60s.
    e = engine(series("c_total", [0, 60, 120, 180, 240, 300]))
    # The first sample is 60s after the window start (< 1.1 * 60s): extrapolate to both ends.
    assert instant(e, "rate(c_total[5m])", 5 * MIN) == {(): pytest.approx(1.0)}
    assert instant(e, "increase(c_total[5m])", 5 * MIN) == {(): pytest.approx(300.0)}
    reset = engine(series("c_total", [10, 20, 5, 15]))
    # Window (0, 3m] holds 20, 5, 15: 15 - 20 + 20 (the value before the reset) = 15 over
    # 120s, extrapolated by 60s towards the window start: 15 * 180 / 120.
    assert instant(reset, "increase(c_total[3m])", 3 * MIN)[()] == pytest.approx(22.5)
    assert instant(reset, "resets(c_total[10m])", 3 * MIN) == {(): 1.0}


def test_offset_at_and_subqueries() -> None:
    e = engine(series("m", list(range(11))))
    assert instant(e, "m offset 3m", 10 * MIN) == {(("__name__", "m"),): 7.0}
    assert instant(e, "m @ 120", 10 * MIN) == {(("__name__", "m"),): 2.0}
    result = e.range("m @ start()", 2 * MIN, 4 * MIN, MIN)
    assert result.matrix[0].values.tolist() == [2.0, 2.0, 2.0]
    # Subquery steps are aligned to multiples of the step: 6m, 7m, ..., 10m.
    assert instant(e, "count_over_time(m[5m:1m])", 10 * MIN) == {(): 5.0}
    assert instant(e, "max_over_time(m[5m:2m])", 9 * MIN + 30_000) == {(): 8.0}


def test_range_query_shape() -> None:
    e = engine(series("m", [1, 2, 3], job="b"), series("m", [5, 6, 7], job="a"))
    result = e.range("m * 2", 0, 2 * MIN, MIN)
    assert result.type is ResultType.MATRIX
    assert [s.labels for s in result.matrix] == [(("job", "a"),), (("job", "b"),)]
    assert result.matrix[1].values.tolist() == [2.0, 4.0, 6.0]
    scalar = e.range("time()", 0, 2 * MIN, MIN)
    assert scalar.matrix[0].labels == () and scalar.matrix[0].values.tolist() == [0, 60, 120]


def test_instant_order_is_kept_for_sort_and_topk() -> None:
    e = engine(*(series("m", [v], job=str(v)) for v in (3, 1, 2)))
    assert [s.value for s in e.instant("sort_desc(m)", 0).vector] == [3, 2, 1]
    assert [s.value for s in e.instant("bottomk(2, m)", 0).vector] == [1, 2]


def test_names_are_dropped_where_prometheus_drops_them() -> None:
    e = engine(series("m", [1, 2]))
    assert list(instant(e, "rate(m[5m])", MIN)) == [()]
    assert list(instant(e, "last_over_time(m[5m])", MIN)) == [(("__name__", "m"),)]
    relabelled = 'label_replace(rate(m[5m]), "__name__", "x", "", "")'
    assert list(instant(e, relabelled, MIN)) == [(("__name__", "x"),)]


def test_vector_matching_and_its_errors() -> None:
    e = engine(
        series("a", [1], job="x", instance="1"),
        series("a", [2], job="x", instance="2"),
        series("b", [10], job="x"),
    )
    ratio = instant(e, "a / on(job) group_left b", 0)
    assert ratio == {(("instance", "1"), ("job", "x")): 0.1, (("instance", "2"), ("job", "x")): 0.2}
    with pytest.raises(EvalError, match="many-to-one matching must be explicit"):
        e.instant("a / on(job) b", 0)
    with pytest.raises(EvalError, match="found duplicate series for the match group"):
        e.instant("b / on(job) a", 0)
    with pytest.raises(EvalError, match="fill modifiers"):
        e.instant("a + fill(0) b", 0)
    with pytest.raises(EvalError, match="same labelset"):
        e.instant('label_replace(a, "instance", "", "", "")', 0)


def test_parse_errors_carry_message_and_position() -> None:
    with pytest.raises(ParseError, match=r"^1:5: parse error: ") as caught:
        engine().instant("foo bar", 0)
    assert caught.value.error_type == "bad_data"
    with pytest.raises(ParseError, match="unknown function"):
        engine().instant("nope(x)", 0)


def test_range_query_arguments_are_checked() -> None:
    e = engine(series("m", [1]))
    with pytest.raises(ParseError, match="range vector"):
        e.range("m[5m]", 0, MIN, MIN)
    with pytest.raises(ParseError, match="step"):
        e.range("m", 0, MIN, 0)
    with pytest.raises(ParseError, match="11,000 points"):
        e.range("m", 0, 20_000 * MIN, MIN)


def test_limits() -> None:
    e = engine(series("m", list(range(100))), max_samples=50)
    with pytest.raises(EvalError, match="too many samples"):
        e.instant("sum_over_time(m[2h])", 99 * MIN)
    ticks = itertools.count(step=10.0)
    slow = engine(series("m", [1]), clock=lambda: next(ticks), timeout_s=15.0)
    with pytest.raises(QueryTimeout):
        slow.instant("sum(m) + sum(m)", 0)


def test_aggregations_and_histogram_quantile() -> None:
    buckets = [("0.1", 10.0), ("0.5", 60.0), ("1", 90.0), ("+Inf", 100.0)]
    e = engine(
        *(series("lat_bucket", [0, count], le=le, job="j") for le, count in buckets),
        series("v", [6], job="j", i="1"),
        series("v", [6], job="j", i="2"),
        series("v", [8], job="k", i="1"),
    )
    q = instant(e, "histogram_quantile(0.5, rate(lat_bucket[5m]))", MIN)
    assert q == {(("job", "j"),): pytest.approx(0.1 + 0.4 * (50 - 10) / 50)}
    assert instant(e, 'count_values("value", v)', 0) == {
        (("value", "6"),): 2.0,
        (("value", "8"),): 1.0,
    }
    assert instant(e, "stddev by (job) (v)", 0) == {(("job", "j"),): 0.0, (("job", "k"),): 0.0}
    quantile = e.instant("quantile(2, v)", 0)
    assert quantile.vector[0].value == math.inf and quantile.warnings


def test_kahan_sums_survive_cancellation() -> None:
    e = engine(
        series("m", [1, 1e100, 1, -1e100], step_ms=10_000),
        *(series("v", [x], i=str(i)) for i, x in enumerate([2, 8, 1e100, -1e100])),
    )
    assert instant(e, "sum_over_time(m[1m])", 30_000) == {(): 2.0}
    assert instant(e, "sum(v)", 0) == {(): 10.0}
    assert instant(e, "avg(v)", 0) == {(): 2.5}
