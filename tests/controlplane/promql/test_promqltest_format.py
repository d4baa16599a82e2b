from __future__ import annotations

import math
from pathlib import Path

import pytest

from controlplane.model.series import STALE_NAN, is_stale_marker
from tests.controlplane.promql.promqltest_format import (
    HISTOGRAM,
    Clear,
    Eval,
    FormatError,
    Load,
    parse_duration_ms,
    parse_file,
    parse_series,
    parse_values,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),
        ("1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
        ("1x4", [1.0] * 5),
        ("1 _x3 _", [1.0, None, None, None, None]),
        ("Inf -Inf +Inf", [math.inf, -math.inf, math.inf]),
        ("1e-6 .8 2. 1.78264E+50", [1e-6, 0.8, 2.0, 1.78264e50]),
    ],
)
def test_expanding_notation(text: str, want: list[float | None]) -> None:
    assert parse_values(text) == want


def test_nan_stale_and_histograms() -> None:
    values = parse_values("NaN stale {{schema:0 sum:1 count:1}}x2 {{sum:1}}+{{sum:2}}x1")
    assert isinstance(values[0], float) and math.isnan(values[0])
    assert isinstance(values[1], float) and is_stale_marker(values[1])
    assert values[2:] == [HISTOGRAM] * 5
    assert is_stale_marker(STALE_NAN)


def test_increments_accumulate_like_prometheus() -> None:
    values = parse_values("0+1.33x10")
    total = 0.0
    for _ in range(10):
        total += 1.33
    assert values[-1] == total


def test_series_lines() -> None:
    s = parse_series('http_requests{job="api-server", instance="0"}\t0+10x2')
    assert s.labels == (("__name__", "http_requests"), ("instance", "0"), ("job", "api-server"))
    assert s.values == [0.0, 10.0, 20.0]
    assert parse_series("{} 1").labels == ()
    assert parse_series('{__name__="metric"} 1').labels == (("__name__", "metric"),)
    with pytest.raises(FormatError):
        parse_series("metric 1 ?")


def test_durations() -> None:
    assert parse_duration_ms("0") == 0
    assert parse_duration_ms("10s53ms") == 10_053
    assert parse_duration_ms("1h30m") == 5_400_000
    with pytest.raises(FormatError):
        parse_duration_ms("5 minutes")


def test_commands(tmp_path: Path) -> None:
    path = tmp_path / "x.test"
    path.write_text(
        'load 5m\n  a{b="c"} 1 2\n\n'
        "# comment\n"
        'eval instant at 5m a\n  expect no_warn\n  a{b="c"} 2\n\n'
        'eval range from 0 to 5m step 5m a\n  a{b="c"} 1 2\n\n'
        "eval instant at 1m 1 + 1\n  2\n\n"
        "eval_fail instant at 0 x\n  expected_fail_message boom\n\n"
        "eval instant at 0 nope\n  expect fail regex: a.c\n\n"
        'eval instant at 0 "x"\n  expect string "x"\n\n'
        'eval instant at 1m a[1m]\n  expect range vector from 0 to 1m step 1m\n  a{b="c"} 1 _\n\n'
        "clear\n"
    )
    commands = parse_file(path)
    assert [type(c) for c in commands] == [Load, Eval, Eval, Eval, Eval, Eval, Eval, Eval, Clear]
    load, instant, ranged, scalar, failing, regex, string, vector, _ = commands
    assert isinstance(load, Load) and load.step_ms == 300_000
    assert isinstance(instant, Eval) and instant.end_ms == 300_000 and instant.annotations
    assert isinstance(ranged, Eval) and not ranged.instant and ranged.step_ms == 300_000
    assert isinstance(scalar, Eval) and scalar.expect_scalar == 2.0
    assert isinstance(failing, Eval) and failing.fail and failing.fail_message == "boom"
    assert isinstance(regex, Eval) and regex.fail and regex.fail_regex == "a.c"
    assert isinstance(string, Eval) and string.expect_string == "x"
    assert (
        isinstance(vector, Eval)
        and vector.range_vector
        and vector.expected[0].values == [1.0, None]
    )


def test_multiple_values_for_an_instant_eval_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.test"
    path.write_text("eval instant at 0 a\n  a 1 2\n")
    with pytest.raises(FormatError):
        parse_file(path)
