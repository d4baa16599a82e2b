"""RE2 through google-re2: Go's syntax, Prometheus's anchoring, linear time on hostile input."""

from __future__ import annotations

import time

import pytest

from controlplane.model.regex import RegexError, anchored, anchored_with_groups
from controlplane.model.series import Matcher, MatchOp


@pytest.mark.parametrize(
    ("pattern", "text", "hit"),
    [
        ("(?i)abc", "ABC", True),
        ("a((?i)b)c", "aBc", True),
        ("a((?i)b)c", "aBC", False),  # the flag ends with its group, as in RE2
        ("[[:alpha:]]+", "abc", True),
        ("[[:^alpha:]]+", "123", True),
        ("(?<name>x)", "x", True),
        ("(?P<name>x)", "x", True),
        (r"a\z", "a", True),
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"\pL+", "äb", True),
        ("foo", "foo\n", False),  # $ is the end of the text, not before a final newline
        ("f.o", "f\no", True),  # (?s): . matches a newline, as in Prometheus
        ("(?-s:f.o)", "f\no", False),
        ("ap", "app", False),  # fully anchored
        ("a)|(b", "ab", True),  # ^(?s:a)|(b)$ searched, as Go's MatchString does
        ("", "", True),
        (".*", "\ud800", True),  # a lone surrogate (from JSON) is no crash
    ],
)
def test_go_syntax_and_prometheus_anchoring(pattern: str, text: str, hit: bool) -> None:
    assert anchored(pattern).matches(text) is hit
    assert Matcher(name="l", op=MatchOp.RE, value=pattern).matches(text) is hit
    assert Matcher(name="l", op=MatchOp.NRE, value=pattern).matches(text) is not hit


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("x**", "bad repetition operator: **"),
        ("((", "missing ): (("),
        ("a{1001}", "invalid repetition size: {1001}"),
        (r"\Z", r"invalid escape sequence: \Z"),  # Python's spelling; Go and RE2 say \z
        ("(?=x)", "invalid perl operator: (?="),
        (r"(a)\1", r"invalid escape sequence: \1"),
    ],
)
def test_what_go_refuses_is_refused_with_the_pattern_named(pattern: str, reason: str) -> None:
    with pytest.raises(RegexError) as info:
        anchored(pattern)
    assert str(info.value) == f"invalid regular expression {pattern!r}: {reason}"
    assert isinstance(info.value, ValueError)


def test_a_pattern_too_large_for_the_memory_budget_is_refused() -> None:
    huge = "|".join(f"provider-{i:06d}-eu-west" for i in range(40_000))
    with pytest.raises(RegexError, match="pattern too large"):
        anchored(huge)


def test_submatch_groups_follow_go_expand() -> None:
    found = anchored_with_groups("(?P<x>a)(b)?(c)").submatch("ac")
    assert found is not None
    assert (found.group(0), found.group(1), found.group("x"), found.group(3)) == (
        "ac",
        "a",
        "a",
        "c",
    )
    assert found.group(2) == "" and found.group(9) == "" and found.group("nope") == ""
    assert anchored_with_groups("a").submatch("b") is None


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)+$", "(.*a){20}", "(a*)*b", "(x+x+)+y"])
def test_catastrophic_patterns_run_in_linear_time(pattern: str) -> None:
    value = "a" * 100_000 + "!"
    started = time.monotonic()
    assert not anchored(pattern).matches(value)
    assert not anchored_with_groups(pattern).submatch(value)
    assert time.monotonic() - started < 5  # Python's re: longer than the universe's age
