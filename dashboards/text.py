"""How numbers, times and links read on the pages: UTC, short durations, prefix-safe links."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import dash

from dashboards.view import href


def link(path: str, params: Mapping[str, str] | None = None) -> str:
    """A link inside the dashboards, under whatever prefix they are mounted at."""
    return href(dash.get_relative_path(path), params or {})


def utc(t_s: float | None, *, seconds: bool = True) -> str:
    if t_s is None or not math.isfinite(t_s) or t_s <= 0:
        return "-"
    moment = datetime.fromtimestamp(t_s, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def clock(t_s: float | None, now_s: float) -> str:
    """`11:58:00` on the day of `now_s` (UTC), `03-01 11:58` on another: short in tables."""
    if t_s is None or not math.isfinite(t_s) or t_s <= 0:
        return "-"
    moment, today = datetime.fromtimestamp(t_s, UTC), datetime.fromtimestamp(now_s, UTC)
    if moment.date() == today.date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M" if moment.year == today.year else "%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h 05m`, `4d 6h`: precise when short, coarse when long."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "never"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < 86_400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86_400}d {s % 86_400 // 3600}h"


def age(since_s: float, now_s: float) -> str:
    return duration(now_s - since_s)


def percent(ratio: float | None, digits: int = 2) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "-"
    return f"{ratio * 100:.{digits}f}%"


def count(value: float | None) -> str:
    """`1,234`, `12.3k`, `4.56M`."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}"


def number(value: float | None) -> str:
    """Three significant digits: `0.52`, `11.4`, `1.2e+03`."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g}"


def rate(burn: float | None) -> str:
    if burn is None or not math.isfinite(burn):
        return "-"
    return f"{burn:.2g}x" if burn < 10 else f"{burn:.0f}x"


def labels(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"
