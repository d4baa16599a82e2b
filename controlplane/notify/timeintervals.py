"""Alertmanager's time intervals: named, recurring periods a route is muted in
(`mute_time_intervals`) or only active in (`active_time_intervals`).

    time_intervals:
      - name: business-hours
        time_intervals:
          - weekdays: ['monday:friday']
            times: [{start_time: '09:00', end_time: '17:00'}]
            location: Europe/Malta

A period matches a moment when every field it gives matches (a field left out matches all);
a named interval matches when any of its periods does. Times are [start, end) in minutes of the
day ('24:00' may end one); weekdays, days of month (negative from the month's end), months and
years are inclusive ranges `a:b` or single values, as Alertmanager reads them.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controlplane.errors import ConfigError

_FIELDS = {"times", "weekdays", "days_of_month", "months", "years", "location"}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}  # monday = 0
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
Range = tuple[int, int]
Fail = Callable[[str, str], ConfigError]


@dataclass(frozen=True, kw_only=True)
class Period:
    times: tuple[Range, ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[Range, ...] = ()  # 0 = Monday
    days_of_month: tuple[Range, ...] = ()  # negative: from the end (-1 = last day)
    months: tuple[Range, ...] = ()
    years: tuple[Range, ...] = ()
    location: str = "UTC"

    def contains(self, moment: datetime) -> bool:
        t = moment.astimezone(ZoneInfo(self.location))
        minute = t.hour * 60 + t.minute
        days = calendar.monthrange(t.year, t.month)[1]
        return (
            _any(self.times, lambda a, b: a <= minute < b)
            and _any(self.weekdays, lambda a, b: a <= t.weekday() <= b)
            and _any(self.days_of_month, lambda a, b: _day(a, days) <= t.day <= _day(b, days))
            and _any(self.months, lambda a, b: a <= t.month <= b)
            and _any(self.years, lambda a, b: a <= t.year <= b)
        )


def _any(ranges: tuple[Range, ...], hit: Callable[[int, int], bool]) -> bool:
    return not ranges or any(hit(a, b) for a, b in ranges)


def _day(day: int, days_in_month: int) -> int:
    return days_in_month + day + 1 if day < 0 else min(day, days_in_month)


@dataclass(frozen=True, kw_only=True)
class TimeInterval:
    name: str
    periods: tuple[Period, ...]

    def contains(self, moment: datetime) -> bool:
        return any(p.contains(moment) for p in self.periods)


def parse_all_intervals(
    data: Mapping[str, Any], fail_for: Callable[[str], Fail]
) -> dict[str, TimeInterval]:
    """Both lists of a routing file, by name: `time_intervals` and Alertmanager's older name
    for it, `mute_time_intervals`."""
    out: dict[str, TimeInterval] = {}
    for key in ("time_intervals", "mute_time_intervals"):
        for name, interval in parse_intervals(data.get(key) or [], fail_for(key)).items():
            if name in out:
                raise fail_for(key)("", f"duplicate time interval {name!r}")
            out[name] = interval
    return out


def check_interval_names(
    used: Iterable[tuple[str, Sequence[str]]], intervals: Mapping[str, TimeInterval], fail: Fail
) -> None:
    """Every name a route gives (route key, names) is a defined interval."""
    for route, names in used:
        for name in names:
            if name not in intervals:
                raise fail("", f"route {route!r} names undefined time interval {name!r}")


def parse_intervals(raw: Any, fail: Fail) -> dict[str, TimeInterval]:
    """`time_intervals` (or the older `mute_time_intervals`) of a routing file, by name."""
    out: dict[str, TimeInterval] = {}
    for i, item in enumerate(_list(raw, "", fail)):
        spot = f"[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise fail(spot, f"{item!r} needs a name and time_intervals")
        if item["name"] in out:
            raise fail(f"{spot}.name", f"duplicate time interval {item['name']!r}")
        periods = _list(item.get("time_intervals") or [], f"{spot}.time_intervals", fail)
        parsed = tuple(
            _period(p, f"{spot}.time_intervals[{j}]", fail) for j, p in enumerate(periods)
        )
        out[item["name"]] = TimeInterval(name=item["name"], periods=parsed)
    return out


def _period(raw: Any, spot: str, fail: Fail) -> Period:
    if not isinstance(raw, dict):
        raise fail(spot, f"{raw!r} is not a mapping")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise fail(f"{spot}.{unknown[0]}", f"unknown field (expected {sorted(_FIELDS)})")
    location = str(raw.get("location") or "UTC")
    try:
        ZoneInfo("UTC" if location == "Local" else location)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"{spot}.location", f"unknown time zone {location!r}") from None
    return Period(
        times=tuple(_times(raw.get("times"), f"{spot}.times", fail)),
        weekdays=_ranges(raw.get("weekdays"), f"{spot}.weekdays", fail, _WEEKDAYS, (0, 6)),
        days_of_month=_days(raw.get("days_of_month"), f"{spot}.days_of_month", fail),
        months=_ranges(raw.get("months"), f"{spot}.months", fail, _MONTHS, (1, 12)),
        years=_ranges(raw.get("years"), f"{spot}.years", fail, {}, (1, 9999)),
        location="UTC" if location == "Local" else location,
    )


def _times(raw: Any, spot: str, fail: Fail) -> list[Range]:
    out = []
    for i, item in enumerate(_list(raw or [], spot, fail)):
        here = f"{spot}[{i}]"
        if not isinstance(item, dict) or set(item) != {"start_time", "end_time"}:
            raise fail(here, f"{item!r} needs start_time and end_time (HH:MM)")
        start, end = _minute(item["start_time"], here, fail), _minute(item["end_time"], here, fail)
        if start >= end:
            raise fail(here, f"start_time {item['start_time']!r} must be before end_time")
        out.append((start, end))
    return out


def _minute(raw: Any, spot: str, fail: Fail) -> int:
    match = _TIME.match(str(raw))
    minute = int(match[1]) * 60 + int(match[2]) if match else -1
    if not match or int(match[2]) > 59 or not 0 <= minute <= 24 * 60:
        raise fail(spot, f"{raw!r} is not a time of day between 00:00 and 24:00")
    return minute


def _ranges(
    raw: Any, spot: str, fail: Fail, names: Mapping[str, int], bounds: Range
) -> tuple[Range, ...]:
    out = []
    for i, item in enumerate(_list(raw or [], spot, fail)):
        parts = str(item).lower().split(":")
        try:
            values = [names[p] if p in names else int(p) for p in parts]
        except ValueError:
            raise fail(f"{spot}[{i}]", f"{item!r} is not a name, a number or a:b") from None
        low, high = values[0], values[-1]
        if len(parts) > 2 or not bounds[0] <= low <= high <= bounds[1]:
            raise fail(f"{spot}[{i}]", f"{item!r} is not a range within {bounds[0]}..{bounds[1]}")
        out.append((low, high))
    return tuple(out)


def _days(raw: Any, spot: str, fail: Fail) -> tuple[Range, ...]:
    out = []
    for i, item in enumerate(_list(raw or [], spot, fail)):
        parts = str(item).split(":")
        try:
            low, high = int(parts[0]), int(parts[-1])
        except ValueError:
            raise fail(f"{spot}[{i}]", f"{item!r} is not a day or a range of days") from None
        same_sign = (low > 0) == (high > 0)
        ok = len(parts) <= 2 and 0 not in (low, high) and all(-31 <= d <= 31 for d in (low, high))
        if not ok or (same_sign and low > high):
            raise fail(f"{spot}[{i}]", f"{item!r} is not a range of days within -31..31 (not 0)")
        out.append((low, high))
    return tuple(out)


def _list(raw: Any, spot: str, fail: Fail) -> Sequence[Any]:
    if not isinstance(raw, list):
        raise fail(spot, f"{raw!r} is not a list")
    return raw
