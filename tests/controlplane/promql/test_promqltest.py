"""Conformance: Prometheus's own promqltest files (tests/promqltest/) run against our Engine.

One pytest case per eval command, named file:line. Instant evaluations are also re-run as a
range query around the same time and compared at that step, as upstream does. Expectations on
warn/info annotations are not checked (treated as passing). Everything skipped is listed, with
its reason, in SKIPS below; cases touching native histograms are found automatically.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import promql_parser as pp
import pytest

from controlplane.errors import QueryError
from controlplane.model.series import METRIC_NAME, Labels, Series, SeriesSource, is_stale_marker
from controlplane.promql import Engine, MemorySource
from controlplane.promql.parse import selector_matchers
from controlplane.promql.results import QueryResult, ResultType
from tests.controlplane.promql.promqltest_format import (
    Clear,
    Eval,
    Histogram,
    Load,
    LoadedSeries,
    parse_file,
)

DATA = Path(__file__).resolve().parents[2] / "promqltest"
EPSILON = 1e-6
NATIVE = "native histograms are not stored by this control plane"
# Every skip, with its reason. Keys: a rule name (applied automatically by the runner),
# a file name (the whole file) or "file:line" (one eval).
SKIPS: dict[str, str] = {
    "native-histogram-only": f"a selector of the query matches only native histograms: {NATIVE}",
    "native-histogram-result": f"the expected result holds native histograms: {NATIVE}",
    # Float results that depend on native histogram samples stored next to the floats.
    **dict.fromkeys(
        [f"aggregators.test:{n}" for n in (447, 453, 459, 467, 474)],
        "count_values also counts the native histogram samples of version{instance=2|3}",
    ),
    "aggregators.test:573": "group() also reports the series holding a native histogram",
    **dict.fromkeys(
        ["functions.test:47", "functions.test:52", "functions.test:92", "functions.test:97"],
        "resets()/changes() count transitions between floats and native histograms",
    ),
    "functions.test:264": "irate() drops a series whose last two samples mix float and histogram",
    "functions.test:300": "delta() drops a series mixing floats and native histograms",
    "functions.test:347": "idelta() drops a series mixing floats and native histograms",
    "functions.test:551": "timestamp() picks the native histogram sample at 20s",
    **dict.fromkeys(
        [f"functions.test:{n}" for n in (660, 663, 666, 2020)],
        "native histogram samples at 0, 4m and 5m hide older floats from the lookback",
    ),
    **dict.fromkeys(
        ["functions.test:1061", "functions.test:1065"],
        "sum/avg_over_time return nothing for a range mixing floats and native histograms",
    ),
    "functions.test:1649": "count_over_time also counts native histogram samples",
    **dict.fromkeys(
        [f"histograms.test:{n}" for n in (1158, 1163, 1168, 1223, 1228, 1233)],
        "a native histogram with the classic buckets' labels makes Prometheus return nothing",
    ),
}
# Queries using these functions cannot be compared across a different query range.
QUERY_CONTEXT = re.compile(r"(start|end|range|step)\(\)")


@dataclass(frozen=True, kw_only=True)
class Case:
    file: str
    cmd: Eval
    state: int  # index of the data state (loads since the last clear) the eval runs against

    @property
    def id(self) -> str:
        return f"{self.file}:{self.cmd.line}"


@dataclass(kw_only=True)
class State:
    floats: dict[Labels, dict[int, float]]
    histograms: set[Labels]


@cache
def _file(name: str) -> tuple[list[Case], list[State]]:
    cases: list[Case] = []
    states = [State(floats={}, histograms=set())]
    current = states[0]
    for cmd in parse_file(DATA / name):
        if isinstance(cmd, Clear):
            current = State(floats={}, histograms=set())
            states.append(current)
        elif isinstance(cmd, Load):
            current = _after_load(current, cmd)
            states.append(current)
        else:
            cases.append(Case(file=name, cmd=cmd, state=len(states) - 1))
    return cases, states


def _after_load(state: State, load: Load) -> State:
    floats = {lb: dict(points) for lb, points in state.floats.items()}
    histograms = set(state.histograms)
    for series in load.series:
        points = floats.setdefault(series.labels, {})
        for i, value in enumerate(series.values):
            if isinstance(value, Histogram):
                histograms.add(series.labels)
            elif value is not None:
                points[i * load.step_ms] = value
        if load.with_nhcb:
            histograms |= _nhcb_series(series.labels)
    return State(floats={lb: p for lb, p in floats.items() if p}, histograms=histograms)


def _nhcb_series(labels: Labels) -> set[Labels]:
    """load_with_nhcb also stores classic histograms as native ones under the base name."""
    name = dict(labels).get(METRIC_NAME, "")
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            base = name.removesuffix(suffix)
            rest = tuple(p for p in labels if p[0] not in (METRIC_NAME, "le"))
            return {tuple(sorted((*rest, (METRIC_NAME, base))))}
    return set()


@cache
def _engine(name: str, state: int) -> tuple[Engine, MemorySource]:
    data = _file(name)[1][state]
    series = [
        Series(
            labels=lb,
            timestamps=np.asarray(sorted(points), dtype=np.int64),
            values=np.asarray([points[t] for t in sorted(points)], dtype=np.float64),
        )
        for lb, points in data.floats.items()
    ]
    marker = np.zeros(1, dtype=np.int64)
    hist = [Series(labels=lb, timestamps=marker, values=np.zeros(1)) for lb in data.histograms]
    return Engine(MemorySource(series)), MemorySource(hist)


def all_cases() -> list[Case]:
    names = sorted(p.name for p in DATA.glob("*.test"))
    return [case for name in names for case in _file(name)[0]]


def skip_reason(case: Case) -> str | None:
    for key in (case.file, case.id):
        if key in SKIPS:
            return SKIPS[key]
    if case.cmd.has_histograms:
        return SKIPS["native-histogram-result"]
    engine, histograms = _engine(case.file, case.state)
    if len(histograms) and _histograms_only(case.cmd.expr, engine.source, histograms):
        return SKIPS["native-histogram-only"]
    return None


def _histograms_only(expr: str, floats: SeriesSource, histograms: MemorySource) -> bool:
    """True if some selector finds native histogram series and no series with floats."""
    found = False

    def visit(node: object) -> None:
        nonlocal found
        if isinstance(node, pp.VectorSelector):
            for matchers in selector_matchers(node):
                everything = (-(2**62), 2**62)
                if histograms.select(matchers, *everything) and not floats.select(
                    matchers, *everything
                ):
                    found = True

    pp.walk(pp.parse(expr), visit)
    return found


def run(case: Case) -> None:
    """Raise AssertionError when our result differs from the expectation."""
    cmd = case.cmd
    engine, _ = _engine(case.file, case.state)
    try:
        if cmd.instant:
            result = engine.instant(cmd.expr, cmd.end_ms)
        else:
            result = engine.range(cmd.expr, cmd.start_ms, cmd.end_ms, cmd.step_ms)
    except QueryError as exc:
        if not cmd.fail:
            raise AssertionError(f"unexpected error: {exc}") from exc
        _check_failure(cmd, str(exc))
        return
    assert not cmd.fail, f"expected an error, got {result.type}"
    _compare(cmd, result)
    plain = not (cmd.range_vector or cmd.expect_string is not None)
    if cmd.instant and plain and not QUERY_CONTEXT.search(cmd.expr):
        _compare_range_mode(engine, cmd, result)


def _check_failure(cmd: Eval, message: str) -> None:
    if cmd.fail_message is not None:
        assert message == cmd.fail_message, f"error {message!r} != {cmd.fail_message!r}"
    if cmd.fail_regex is not None:
        assert re.search(cmd.fail_regex, message), f"error {message!r} !~ {cmd.fail_regex!r}"


def _compare(cmd: Eval, result: QueryResult) -> None:
    if cmd.expect_string is not None:
        assert result.type is ResultType.STRING and result.text == cmd.expect_string, result
    elif cmd.expect_scalar is not None:
        assert result.type is ResultType.SCALAR and result.scalar is not None, result.type
        assert almost_equal(result.scalar.value, cmd.expect_scalar), result.scalar.value
    elif result.type is ResultType.MATRIX:
        _compare_matrix(cmd, result)
    else:
        assert result.type is ResultType.VECTOR, f"expected a vector, got {result.type}"
        got = [(s.labels, s.value) for s in result.vector]
        _compare_vector(cmd, got)


def _compare_vector(cmd: Eval, got: list[tuple[Labels, float]]) -> None:
    expected = {s.labels: (pos, s.values[0]) for pos, s in enumerate(cmd.expected)}
    labels = [lb for lb, _ in got]
    assert len(set(labels)) == len(labels), f"duplicate series in {got}"
    assert set(labels) == set(expected), f"series differ: got {labels}, want {list(expected)}"
    for pos, (lb, value) in enumerate(got):
        want_pos, want = expected[lb]
        assert isinstance(want, float), f"{lb}: expected {want!r}"
        assert almost_equal(value, want), f"{lb}: got {value}, want {want}"
        if cmd.ordered:
            assert pos == want_pos, f"{lb} at position {pos}, want {want_pos}"


def _compare_matrix(cmd: Eval, result: QueryResult) -> None:
    assert not cmd.ordered, "expected an ordered vector, got a matrix"
    assert cmd.expect_scalar is None, "expected a scalar, got a matrix"
    got = {s.labels: s for s in result.matrix}
    assert [s.labels for s in result.matrix] == sorted(got), "matrix is not sorted by labels"
    want = {s.labels: s for s in cmd.expected}
    assert set(got) == set(want), f"series differ: got {list(got)}, want {list(want)}"
    for lb, series in got.items():
        points = list(_expected_points(cmd, want[lb]))
        actual = list(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))
        assert len(actual) == len(points), f"{lb}: got {actual}, want {points}"
        for (t, v), (wt, wv) in zip(actual, points, strict=True):
            assert t == wt and almost_equal(v, wv), f"{lb}: got {actual}, want {points}"


def _expected_points(cmd: Eval, series: LoadedSeries) -> Iterator[tuple[int, float]]:
    for i, value in enumerate(series.values):
        t = cmd.start_ms + i * cmd.step_ms
        assert t <= cmd.end_ms, f"{len(series.values)} points do not fit the query range"
        if isinstance(value, float):
            yield t, value


def _compare_range_mode(engine: Engine, cmd: Eval, instant: QueryResult) -> None:
    t = cmd.end_ms
    result = engine.range(cmd.expr, t - 60_000, t + 60_000, 60_000)
    if cmd.ordered:
        return
    got = []
    for s in result.matrix:
        at = np.flatnonzero(s.timestamps == t)
        if len(at):
            got.append((s.labels, float(s.values[at[0]])))
    if instant.type is ResultType.SCALAR:
        assert got, "range mode returned nothing for a scalar"
        assert cmd.expect_scalar is not None and almost_equal(got[0][1], cmd.expect_scalar)
    else:
        _compare_vector(cmd, got)


def almost_equal(a: float, b: float, epsilon: float = EPSILON) -> bool:
    """util/almost.Equal: both NaN (or both stale) are equal; otherwise relative tolerance."""
    if is_stale_marker(a) or is_stale_marker(b):
        return is_stale_marker(a) and is_stale_marker(b)
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    tiny = np.finfo(np.float64).tiny
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < tiny:
        return diff < epsilon * tiny
    return bool(diff / min(abs_sum, np.finfo(np.float64).max) < epsilon)


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_promqltest(case: Case) -> None:
    reason = skip_reason(case)
    if reason is not None:
        pytest.skip(reason)
    run(case)
