"""Query results, and the one interface both query backends implement.

The embedded PromQL engine and a remote Prometheus-compatible API (Prometheus, Thanos, Mimir)
both answer a `Querier`; rules, the HTTP API, the CLI and the dashboards only see this.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from controlplane.model.series import Labels, Series


class ResultType(StrEnum):
    VECTOR = "vector"
    MATRIX = "matrix"
    SCALAR = "scalar"
    STRING = "string"


@dataclass(frozen=True, kw_only=True)
class InstantSample:
    labels: Labels
    t_ms: int
    value: float


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """`vector`: list of InstantSample; `matrix`: list of Series (no staleness markers);
    `scalar`: one InstantSample with empty labels; `string`: `text` at `t_ms`."""

    type: ResultType
    vector: tuple[InstantSample, ...] = ()
    matrix: tuple[Series, ...] = ()
    scalar: InstantSample | None = None
    text: str = ""
    t_ms: int = 0
    warnings: tuple[str, ...] = ()


class Querier(Protocol):
    def instant(self, expr: str, time_ms: int) -> QueryResult: ...

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult: ...
