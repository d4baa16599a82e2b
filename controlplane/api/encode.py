"""Prometheus's JSON encoding of query results, byte for byte where it matters to clients.

Sample values are strings in Go's shortest fixed-point form (`strconv.FormatFloat(v, 'f', -1,
64)`): `"1"`, `"0.25"`, `"NaN"`, `"+Inf"`, `"-Inf"`; timestamps are unix seconds with
millisecond precision, written as a JSON number without a trailing `.0`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from controlplane.model.series import Labels, Series, stale_mask
from controlplane.promql.results import InstantSample, QueryResult, ResultType


def format_value(value: float) -> str:
    value = float(value)  # a numpy float's repr() is not a number
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        # the common case (counters, gauges, 0/1), without the Decimal round trip
        return str(int(value)) if value or math.copysign(1.0, value) > 0 else "-0"
    # repr() is the shortest round-tripping form, as Go's -1 precision; Decimal un-exponents it
    return format(Decimal(repr(value)).normalize(), "f")


def format_time(t_ms: int) -> int | float:
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def labels_json(labels: Labels) -> dict[str, str]:
    return dict(labels)


def point(t_ms: int, value: float) -> list[Any]:
    return [format_time(t_ms), format_value(value)]


def _vector(samples: Iterable[InstantSample]) -> list[dict[str, Any]]:
    return [{"metric": dict(s.labels), "value": point(s.t_ms, s.value)} for s in samples]


def _values(series: Series) -> list[list[Any]]:
    timestamps, values = series.timestamps, series.values
    keep = ~stale_mask(values)
    if not keep.all():
        timestamps, values = timestamps[keep], values[keep]
    return [point(t, v) for t, v in zip(timestamps.tolist(), values.tolist(), strict=True)]


def _matrix(series: Iterable[Series]) -> list[dict[str, Any]]:
    return [{"metric": dict(s.labels), "values": _values(s)} for s in series]


def result_data(result: QueryResult) -> dict[str, Any]:
    """The `data` member of a query or query_range answer."""
    body: Any
    if result.type is ResultType.VECTOR:
        body = _vector(result.vector)
    elif result.type is ResultType.MATRIX:
        body = _matrix(result.matrix)
    elif result.type is ResultType.SCALAR:
        sample = result.scalar
        body = point(sample.t_ms, sample.value) if sample is not None else None
    else:
        body = [format_time(result.t_ms), result.text]
    return {"resultType": str(result.type), "result": body}


def success(data: Any, warnings: Iterable[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "success", "data": data}
    warnings = list(warnings)
    if warnings:
        body["warnings"] = warnings
    return body


def error(error_type: str, message: str) -> dict[str, Any]:
    return {"status": "error", "errorType": error_type, "error": message}
