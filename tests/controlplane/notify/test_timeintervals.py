"""Alertmanager's time intervals: parsing, matching, and routes muted or active by them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controlplane.errors import ConfigError
from controlplane.model.series import labels_from
from controlplane.notify.routing import parse_routing
from controlplane.notify.timeintervals import parse_intervals


def fail(part: str, message: str) -> ConfigError:
    return ConfigError(f"time_intervals{part}: {message}")


def interval(**period: object) -> object:
    return parse_intervals([{"name": "i", "time_intervals": [period]}], fail)["i"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "moment", "inside"),
    [
        ({"times": [{"start_time": "09:00", "end_time": "17:00"}]}, "2026-12-03T09:00", True),
        ({"times": [{"start_time": "09:00", "end_time": "17:00"}]}, "2026-12-03T17:00", False),
        ({"times": [{"start_time": "22:00", "end_time": "24:00"}]}, "2026-12-03T23:59", True),
        ({"weekdays": ["monday:friday"]}, "2026-12-05T12:00", False),  # a Saturday
        ({"weekdays": ["Saturday", "sunday"]}, "2026-12-06T12:00", True),
        ({"days_of_month": ["-1"]}, "2026-02-28T12:00", True),  # the last day of February
        ({"days_of_month": ["-7:-1"]}, "2026-12-24T12:00", False),
        ({"days_of_month": ["-7:-1"]}, "2026-12-25T00:00", True),
        ({"days_of_month": ["1:5"]}, "2026-12-03T12:00", True),
        ({"months": ["december"], "years": ["2026"]}, "2026-12-03T12:00", True),
        ({"months": ["1:3"]}, "2026-12-03T12:00", False),
        ({"years": ["2020:2025"]}, "2026-12-03T12:00", False),
        # 08:30 UTC is 09:30 in Malta in winter
        ({"times": [{"start_time": "09:00", "end_time": "10:00"}], "location": "Europe/Malta"},
         "2026-12-03T08:30", True),
    ],
)  # fmt: skip
def test_period_matching(period: dict[str, object], moment: str, inside: bool) -> None:
    assert interval(**period).contains(at(moment)) is inside  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ({"times": [{"start_time": "17:00", "end_time": "09:00"}]}, "must be before end_time"),
        ({"times": [{"start_time": "9:00", "end_time": "10:00"}]}, "is not a time of day"),
        ({"weekdays": ["funday"]}, "is not a name, a number or a:b"),
        ({"days_of_month": ["0"]}, "not 0"),
        ({"months": ["13"]}, "within 1..12"),
        ({"location": "Mars/Olympus"}, "unknown time zone"),
        ({"hours": ["1"]}, "unknown field"),
    ],
)
def test_bad_periods_name_the_field(period: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        interval(**period)


ROUTING = """
time_intervals:
  - name: nights
    time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}]}]
mute_time_intervals:
  - name: weekends
    time_intervals: [{weekdays: ['saturday:sunday']}]
route:
  receiver: default
  routes:
    - receiver: pager
      matchers: ['severity="page"']
      mute_time_intervals: [weekends]
      routes:
        - receiver: pager-eu
          matchers: ['region="eu"']
    - receiver: day-team
      matchers: ['severity="ticket"']
      active_time_intervals: [nights]
receivers: [{name: default}, {name: pager}, {name: pager-eu}, {name: day-team}]
"""


def test_routes_muted_or_active_by_name_and_not_inherited() -> None:
    config = parse_routing(__import__("yaml").safe_load(ROUTING))
    pager, day_team = config.route.routes
    saturday, monday_night = at("2026-12-05T12:00"), at("2026-12-07T01:00")
    assert config.time_muted(pager, saturday)
    assert not config.time_muted(pager, monday_night)
    assert not config.time_muted(pager.routes[0], saturday)  # not inherited
    assert config.time_muted(day_team, saturday)  # outside its only active interval
    assert not config.time_muted(day_team, monday_night)
    assert not config.time_muted(config.route, saturday)
    page = labels_from({"severity": "page", "region": "eu"})
    assert [r.options.receiver for r in config.route.match(page)] == ["pager-eu"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("mute_time_intervals: [weekends]", "mute_time_intervals: [holidays]"),
         "undefined time interval 'holidays'"),
        (("route:\n  receiver: default", "route:\n  receiver: default\n  mute_time_intervals: [nights]"),
         "the root route cannot have mute_time_intervals"),
        (("- name: weekends", "- name: nights"), "duplicate time interval 'nights'"),
    ],
)  # fmt: skip
def test_routing_errors(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_routing(__import__("yaml").safe_load(ROUTING.replace(*change)))


def test_reading_as_alertmanager_reads() -> None:
    text = """
route:
  receiver: a
  group_by: [alertname]
  group_wait: 10s
  routes:
    - {receiver: b, group_by: [], matchers: ['x="1"'], group_wait: null}
    - {receiver: '', matchers: ['x="2"'], continue: null}
receivers: [{name: a}, {name: b}]
"""
    config = parse_routing(__import__("yaml").safe_load(text))
    first, second = config.route.routes
    assert first.options.group_by == ("alertname",)
    assert first.options.group_wait == timedelta(seconds=10)
    assert second.options.receiver == "a"
    assert second.continue_ is False
