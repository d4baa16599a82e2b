"""The error budget an incident burnt: each SLO instance's share of its window's budget left
(`slo:period_error_budget_remaining:ratio`, as the generated rules record it) at the incident's
start and at its end. An incident may burn many times a window's budget: the share left goes
negative, and what it lost is more than 100%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controlplane.model.series import Series
from controlplane.promql.results import QueryResult, ResultType
from controlplane.slo import SLO
from dashboards import queries
from dashboards.reads import ReadModels
from dashboards.slos import Line, finite
from dashboards.view import Window

SPENT = 0.0005  # a share of budget lost below this is rounding, not the incident's doing


def matrix(result: QueryResult) -> tuple[Series, ...]:
    return result.matrix if result.type is ResultType.MATRIX else ()


@dataclass(frozen=True, kw_only=True)
class Budget:
    """One SLO instance's budget left over a time range."""

    slo: SLO
    labels: Mapping[str, str]  # the instance: the SLO's `by` labels
    line: Line


@dataclass(frozen=True, kw_only=True)
class BudgetUse:
    slo: SLO
    labels: Mapping[str, str]
    before: float | None  # share of the window's budget left when the incident started
    after: float | None  # and when it ended (now, while ongoing)

    @property
    def consumed(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.before - self.after


def budgets(reads: ReadModels, window: Window) -> list[Budget]:
    result = reads.querier.range(
        queries.budgets_remaining(), window.start_ms, window.end_ms, window.step_ms
    )
    out = []
    for series in matrix(result):
        labels = dict(series.labels)
        slo = reads.slo(labels.get("slo_id", ""))
        if slo is None:
            continue
        line = Line(
            name=slo.id,
            t_ms=tuple(int(t) for t in series.timestamps.tolist()),
            values=tuple(float(v) for v in series.values.tolist()),
        )
        out.append(Budget(slo=slo, labels={k: labels.get(k, "") for k in slo.by}, line=line))
    return out


def value_at(line: Line, t_ms: int) -> float | None:
    """The line's last finite value at or before `t_ms`, else its first after."""
    points = [(t, v) for t, v in zip(line.t_ms, line.values, strict=True) if finite(v) is not None]
    before = [v for t, v in points if t <= t_ms]
    if before:
        return before[-1]
    return points[0][1] if points else None


def budget_uses(found: Sequence[Budget], start_ms: int, end_ms: int) -> list[BudgetUse]:
    """What each SLO instance lost between the two times, the most first."""
    uses = [
        BudgetUse(
            slo=b.slo,
            labels=b.labels,
            before=value_at(b.line, start_ms),
            after=value_at(b.line, end_ms),
        )
        for b in found
    ]

    def most(use: BudgetUse) -> tuple[float, str]:
        spent = use.consumed
        return (-(spent if spent is not None and math.isfinite(spent) else -math.inf), use.slo.id)

    return sorted(uses, key=most)
