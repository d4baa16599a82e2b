from __future__ import annotations

import pytest

from dashboards.shell import url_note
from dashboards.view import (
    RANGES,
    View,
    ignored,
    merge_search,
    parse_time,
    query_params,
    step_ms,
    with_view,
)

NOW = 1_772_452_800_000  # 2026-03-02T12:00:00Z


@pytest.mark.parametrize("rng", RANGES)
def test_every_range_asks_for_at_most_about_a_thousand_points(rng: str) -> None:
    window = View(range=rng).window(NOW)
    points = window.span_ms // window.step_ms + 1
    assert 300 <= points <= 1001
    assert window.end_ms == NOW


@pytest.mark.parametrize(
    ("span_s", "step_s"),
    [(900, 1), (3600, 5), (6 * 3600, 30), (86_400, 120), (7 * 86_400, 900), (30 * 86_400, 3600)],
)
def test_steps_are_rounded_up_to_readable_intervals(span_s: int, step_s: int) -> None:
    assert step_ms(span_s * 1000) == step_s * 1000


def test_the_view_round_trips_through_the_url() -> None:
    view = View(range="custom", start_ms=NOW - 7_200_000, end_ms=NOW, refresh="30s", paused=True)
    search = with_view("?state=failed", view)
    assert query_params(search) == {
        "state": "failed",
        "range": "custom",
        "from": "2026-03-02T10:00:00Z",
        "to": "2026-03-02T12:00:00Z",
        "refresh": "30s",
        "paused": "1",
    }
    assert View.from_search(search) == view
    assert View.from_search(search).window(0).start_ms == NOW - 7_200_000


def test_defaults_stay_out_of_the_url_and_bad_values_fall_back() -> None:
    assert with_view("?range=6h&q=x", View()) == "?q=x"
    assert View.from_params({"range": "2y", "refresh": "1ms", "paused": "maybe"}) == View()
    # a custom range needs both ends, in order
    assert View.from_params({"range": "custom", "from": "2026-03-02T12:00:00Z"}) == View()
    assert View.from_params({"range": "custom", "from": "2", "to": "1"}) == View()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T12:00:00Z", NOW),
        ("2026-03-02T13:00:00+01:00", NOW),
        ("2026-03-02 12:00:00", NOW),  # the picker's text, taken as UTC
        ("1772452800", NOW),
        ("yesterday", None),
        ("", None),
    ],
)
def test_times_in_the_url(text: str, expected: int | None) -> None:
    assert parse_time(text) == expected


def test_merge_search_sets_and_removes_keys() -> None:
    assert merge_search("?a=1&b=2", {"a": None, "c": "3"}) == "?b=2&c=3"
    assert merge_search("", {"a": ""}) == ""


def test_a_mangled_link_says_what_it_ignored() -> None:
    assert ignored("?range=6h&refresh=10s&paused=1") == []
    assert ignored("?range=custom&from=2026-03-01T10:00:00Z&to=2026-03-01T12:00:00Z") == []
    assert ignored("?range=3w&refresh=1ms&from=yesterday&paused=maybe") == [
        "range=3w",
        "from=yesterday",
        "refresh=1ms",
        "paused=maybe",
    ]
    assert url_note("?range=3w") == "ignored range=3w: showing the defaults"
    assert url_note("?range=1h") == ""
