"""The series notation of promtool's unit tests (and promqltest's `load`).

`series: 'http_requests_total{job="api"}'`, `values: '0+10x5 _ stale 100-1x3 _x2 7x2'`:
values are at 0, interval, 2 x interval, ...; `a+bxn` and `a-bxn` expand to n+1 values
starting at a; `axn` is a repeated n+1 times; `_` skips one step and `_xn` n steps; `stale`
writes a staleness marker; numbers may be `NaN`, `Inf`, `+Inf`, `-Inf`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import promql_parser

from controlplane.errors import ParseError
from controlplane.model.series import METRIC_NAME, STALE_NAN, Labels, Series, labels_from
from controlplane.promql.parse import parse_query

# no hex: in this notation `0x5` is 0 repeated, not 5
_NUMBER = r"(?:[+-]?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))"
_ITEM = re.compile(
    rf"^(?P<value>{_NUMBER})(?:(?P<delta>[+-](?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))?"
    r"x(?P<times>\d+))?$",
    re.IGNORECASE,
)
_SKIP = re.compile(r"^_(?:x(?P<times>\d+))?$")


def parse_metric(text: str) -> Labels:
    """`name{a="b"}`, `{__name__="name", a="b"}` or `{}`/empty -> sorted labels; equality
    matchers only, as Prometheus's parser.ParseMetric."""
    if not text.strip() or text.strip() == "{}":
        return ()
    root = parse_query(text).root
    if not isinstance(root, promql_parser.VectorSelector):
        raise ParseError(f"{text!r} is not a series (a metric name and/or label matchers)")
    labels: dict[str, str] = {}
    if root.name:
        labels[METRIC_NAME] = root.name
    for matcher in root.matchers.matchers:
        if matcher.op != promql_parser.MatchOp.Equal:
            raise ParseError(f"{text!r}: only = matchers describe a series, not {matcher}")
        labels[matcher.name] = matcher.value
    return labels_from(labels)


def _number(text: str) -> float:
    return float(text)


def expand_values(text: str) -> list[float | None]:
    """One entry per step: a value, STALE_NAN, or None for a skipped step."""
    out: list[float | None] = []
    for item in text.split():
        skip = _SKIP.match(item)
        if skip:
            out.extend([None] * int(skip.group("times") or 1))
            continue
        if item.lower() == "stale":
            out.append(STALE_NAN)
            continue
        match = _ITEM.match(item)
        if match is None:
            raise ParseError(f"bad value {item!r} in {text!r}: expected a number, '_', "
                             "'stale', 'axn', 'a+bxn', 'a-bxn' or '_xn'")  # fmt: skip
        start = _number(match.group("value"))
        if match.group("times") is None:
            out.append(start)
            continue
        delta = _number(match.group("delta")) if match.group("delta") else 0.0
        for _ in range(int(match.group("times")) + 1):
            # Prometheus adds the step each time (not start + i * step): the floats match
            out.append(start)
            start += delta
            if math.isnan(delta):
                start = math.nan
    return out


def series_from(series: str, values: str, interval_ms: int) -> Series:
    """One input series of a unit test, its samples at 0, interval, 2 x interval, ..."""
    labels = parse_metric(series)
    times: list[int] = []
    points: list[float] = []
    for step, value in enumerate(expand_values(values)):
        if value is not None:
            times.append(step * interval_ms)
            points.append(value)
    return Series(
        labels=labels,
        timestamps=np.asarray(times, dtype=np.int64),
        values=np.asarray(points, dtype=np.float64),
    )
