"""Hostile or careless PromQL: checks before the parser binding, the evaluator's limits
(samples held, subquery resolution, the deadline inside loops) and RE2 regexes."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.errors import EvalError, ParseError, QueryError, QueryTimeout
from controlplane.model.series import Series, labels_from
from controlplane.promql import Engine, MemorySource
from controlplane.promql.limits import DEPTH_CEILING, ParseLimits, nesting_depth
from controlplane.promql.parse import parse_query
from tests.conftest import ROOT

MIN = 60_000
ROOMY = ParseLimits(max_length=1 << 20, max_depth=64)  # so that depth, not length, refuses


def series(name: str, values: list[float], step_ms: int = MIN, **labels: str) -> Series:
    return Series(
        labels=labels_from({"__name__": name, **labels}),
        timestamps=np.arange(len(values), dtype=np.int64) * step_ms,
        values=np.asarray(values, dtype=np.float64),
    )


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("up", 0),
        ("1+1", 1),
        ("(up)", 1),
        ("a or b or c", 2),  # a chain is as deep as its operators
        ("sum(rate(x[5m]))", 4),  # a range bracket wraps what it follows
        ('up{a!="b", c=~"x|y"}', 1),  # != and =~ between braces are matchers
        ('{a="1" or b="2" or c="3"}', 1),  # so is `or` (Prometheus 3)
        ("1e-5 + 2", 1),  # the exponent's sign is no operator
        ('up{a="((((((("}', 1),  # brackets in strings and comments do not count
        ("up # ((((((\n+ 1", 1),
        ("`((((` + '\\'(((('", 1),
        ("(((", 3),  # unclosed brackets still count
        ("(1+(1+(1)))", 5),
    ],
)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


@pytest.mark.parametrize(
    "text",
    [
        "(" * 50_000 + "1" + ")" * 50_000,  # exited the process with SIGSEGV
        "(" * 3_000 + "up" + ")" * 3_000,  # RecursionError and gigabytes
        "+".join(["1"] * 10_000),
        " or ".join(["up"] * 1_000),
        "-" * 5_000 + "up",
        "abs(" * 2_000 + "up" + ")" * 2_000,
        "max_over_time(" * 500 + "up" + "[5m:])" * 500,
    ],
    ids=["parens", "parens-3000", "plus-chain", "or-chain", "unary", "calls", "subqueries"],
)
def test_deep_nesting_is_refused_before_the_parser(text: str) -> None:
    with pytest.raises(ParseError, match=r"^1:\d+: parse error: .*limit of 64 levels") as info:
        parse_query(text, ROOMY)
    assert "query.max_depth" in str(info.value)


def test_a_long_text_is_refused_naming_the_limit() -> None:
    text = 'up{job=~"' + "x" * 70_000 + '"}'
    with pytest.raises(ParseError, match=r"^1:65537: parse error: expression of 70011 bytes"):
        parse_query(text)
    assert parse_query(text, ParseLimits(max_length=80_000)).root is not None
    with pytest.raises(ParseError, match=r"query\.max_length"):
        parse_query("up + up", ParseLimits(max_length=5))


def test_size_times_depth_is_bounded_too() -> None:
    # 400 MiB in the binding: each of 31 levels held its own copy of 1,500 compiled regexes
    matchers = ",".join(f'l{i}=~"v"' for i in range(1_500))
    with pytest.raises(ParseError, match=r"too large for its nesting: .* 16 x query\.max_length"):
        parse_query("(up+" * 31 + "up{" + matchers + "}" + ")" * 31)
    # a dashboard's long alternation, a few levels deep, is fine
    values = "|".join(f"provider-{i:05d}" for i in range(3_000))
    assert parse_query(f'sum by (p) (rate(x{{p=~"{values}"}}[5m])) > 0').root is not None


def test_shipped_depths_pass_and_the_limits_are_configurable() -> None:
    rule = "sum(rate(a[5m])) by (job) / on(job) group_left sum(rate(b[5m])) by (job) > 0.5"
    assert parse_query(rule).root is not None
    with pytest.raises(ParseError, match="limit of 3 levels"):
        parse_query(rule, ParseLimits(max_depth=3))


def test_finding_the_error_position_of_a_long_text_is_bounded() -> None:
    text = "up{" + ",".join(f'l{i}="v"' for i in range(7_000)) + "} + +" + " " * 500
    started = time.monotonic()
    with pytest.raises(ParseError):
        parse_query(text)
    assert time.monotonic() - started < 5  # 400 re-parses of 60 KB took 4 s


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('up{a=~"x**"}', "1:7: parse error: invalid regular expression 'x**': bad repetition"),
        ('rate(x{a!~"a{1001}"}[5m])', "invalid repetition size: {1001}"),
    ],
)
def test_regexes_go_refuses_are_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("*", r"\*").replace("{", r"\{")):
        parse_query(text)


def test_catastrophic_regexes_against_long_label_values_return_quickly() -> None:
    long = "a" * 200_000 + "!"
    e = Engine(MemorySource([series("m", [1], l=long), series("m", [2], l="b")]))
    started = time.monotonic()
    assert len(e.instant('m{l=~"(a+)+$"}', 0).vector) == 0
    assert len(e.instant('m{l!~"(a|aa)+"}', 0).vector) == 2
    relabelled = e.instant('label_replace(m, "x", "$2", "l", "(a+)+(!)")', 0).vector
    assert sorted(dict(s.labels).get("x", "") for s in relabelled) == ["", "!"]
    assert time.monotonic() - started < 5


def test_subqueries_are_capped_at_11000_points_per_series() -> None:
    e = Engine(MemorySource([series("m", [1, 2, 3])]), max_samples=100_000)
    with pytest.raises(EvalError, match=r"exceeded maximum resolution of 11,000 points") as info:
        e.instant("max_over_time(m[1d:1s])", 0)  # gigabytes over many series, and slow
    assert "subquery 'm{}[1d:1s]'" in str(info.value)  # the subquery named, not the call
    assert "(86,400 in its range)" in str(info.value)
    assert e.instant("max_over_time(m[3h:1s])", 2 * MIN).vector[0].value == 3
    # a month-long dashboard over a 5m:1m subquery is fine: 5 points a window
    assert e.range("max_over_time(m[5m:1m])", 0, 30 * 86_400_000, 3_600_000).matrix
    # the whole inner grid counts as samples, before it is allocated
    with pytest.raises(EvalError, match="too many samples"):
        e.range("max_over_time(m[5m:1s])", 0, 30 * 86_400_000, 3_600_000)


def test_samples_produced_count_not_only_samples_loaded() -> None:
    e = Engine(MemorySource([series("m", [1], step_ms=MIN)]), max_samples=500)
    # one sample loaded, but 1 series x 1,000 steps produced
    with pytest.raises(EvalError, match="too many samples"):
        e.range("m", 0, 999 * 1_000, 1_000)
    assert len(e.range("m", 0, 299 * 1_000, 1_000).matrix[0].timestamps) == 300
    # intermediate results count too: m + m holds both operands and its result
    with pytest.raises(EvalError, match="too many samples"):
        e.range("m + m", 0, 199 * 1_000, 1_000)
    # parentheses hold nothing new
    assert e.range("((((m))))", 0, 299 * 1_000, 1_000).matrix


def test_the_deadline_is_checked_inside_long_loops() -> None:
    # one clock tick per check: three nodes take three, a 100-sample window walk 100 more
    e = Engine(MemorySource([series("m", list(range(200)))]), timeout_s=20.0)
    e.clock = itertools.count().__next__  # type: ignore[assignment]
    assert e.instant("max_over_time(m[5m])", 199 * MIN).vector
    e.clock = itertools.count().__next__  # type: ignore[assignment]
    with pytest.raises(QueryTimeout):
        e.instant("max_over_time(m[200m])", 199 * MIN)


def test_a_long_query_stops_at_its_timeout() -> None:
    many = [series("m", list(range(3_000)), step_ms=1_000, i=str(i)) for i in range(400)]
    e = Engine(MemorySource(many), timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        # 400 series x 1,000 steps x 2,400-sample windows, walked column by column: ~20 s
        e.range("stddev_over_time(m[40m])", 0, 2_999_000, 3_000)
    assert time.monotonic() - started < 5


TOKENS = [
    *"()[]{}+-*/^%,:@#\n \\\"'`",
    *["up", "x", "1", "2.5e-3", "0x1f", "Inf", "==", "!=", ">", "<=", "=~", "!~", "="],
    *["and", "or", "unless", "atan2", "bool", "by", "without", "on", "ignoring"],
    *["group_left", "offset", "5m", "1h:1m", "sum", "rate", "abs", "topk", "label_replace"],
    *['"a"', '"(a+)+$"', '"x**"', "'b'", "`c`", "start()", "\u00ff", "\ud800"],
]
NESTING = st.tuples(
    st.sampled_from(["(", "abs(", "sum(", "-(", "1+", "- ", "x or ", "(x)[5m:]+"]),
    st.integers(0, 3_000),
).map(lambda pair: pair[0] * pair[1] + "up" + ")" * (pair[1] * pair[0].count("(")))
EXPRESSIONS = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join) | NESTING


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@settings(max_examples=300, deadline=None)
@given(text=EXPRESSIONS)
def test_any_text_parses_or_is_a_query_error(text: str) -> None:
    before = _rss_mib()
    e = Engine(MemorySource([series("up", [1, 0, 1]), series("x", [2])]), timeout_s=5.0)
    for run in (lambda: e.instant(text, MIN), lambda: e.range(text, 0, 2 * MIN, 30_000)):
        with contextlib.suppress(QueryError):
            run()
    assert _rss_mib() - before < 256


def test_the_limits_leave_a_margin_in_a_fresh_process() -> None:
    """At DEPTH_CEILING levels, in the deepest-stacked forms we know, the binding parses and
    the evaluator evaluates with 100 frames already used (a request's stack is ~40)."""
    script = textwrap.dedent(
        """
        import sys, numpy as np
        from controlplane.model.series import Series
        from controlplane.promql import Engine, MemorySource
        from controlplane.promql.limits import DEPTH_CEILING, ParseLimits, nesting_depth
        forms = [("clamp(", ", 0, 1)"), ("abs(", ")"), ("max_over_time(", "[5m:1m])"),
                 ("(up + ", ")"), ("histogram_quantile(0.9, sum by (le) (", "))")]
        up = Series(labels=(("__name__", "up"), ("le", "1")),
                    timestamps=np.arange(0, 600_000, 15_000), values=np.ones(40))
        e = Engine(MemorySource([up]), parse_limits=ParseLimits(max_depth=DEPTH_CEILING))
        def padded(k, text):
            return padded(k - 1, text) if k else e.range(text, 0, 600_000, 60_000)
        for head, tail in forms:
            n = 1
            while nesting_depth(head * (n + 1) + "up" + tail * (n + 1)) <= DEPTH_CEILING:
                n += 1
            padded(100, head * n + "up" + tail * n)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]
    assert 2 * ParseLimits().max_depth <= DEPTH_CEILING


def test_a_query_past_its_deadline_after_its_last_step_is_a_timeout() -> None:
    """Checked on the way out of every node too: a last long step must not turn a timeout
    into a late answer. The clock moves one second per look; the timeout is 2.5 s."""
    import itertools

    from controlplane.errors import QueryTimeout
    from controlplane.model.series import labels_from
    from controlplane.promql.engine import Engine
    from controlplane.tsdb.store import Store

    store = Store(retention_ms=3_600_000)
    store.append(labels_from({"__name__": "x"}), 1_000, 1.0)
    ticks = itertools.count()
    engine = Engine(store, clock=lambda: float(next(ticks)), timeout_s=2.5)
    with pytest.raises(QueryTimeout):
        engine.instant("sum(x)", 1_000)
    assert Engine(store, timeout_s=60).instant("sum(x)", 1_000).vector[0].value == 1.0
