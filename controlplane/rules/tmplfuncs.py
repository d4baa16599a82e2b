"""Prometheus's template functions that need no evaluation context, formatting exactly as
Prometheus's (template/template.go): humanize(1234567) = "1.235M", humanizeDuration(90) =
"1m 30s", humanizeTimestamp(0) = "1970-01-01 00:00:00 +0000 UTC". `query`, `pathPrefix` and
`externalURL` depend on the alert's context and live in templates.py.
"""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.gotemplate import fmt as gofmt
from controlplane.gotemplate.values import AnyMap, FuncError, GoFunc, GoStruct
from controlplane.model.times import parse_duration


def _first(v: list[GoStruct] | None) -> GoStruct:
    if not v:
        raise FuncError("first() called on vector with no elements")
    return v[0]


def _sample_field(s: GoStruct | None, name: str) -> Any:
    if s is None:
        raise FuncError("nil pointer dereference")
    return s.fields[name]


def parse_go_float(text: str) -> float:
    """strconv.ParseFloat(text, 64), including its error text."""
    body = text[1:] if text[:1] in ("+", "-") else text
    low = body.lower()
    try:
        if low in ("inf", "infinity") or text.lower() == "nan":
            return float(text)
        if low.startswith("0x"):
            return float.fromhex(text)
        if re.fullmatch(r"(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", low):
            return float(text)
    except ValueError:
        pass
    raise FuncError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')


def to_float(value: Any) -> float:
    """Prometheus's convertToFloat: numbers and numeric strings."""
    if isinstance(value, bool) or value is None:
        raise FuncError(f"can't convert {gofmt.go_type_name(value)} to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_go_float(value)
    raise FuncError(f"can't convert {gofmt.go_type_name(value)} to float")


def _g4(v: float) -> str:
    return gofmt.sprintf("%.4g", [v])


def humanize(value: Any) -> str:
    v = to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    v = to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(value: Any) -> str:
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value: Any) -> str:
    return _g4(to_float(value) * 100) + "%"


@dataclass(frozen=True, kw_only=True)
class GoTime:
    """A time.Time, printed as Go prints one (`2015-06-23 13:19:44.128 +0000 UTC`)."""

    ms: int
    go_type = "*time.Time"

    def go_repr(self) -> str:
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=self.ms)
        frac = f".{when.microsecond // 1000:03d}".rstrip("0").rstrip(".")
        return when.strftime("%Y-%m-%d %H:%M:%S") + frac + " +0000 UTC"


def _to_time(value: Any) -> GoTime:
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        raise FuncError("value is NaN or Inf")
    ns = v * 1e9
    if not -(2**63) <= ns <= 2**63 - 1:
        raise FuncError(
            f"{gofmt.format_value(v)} cannot be represented as a nanoseconds timestamp "
            "since it overflows int64"
        )
    return GoTime(ms=int(int(ns) / 1_000_000))


def humanize_timestamp(value: Any) -> str:
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return _to_time(v).go_repr()


def _go_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FuncError(f"error parsing regexp: {exc}: `{pattern}`") from None


def re_replace_all(pattern: str, repl: str, text: str) -> str:
    """Go's Regexp.ReplaceAllString: `$1`, `${1}`, `$name`, `$$` in the replacement."""
    regex = _go_regex(pattern)

    def expand_one(m: re.Match[str]) -> str:
        def group(ref: re.Match[str]) -> str:
            if ref.group(0) == "$$":
                return "$"
            name = ref.group(1) or ref.group(2)
            if name.isdigit():
                index = int(name)
                return (m.group(index) or "") if index <= regex.groups else ""
            return (m.group(name) or "") if name in regex.groupindex else ""

        return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", group, repl)

    return regex.sub(expand_one, text)


def _is_separator(ch: str) -> bool:
    # strings.Title's rule: ASCII alphanumerics and _ join words, other ASCII separates;
    # beyond ASCII only letters and digits join, and only spaces separate
    if ord(ch) <= 0x7F:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _title(text: str) -> str:
    out, prev = [], " "
    for ch in text:
        titled = ch.title()
        out.append(titled if _is_separator(prev) and len(titled) == 1 else ch)
        prev = ch
    return "".join(out)


def _case(text: str, upper: bool) -> str:
    return "".join(
        (c.upper() if upper else c.lower()) if len(c.upper() if upper else c.lower()) == 1 else c
        for c in text
    )


def _split_host_port(host_port: str) -> tuple[str, str] | None:
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or not host_port[end + 1 :].startswith(":"):
            return None
        return host_port[1:end], host_port[end + 2 :]
    if host_port.count(":") != 1:
        return None
    host, port = host_port.split(":")
    return host, port


def _strip_port(host_port: str) -> str:
    split = _split_host_port(host_port)
    return host_port if split is None else split[0]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _strip_domain(host_port: str) -> str:
    split = _split_host_port(host_port)
    host, port = split if split is not None else (host_port, "")
    if _is_ip(host):
        return host_port
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def _parse_duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise FuncError(f'not a valid duration string: "{text}"') from None


def _link(expr: str, tab: int) -> str:
    return f"/graph?g0.expr={urllib.parse.quote_plus(expr, safe='-_.~')}&g0.tab={tab}"


def _match(pattern: str, text: str) -> bool:
    return _go_regex(pattern).search(text) is not None


def _sort_by_label(label: str, v: list[GoStruct] | None) -> list[GoStruct]:
    return sorted(v or [], key=lambda s: s.fields["Labels"].get(label, ""))


PROMETHEUS_FUNCTIONS: dict[str, GoFunc] = {
    "first": GoFunc(fn=_first, params=("queryResult",)),
    "label": GoFunc(
        fn=lambda name, s: _sample_field(s, "Labels").get(name, ""), params=("string", "*sample")
    ),
    "value": GoFunc(fn=lambda s: _sample_field(s, "Value"), params=("*sample",)),
    "strvalue": GoFunc(
        fn=lambda s: _sample_field(s, "Labels").get("__value__", ""), params=("*sample",)
    ),
    "args": GoFunc(fn=lambda *a: AnyMap({f"arg{i}": v for i, v in enumerate(a)}), variadic="any"),
    "reReplaceAll": GoFunc(fn=re_replace_all, params=("string", "string", "string")),
    "safeHtml": GoFunc(fn=lambda text: text, params=("string",)),
    "match": GoFunc(fn=_match, params=("string", "string")),
    "title": GoFunc(fn=_title, params=("string",)),
    "toUpper": GoFunc(fn=lambda s: _case(s, True), params=("string",)),
    "toLower": GoFunc(fn=lambda s: _case(s, False), params=("string",)),
    "graphLink": GoFunc(fn=lambda e: _link(e, 0), params=("string",)),
    "tableLink": GoFunc(fn=lambda e: _link(e, 1), params=("string",)),
    "sortByLabel": GoFunc(fn=_sort_by_label, params=("string", "queryResult")),
    "humanize": GoFunc(fn=humanize, params=("any",)),
    "humanize1024": GoFunc(fn=humanize1024, params=("any",)),
    "humanizeDuration": GoFunc(fn=humanize_duration, params=("any",)),
    "humanizePercentage": GoFunc(fn=humanize_percentage, params=("any",)),
    "humanizeTimestamp": GoFunc(fn=humanize_timestamp, params=("any",)),
    "toTime": GoFunc(fn=_to_time, params=("any",)),
    "parseDuration": GoFunc(fn=_parse_duration, params=("string",)),
    "stripPort": GoFunc(fn=_strip_port, params=("string",)),
    "stripDomain": GoFunc(fn=_strip_domain, params=("string",)),
}
