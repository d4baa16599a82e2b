from __future__ import annotations

import numpy as np
import pytest

from controlplane.api.encode import format_time, format_value
from controlplane.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    BadData,
    parse_duration_ms,
    parse_selector,
    parse_time_ms,
    selectors_param,
)
from controlplane.model.series import Matcher, MatchOp


# expected strings are what Go's strconv.FormatFloat(v, 'f', -1, 64) prints
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0.25, "0.25"),
        (-2.5, "-2.5"),
        (1e-7, "0.0000001"),
        (1e16, "10000000000000000"),
        (1.2345678901234568e20, "123456789012345680000"),
        (0.1 + 0.2, "0.30000000000000004"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (np.float64(3.5), "3.5"),
        (np.float64(7.0), "7"),
    ],
)
def test_format_value_as_go_does(value: float, text: str) -> None:
    assert format_value(value) == text


def test_format_time_has_no_trailing_zero() -> None:
    assert format_time(1435781451000) == 1435781451
    assert isinstance(format_time(1435781451000), int)
    assert format_time(1435781451781) == 1435781451.781


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1435781451.781", 1435781451781),
        ("1435781451", 1435781451000),
        ("0", 0),
        ("-1.5", -1500),
        ("1e3", 1_000_000),
        ("2015-07-01T20:10:51.781Z", 1435781451781),
        ("2015-07-01T22:10:51.781+02:00", 1435781451781),
        ("2015-07-01T20:10:51.781123456Z", 1435781451781),
        ("2015-07-01T20:10:51Z", 1435781451000),
        ("1e20", MAX_TIME_MS),
        ("-1e20", MIN_TIME_MS),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize("text", ["", "yesterday", "NaN", "Inf", "2015-07-01T20:10:51", "1_000"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="to a valid timestamp"):
        parse_time_ms(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("15s", 15_000), ("1m30s", 90_000), ("1h30m", 5_400_000), ("1.5", 1500), ("0.001", 1)],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5x", "1m1h", "s", "1e300"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="to a valid duration"):
        parse_duration_ms(text)


def test_selectors() -> None:
    name = Matcher(name="__name__", op=MatchOp.EQ, value="up")
    assert parse_selector('up{job!="a",x=~"b.*",y!~"c"}') == [
        [
            name,
            Matcher(name="job", op=MatchOp.NE, value="a"),
            Matcher(name="x", op=MatchOp.RE, value="b.*"),
            Matcher(name="y", op=MatchOp.NRE, value="c"),
        ]
    ]
    assert parse_selector('{__name__="up"}') == [[name]]
    assert selectors_param(['{a="1" or b="2"}', "up"]) == [
        [Matcher(name="a", op=MatchOp.EQ, value="1")],
        [Matcher(name="b", op=MatchOp.EQ, value="2")],
        [name],
    ]
    for bad in ["rate(up[5m])", "up[5m]", "up{", '{a=""}']:
        with pytest.raises(BadData):
            parse_selector(bad)
