"""The exposition parser: fast path and prometheus_client fallback agree sample by sample."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.collect.exposition import (
    ExpositionParser,
    MetricMetadata,
    Sample,
    parse_samples,
    parse_with_prometheus_client,
)
from controlplane.errors import ScrapeError

DATA = Path(__file__).parent / "data"


def _key(s: Sample) -> tuple[object, ...]:
    # bit patterns, so -0.0 differs from 0.0 and NaN equals NaN
    return (s.labels, struct.pack("<d", s.value), s.timestamp_ms)


def _same(a: list[Sample], b: list[Sample]) -> None:
    assert [_key(s) for s in a] == [_key(s) for s in b]


def per_line_reference(body: str) -> list[Sample] | int:
    """prometheus_client on each line alone: its samples, or the number of the first bad line."""
    out: list[Sample] = []
    for lineno, line in enumerate(body.split("\n")[:-1], 1):
        try:
            out.extend(parse_with_prometheus_client(line + "\n"))
        except (ValueError, IndexError, KeyError):
            return lineno
    return out


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.prom")))
def test_recorded_files_match_prometheus_client(name: str) -> None:
    body = (DATA / name).read_text()
    fast = parse_samples(body)
    assert fast, "recorded files are not empty"
    _same(fast, parse_with_prometheus_client(body))
    reference = per_line_reference(body)
    assert isinstance(reference, list)
    _same(fast, reference)


def test_odd_lines_take_the_fallback_and_aggregator_lines_do_not() -> None:
    odd = ExpositionParser(lambda labels: labels)
    odd.parse((DATA / "odd_lines.prom").read_text())
    assert odd.fallback_lines >= 10
    plain = ExpositionParser(lambda labels: labels)
    plain.parse((DATA / "aggregator_region.prom").read_text())
    assert plain.fallback_lines == 0


_META_LINE = re.compile(r"# (TYPE|HELP|UNIT) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?")


def reference_metadata(body: str) -> dict[str, MetricMetadata]:
    """What the comment lines say, read with a regex, as Prometheus reports it."""
    found: dict[str, dict[str, str]] = {}
    for line in body.split("\n"):
        if match := _META_LINE.fullmatch(line):
            kind, name, text = match.group(1), match.group(2), match.group(3) or ""
            if kind == "HELP":
                text = text.replace("\\\\", "\0").replace("\\n", "\n").replace("\0", "\\")
            key = {"TYPE": "type", "HELP": "help", "UNIT": "unit"}[kind]
            found.setdefault(name, {})[key] = "unknown" if text == "untyped" else text
    return {name: MetricMetadata(**fields) for name, fields in found.items()}


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.prom")))
def test_metadata_capture_leaves_samples_alone(name: str) -> None:
    body = (DATA / name).read_text()
    no_comments = "".join(line + "\n" for line in body.split("\n")[:-1] if line[:1] != "#")
    full = ExpositionParser(lambda labels: labels).parse(body)
    bare = ExpositionParser(lambda labels: labels).parse(no_comments)
    assert full.series == bare.series and full.timestamps == bare.timestamps
    assert [struct.pack("<d", v) for v in full.values] == [
        struct.pack("<d", v) for v in bare.values
    ]
    assert bare.metadata == {}
    assert full.metadata == reference_metadata(body)
    assert full.metadata  # every recorded body has HELP and TYPE lines


def test_metadata_of_every_client_library_type() -> None:
    parsed = ExpositionParser(lambda labels: labels).parse((DATA / "client_types.prom").read_text())
    assert parsed.metadata["http_requests_total"] == MetricMetadata(
        type="counter", help='Requests with "quotes" and \\ backslash\nnewline help.'
    )
    assert parsed.metadata["request_latency_seconds"].type == "histogram"
    assert parsed.metadata["batch_size_bytes"].type == "summary"
    # families are named as their TYPE lines name them, never by a series suffix
    assert not [n for n in parsed.metadata if n.endswith(("_bucket", "_count", "_sum"))]


def test_metadata_lines() -> None:
    parser = ExpositionParser(lambda labels: labels)
    body = (
        "# UNIT a seconds\n# TYPE a untyped\n# HELP a x\\\\y\\nz\\tq\n"
        "#  TYPE b gauge\n# HELP c\n# TYPE d counter\na 1\n"
    )
    parsed = parser.parse(body)
    assert parsed.metadata == {
        "a": MetricMetadata(type="unknown", help="x\\y\nz\\tq", unit="seconds"),
        "c": MetricMetadata(),
        "d": MetricMetadata(type="counter"),
    }
    assert parser.fallback_lines == 1  # `#  TYPE` (two spaces): left to the fallback, no metadata
    assert [s.name for s in parse_samples(body)] == ["a"]
    assert parser.parse("a 2\n").metadata == {}  # each body's own, nothing carried over


def test_counter_names_are_kept_as_exposed() -> None:
    # prometheus_client renames `foo` of a TYPE counter to `foo_total` (OpenMetrics); Prometheus
    # stores what was exposed, and so do we
    body = "# TYPE foo counter\nfoo 1\n"
    assert parse_samples(body)[0].name == "foo"
    assert parse_with_prometheus_client(body)[0].name == "foo_total"


def test_resolver_runs_once_per_series_and_cache_is_bounded() -> None:
    calls: list[object] = []
    parser = ExpositionParser(lambda labels: calls.append(labels) or len(calls), min_cache=4)
    body = 'a{x="1"} 1\na{x="2"} 2\nb 3\n'
    first = parser.parse(body)
    second = parser.parse(body.replace(" 1\n", " 10\n"))
    assert first.series == second.series == [1, 2, 3]
    assert second.values == [10.0, 2.0, 3.0]
    assert len(calls) == 3
    many = "".join(f'c{{i="{i}"}} {i}\n' for i in range(20))
    parser.parse(many)
    parser.parse(body)  # 23 cached entries for 3 samples: the cache is dropped after this
    assert len(calls) == 3 + 20
    parser.parse(body)
    assert len(calls) == 3 + 20 + 3


@pytest.mark.parametrize(
    ("body", "lineno", "text"),
    [
        ("<!DOCTYPE html>\n<html><body>hi</body></html>\n", 1, "'<!DOCTYPE html>'"),
        ('ok 1\ncut{le="0.5', 2, "'cut{le=\"0.5'"),
        ("ok 1\nok2 2\ngarbage here\n", 3, "'garbage here'"),
        ('m{a="x"} not_a_number\n', 1, "'m{a=\"x\"} not_a_number'"),
        ("m 1_000\n", 1, "'m 1_000'"),
        ('m{a="1",a="2"} 1\n', 1, '\'m{a="1",a="2"} 1\''),
        ("# TYPE m\n", 1, "'# TYPE m'"),
        ("# TYPE m nonsense\n", 1, "'# TYPE m nonsense'"),
    ],
)
def test_malformed_bodies_name_line_and_text(body: str, lineno: int, text: str) -> None:
    with pytest.raises(ScrapeError) as err:
        parse_samples(body)
    assert str(err.value).startswith(f"line {lineno}: ")
    assert text in str(err.value)


def test_long_garbage_is_shortened_in_the_message() -> None:
    with pytest.raises(ScrapeError) as err:
        parse_samples("<html>" + "x" * 5000 + "\n")
    assert len(str(err.value)) < 700


# -- random bodies ---------------------------------------------------------------------------

_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
_label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True)
_label_values = st.text(
    st.one_of(
        st.sampled_from('"\\\n{},= \t#'),
        st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r"),
    ),
    max_size=10,
)
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(
        ["NaN", "nan", "+Inf", "-Inf", "Inf", "inf", "-0", "+0", "-0.0", "1e3", "1E-3", ".5", "5."]
    ),
)
_timestamps = st.one_of(st.none(), st.integers(-(2**44), 2**44))
_spaces = st.sampled_from([" "] * 8 + ["  ", "\t", " \t"])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@st.composite
def _sample_line(draw: st.DrawFn) -> str:
    name = draw(_names)
    pairs = draw(st.dictionaries(_label_names, _label_values, max_size=4))
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    if draw(st.booleans()) and pairs:
        text += ","
    labels = f"{{{text}}}" if pairs or draw(st.booleans()) else ""
    line = f"{name}{labels}{draw(_spaces)}{draw(_values)}"
    ts = draw(_timestamps)
    return line if ts is None else f"{line} {ts}"


_comment = st.one_of(
    st.builds(
        lambda n, t: f"# TYPE {n} {t}",
        _names,
        st.sampled_from(["gauge", "untyped", "histogram", "summary"]),
    ),
    st.builds(lambda n, h: f"# HELP {n} {_escape(h)}", _names, _label_values),
    st.just("# just a comment"),
    st.just(""),
)
_garbage = st.sampled_from(["<html>", "}", 'x{a="1"', "x{a=1} 2", "1 2", "x y", 'x{a="b"} 1 2 3 4'])


@st.composite
def _body(draw: st.DrawFn, garbage: bool) -> str:
    choices = [_sample_line(), _sample_line(), _comment] + ([_garbage] if garbage else [])
    lines = draw(st.lists(st.one_of(*choices), max_size=12))
    return "".join(line + "\n" for line in lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_body(garbage=False))
def test_random_valid_bodies_match_prometheus_client(body: str) -> None:
    _same(parse_samples(body), parse_with_prometheus_client(body))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_body(garbage=True))
def test_random_bodies_match_per_line_reference_incl_errors(body: str) -> None:
    reference = per_line_reference(body)
    if isinstance(reference, int):
        with pytest.raises(ScrapeError, match=f"^line {reference}: "):
            parse_samples(body)
    else:
        _same(parse_samples(body), reference)


@settings(max_examples=100, deadline=None)
@given(st.lists(_sample_line(), min_size=1, max_size=8))
def test_cached_second_parse_equals_first(lines: list[str]) -> None:
    body = "".join(line + "\n" for line in lines)
    parser = ExpositionParser(lambda labels: labels)
    try:
        first = parser.parse(body)
    except ScrapeError:
        return
    second = parser.parse(body)
    assert first.series == second.series
    assert [struct.pack("<d", v) for v in first.values] == [
        struct.pack("<d", v) for v in second.values
    ]
    assert first.timestamps == second.timestamps
