"""Small stand-ins for the store, the PromQL engine and the scrape manager, so the API is
tested on its own: a bare selector is answered from the fake store with a 5-minute lookback;
a handful of magic expressions raise the engine's errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import promql_parser
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from controlplane.api.params import parse_selector
from controlplane.api.targets import TargetState
from controlplane.errors import EvalError, ParseError, QueryTimeout
from controlplane.model.series import Labels, Matcher, Series, SeriesBatch, labels_from
from controlplane.promql.results import InstantSample, QueryResult, ResultType
from tests.conftest import free_port

LOOKBACK_MS = 300_000


def series(labels: dict[str, str], points: Sequence[tuple[int, float]]) -> Series:
    return Series(
        labels=labels_from(labels),
        timestamps=np.array([t for t, _ in points], dtype=np.int64),
        values=np.array([v for _, v in points], dtype=np.float64),
    )


class FakeSource:
    def __init__(self, items: Sequence[Series]) -> None:
        self.items = list(items)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        out = []
        for s in self.items:
            labels = dict(s.labels)
            if not all(m.matches(labels.get(m.name, "")) for m in matchers):
                continue
            keep = (s.timestamps >= start_ms) & (s.timestamps <= end_ms)
            if keep.any():
                out.append(
                    Series(labels=s.labels, timestamps=s.timestamps[keep], values=s.values[keep])
                )
        return sorted(out, key=lambda s: s.labels)

    def select_batch(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesBatch:
        return SeriesBatch.from_series(self.select(matchers, start_ms, end_ms))

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        return sorted({k for s in self.select(matchers, start_ms, end_ms) for k, _ in s.labels})

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        found = self.select(matchers, start_ms, end_ms)
        return sorted({dict(s.labels)[name] for s in found if name in dict(s.labels)})


class FakeQuerier:
    """Selectors only; `error_exec`, `error_timeout`, `"text"`, `42` and `warn` are special."""

    def __init__(self, source: FakeSource) -> None:
        self.source = source
        self.calls: list[tuple[object, ...]] = []
        self.timeout_s: float | None = None

    def with_timeout(self, timeout_s: float) -> FakeQuerier:
        clone = FakeQuerier(self.source)
        clone.calls = self.calls
        clone.timeout_s = timeout_s
        return clone

    def _check(self, expr: str) -> None:
        if expr == "error_exec":
            raise EvalError("found duplicate series for the match group")
        if expr == "error_timeout":
            raise QueryTimeout("query timed out in expression evaluation")
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            raise ParseError(f"1:{len(expr) + 1}: parse error: {exc}") from None

    def _at(self, expr: str, t_ms: int) -> list[InstantSample]:
        samples = []
        for matchers in parse_selector(expr):
            for s in self.source.select(matchers, t_ms - LOOKBACK_MS + 1, t_ms):
                samples.append(InstantSample(labels=s.labels, t_ms=t_ms, value=s.values[-1]))
        return samples

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        self.calls.append(("instant", expr, time_ms, self.timeout_s))
        self._check(expr)
        if expr.startswith('"'):
            return QueryResult(type=ResultType.STRING, text=expr.strip('"'), t_ms=time_ms)
        if expr[0].isdigit():
            scalar = InstantSample(labels=(), t_ms=time_ms, value=float(expr))
            return QueryResult(type=ResultType.SCALAR, scalar=scalar, t_ms=time_ms)
        warnings = ("a warning",) if expr == "warn" else ()
        vector = tuple(self._at("up" if warnings else expr, time_ms))
        return QueryResult(type=ResultType.VECTOR, vector=vector, warnings=warnings)

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        self.calls.append(("range", expr, start_ms, end_ms, step_ms, self.timeout_s))
        self._check(expr)
        points: dict[Labels, list[tuple[int, float]]] = {}
        for t in range(start_ms, end_ms + 1, step_ms):
            for sample in self._at(expr, t):
                points.setdefault(sample.labels, []).append((t, sample.value))
        matrix = tuple(series(dict(labels), pts) for labels, pts in sorted(points.items()))
        return QueryResult(type=ResultType.MATRIX, matrix=matrix)


class FakeTargets:
    def __init__(self, items: Sequence[TargetState]) -> None:
        self.items = list(items)

    def statuses(self) -> Sequence[TargetState]:
        return self.items


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.temperature = Gauge("demo_temperature", "T.", ["room"], registry=self.registry)
        self.temperature.labels("x").set(21.5)
        Counter("demo_requests", "R.", ["route"], registry=self.registry).labels("a").inc(3)
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout}s")
