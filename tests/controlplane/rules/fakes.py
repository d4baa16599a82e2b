"""Small fakes for the rules tests: a scripted Querier and a list sink."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controlplane.errors import QueryTimeout
from controlplane.model.series import Labels
from controlplane.promql.results import InstantSample, QueryResult, ResultType

Answer = Callable[[int], list[tuple[Mapping[str, str], float]]]


@dataclass
class ScriptedQuerier:
    """Answers each expression with a function of the time; unknown expressions time out."""

    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        self.calls.append((expr, time_ms))
        answer = self.answers.get(expr)
        if answer is None:
            raise QueryTimeout(f"query timed out in expression evaluation: {expr!r}")
        vector = tuple(
            InstantSample(labels=tuple(sorted(labels.items())), t_ms=time_ms, value=value)
            for labels, value in answer(time_ms)
        )
        return QueryResult(type=ResultType.VECTOR, vector=vector, t_ms=time_ms)

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        raise NotImplementedError


@dataclass
class ListSink:
    samples: list[tuple[Labels, int, float]] = field(default_factory=list)

    def append(self, labels: Labels, t_ms: int, value: float) -> None:
        self.samples.append((labels, t_ms, value))

    def named(self, name: str) -> list[tuple[dict[str, str], int, float]]:
        return [(dict(lb), t, v) for lb, t, v in self.samples if dict(lb)["__name__"] == name]
