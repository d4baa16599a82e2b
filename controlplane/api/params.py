"""Request parameters of the Prometheus HTTP API, parsed and refused as Prometheus does.

Each failure is a `BadData` whose message is Prometheus's own (`invalid parameter "start":
cannot parse "x" to a valid timestamp`), so clients that match on it keep working.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import promql_parser

from controlplane.config import LABEL_NAME
from controlplane.errors import ParseError
from controlplane.model.series import Matcher
from controlplane.model.times import parse_duration
from controlplane.promql.catalog import MAX_TIME_MS, MIN_TIME_MS
from controlplane.promql.limits import ParseLimits
from controlplane.promql.parse import parse_query, selector_matchers

MAX_POINTS = 11_000
DEFAULT_LIMITS = ParseLimits()
_EMPTY_MATCHERS = "match[] must contain at least one non-empty matcher"
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


class BadData(ParseError):
    """A request parameter that cannot be used: errorType bad_data, HTTP 400."""


def _quote(text: str) -> str:
    """Go's %q, which Prometheus's messages use (JSON string syntax is close enough)."""
    return json.dumps(text, ensure_ascii=False)


def invalid(name: str, message: str) -> BadData:
    return BadData(f'invalid parameter "{name}": {message}')


def parse_time_ms(text: str) -> int:
    """Unix seconds (fractions rounded to the millisecond) or RFC3339, in ms since the epoch,
    kept within Prometheus's own minimum and maximum time."""
    if _NUMBER.match(text):
        seconds = float(text)
        if math.isfinite(seconds):
            frac, whole = math.modf(seconds)
            t_ms = int(whole) * 1000 + round(frac * 1000)
            return min(max(t_ms, MIN_TIME_MS), MAX_TIME_MS)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            moment = None
        # RFC3339 always carries an offset; a naive time would silently mean local time
        if moment is not None and moment.tzinfo is not None:
            delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
            return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    raise ValueError(f"cannot parse {_quote(text)} to a valid timestamp")


def parse_duration_ms(text: str) -> int:
    """Float seconds or a Prometheus duration (`1m30s`), in milliseconds."""
    if _NUMBER.match(text):
        seconds = float(text)
        if abs(seconds) * 1e9 > 9.2e18:
            raise ValueError(f"cannot parse {_quote(text)} to a valid duration. It overflows int64")
        return round(seconds * 1000)
    try:
        return round(parse_duration(text) * 1000)
    except ValueError:
        raise ValueError(f"cannot parse {_quote(text)} to a valid duration") from None


def time_param(form: dict[str, str], name: str, default_ms: int | None = None) -> int:
    """A required time (`default_ms` None), or an optional one: Prometheus words the errors
    of the optional ones (its parseTimeParam) with one more prefix."""
    text = form.get(name, "")
    if text == "" and default_ms is not None:
        return default_ms
    try:
        return parse_time_ms(text)
    except ValueError as exc:
        prefix = "" if default_ms is None else f"Invalid time value for '{name}': "
        raise invalid(name, f"{prefix}{exc}") from None


def duration_param(form: dict[str, str], name: str) -> int | None:
    text = form.get(name, "")
    if text == "":
        return None
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise invalid(name, str(exc)) from None


def query_param(form: dict[str, str]) -> str:
    expr = form.get("query", "")
    if not expr.strip():
        raise invalid("query", "1:1: parse error: no expression found in input")
    return expr


@dataclass(frozen=True, kw_only=True)
class RangeParams:
    start_ms: int
    end_ms: int
    step_ms: int


def range_params(form: dict[str, str]) -> RangeParams:
    start = time_param(form, "start")
    end = time_param(form, "end")
    if end < start:
        raise invalid("end", "end timestamp must not be before start time")
    step = duration_param(form, "step")
    if step is None:
        raise invalid("step", 'cannot parse "" to a valid duration')
    if step <= 0:
        raise invalid(
            "step",
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer",
        )
    if (end - start) // step > MAX_POINTS:
        raise BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    return RangeParams(start_ms=start, end_ms=end, step_ms=step)


def limit_param(form: dict[str, str]) -> int:
    """`limit`: 0 (the default) means no limit."""
    text = form.get("limit", "")
    if text == "":
        return 0
    if not text.isdigit():
        raise invalid("limit", f"cannot parse {_quote(text)} to a valid limit")
    return int(text)


def label_name_param(name: str) -> str:
    if not LABEL_NAME.match(name):
        raise BadData(f"invalid label name: {_quote(name)}")
    return name


def parse_selector(
    text: str, param: str = "match[]", limits: ParseLimits = DEFAULT_LIMITS
) -> list[list[Matcher]]:
    """A series selector (`up{job="a"}`, `{__name__=~"x.*"}`) into matcher sets: one, or
    several for the `{a="1" or b="2"}` form, whose results are united. Regexes are RE2, as
    in queries; the text is bounded by `limits` as queries are. `param` names it in errors."""
    try:
        root = parse_query(text, limits).root
    except ParseError as exc:
        if "at least one non-empty matcher" in str(exc):
            raise invalid(param, _EMPTY_MATCHERS) from None
        raise invalid(param, str(exc)) from None
    if not isinstance(root, promql_parser.VectorSelector):
        raise invalid(param, f"1:1: parse error: {_quote(text)} is not a series selector")
    sets = selector_matchers(root)
    for matchers in sets:
        if all(m.matches("") for m in matchers):
            raise invalid(param, _EMPTY_MATCHERS)
    return sets


def selectors_param(
    values: Sequence[str], limits: ParseLimits = DEFAULT_LIMITS
) -> list[list[Matcher]]:
    return [matchers for text in values for matchers in parse_selector(text, limits=limits)]
