"""Where each SLO stands, for the overview and the SLO pages: the status read model
(`controlplane.slo.status`) plus what an on-call engineer asks next: is it burning, how much
budget is left in events, when does it run out, and how did it get here.

Burn rates per window are the window's error ratio over the error budget; each multiwindow
alert condition (`BURN_ALERTS`: 14.4x over 1h and 5m, 6x over 6h and 30m, 3x over 1d and 2h,
1x over 3d and 6h for a 30-day window) is breached when both its windows are over the factor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import promql_parser

from controlplane.promql.results import Querier, ResultType
from controlplane.rules.alerting import Alert
from controlplane.slo import SLO
from controlplane.slo.generate import BURN_ALERTS, SLI_WINDOWS
from controlplane.slo.status import InstanceStatus, slo_status
from dashboards import queries
from dashboards.activity import AlertRow, alert_rows, attempt
from dashboards.reads import ReadModels
from dashboards.view import Window

BADGE_WINDOWS = ("5m", "1h", "6h", "1d", "3d")


class Health(StrEnum):
    BURNING = "burning"  # a page-severity burn condition holds
    EXHAUSTED = "exhausted"  # no budget left over the window
    WARNING = "warning"  # a ticket-severity condition holds, or under a quarter left
    OK = "ok"
    NO_DATA = "no data"

    @property
    def rank(self) -> int:
        return list(Health).index(self)


@dataclass(frozen=True, kw_only=True)
class BurnPair:
    severity: str
    factor: float
    long: str
    short: str
    long_rate: float | None
    short_rate: float | None

    @property
    def breached(self) -> bool:
        return all(r is not None and r > self.factor for r in (self.long_rate, self.short_rate))


@dataclass(frozen=True, kw_only=True)
class SLORow:
    """One SLI instance of one SLO (a region of a per-region SLO)."""

    slo: SLO
    labels: Mapping[str, str]
    status: InstanceStatus | None  # None: nothing recorded yet
    health: Health
    burn: Mapping[str, float | None]  # window -> burn rate
    pairs: tuple[BurnPair, ...]

    @property
    def budget_remaining(self) -> float | None:
        """As recorded; derived from the window's error ratio (the same formula) while the
        recording rule has not run yet."""
        return None if self.status is None else budget_left(self.slo, self.status)

    @property
    def availability(self) -> float | None:
        if self.status is None:
            return None
        ratio = self.status.error_ratio.get(window_text(self.slo))
        return None if ratio is None or not math.isfinite(ratio) else 1 - ratio

    def burn_threshold(self, window: str) -> tuple[float, str] | None:
        """The lowest factor, and its severity, of the conditions that use `window`."""
        uses = [(p.factor, p.severity) for p in self.pairs if window in (p.long, p.short)]
        return min(uses) if uses else None


def window_text(slo: SLO) -> str:
    return promql_parser.display_duration(slo.window)


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def budget_left(slo: SLO, status: InstanceStatus) -> float | None:
    recorded = finite(status.budget_remaining)
    if recorded is not None:
        return recorded
    ratio = finite(status.error_ratio.get(window_text(slo)))
    return None if ratio is None else 1 - ratio / slo.error_budget


def burn_rates(slo: SLO, status: InstanceStatus) -> dict[str, float | None]:
    return {
        w: (None if (r := finite(status.error_ratio.get(w))) is None else r / slo.error_budget)
        for w in SLI_WINDOWS
    }


def burn_pairs(slo: SLO, burn: Mapping[str, float | None]) -> tuple[BurnPair, ...]:
    return tuple(
        BurnPair(
            severity=b.severity,
            factor=b.factor(slo.window),
            long=b.long,
            short=b.short,
            long_rate=burn.get(b.long),
            short_rate=burn.get(b.short),
        )
        for b in BURN_ALERTS
    )


def health(
    status: InstanceStatus | None, pairs: Sequence[BurnPair], remaining: float | None
) -> Health:
    if status is None:
        return Health.NO_DATA
    firing = {a.severity for a in status.alerts if a.state == "firing"}
    breached = {p.severity for p in pairs if p.breached}
    if "page" in firing | breached:
        return Health.BURNING
    if remaining is not None and remaining <= 0:
        return Health.EXHAUSTED
    if firing or breached or (remaining is not None and remaining < 0.25):
        return Health.WARNING
    return Health.OK


def rows_of(slo: SLO, instances: Sequence[InstanceStatus]) -> list[SLORow]:
    if not instances:
        return [SLORow(slo=slo, labels={}, status=None, health=Health.NO_DATA, burn={}, pairs=())]
    rows = []
    for status in instances:
        burn = burn_rates(slo, status)
        pairs = burn_pairs(slo, burn)
        rows.append(
            SLORow(
                slo=slo,
                labels=dict(status.labels),
                status=status,
                health=health(status, pairs, budget_left(slo, status)),
                burn=burn,
                pairs=pairs,
            )
        )
    return rows


def by_urgency(rows: Sequence[SLORow]) -> list[SLORow]:
    """The least budget left first; rows without data last."""

    def key(row: SLORow) -> tuple[bool, float, int, str]:
        left = row.budget_remaining
        return (left is None, left if left is not None else 0.0, row.health.rank, row.slo.id)

    return sorted(rows, key=key)


def slo_rows(reads: ReadModels, at_ms: int) -> tuple[list[SLORow], str | None]:
    def read() -> list[SLORow]:
        alerts = reads.alerts()
        rows = [
            row
            for slo in reads.slos
            for row in rows_of(slo, slo_status(slo, reads.querier, alerts, time_ms=at_ms).instances)
        ]
        return by_urgency(rows)

    return attempt(read, [], "the SLO series")


def exhaustion_s(remaining: float | None, burn: float | None, window_s: float) -> float | None:
    """Seconds until the budget runs out if the burn rate holds; inf: not at this rate; 0: out.

    Over a rolling window the old errors leave as new ones come: at a steady burn `b` the share
    left moves linearly from `remaining` to `1 - b` over one window, so it reaches 0 only when
    b > 1, after remaining * window / (remaining + b - 1)."""
    if remaining is None or burn is None:
        return None
    if remaining <= 0:
        return 0.0
    if burn <= 1:
        return math.inf
    return remaining * window_s / (remaining + burn - 1)


@dataclass(frozen=True, kw_only=True)
class Line:
    name: str
    t_ms: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class SLODetail:
    slo: SLO
    rows: tuple[SLORow, ...]  # every instance
    selected: SLORow | None
    events: float | None  # events over the window, for the selected instance
    sli: Line | None  # availability over the view's window
    budget: Line | None  # budget remaining over the view's window
    alerts: tuple[AlertRow, ...]
    window: Window
    problems: tuple[str, ...] = ()

    @property
    def bad_events_left(self) -> float | None:
        row = self.selected
        if row is None or self.events is None or row.budget_remaining is None:
            return None
        return row.budget_remaining * self.slo.error_budget * self.events

    @property
    def exhaustion_s(self) -> float | None:
        row = self.selected
        if row is None:
            return None
        burn = row.burn.get("1h")
        burn = burn if burn is not None else row.burn.get("5m")
        return exhaustion_s(row.budget_remaining, burn, self.slo.window.total_seconds())


def choose(rows: Sequence[SLORow], wanted: Mapping[str, str]) -> SLORow | None:
    """The row whose labels match `wanted` (the first when nothing does)."""
    for row in rows:
        if row.status is not None and all(row.labels.get(k) == v for k, v in wanted.items()):
            return row
    return next((r for r in rows if r.status is not None), None)


def slo_detail(reads: ReadModels, slo: SLO, wanted: Mapping[str, str], window: Window) -> SLODetail:
    none: Sequence[Alert] = ()
    alerts, alert_problem = attempt(reads.alerts, none, "alerts")

    def instances() -> list[SLORow]:
        status = slo_status(slo, reads.querier, alerts, time_ms=window.end_ms)
        return rows_of(slo, status.instances)

    no_rows: list[SLORow] = []
    rows, problem = attempt(instances, no_rows, "the SLO series")
    selected = choose(rows, wanted)
    labels = dict(selected.labels) if selected is not None else {}
    events, events_problem = attempt(
        lambda: events_in_window(reads.querier, slo, labels, window.end_ms), None, "the events"
    )
    sli, sli_problem = attempt(
        lambda: line(reads.querier, queries.availability(slo, labels, window.step_ms), window),
        None,
        "the SLI",
    )
    budget, budget_problem = attempt(
        lambda: line(reads.querier, queries.budget_remaining(slo, labels), window),
        None,
        "the error budget",
    )
    problems = (alert_problem, problem, events_problem, sli_problem, budget_problem)
    return SLODetail(
        slo=slo,
        rows=tuple(rows),
        selected=selected,
        events=events,
        sli=sli if selected is not None else None,
        budget=budget if selected is not None else None,
        alerts=tuple(r for r in alert_rows(alerts) if r.slo_id == slo.id),
        window=window,
        problems=tuple(p for p in problems if p),
    )


def events_in_window(
    querier: Querier, slo: SLO, labels: Mapping[str, str], at_ms: int
) -> float | None:
    expr = queries.events_in_window(slo)
    if expr is None:
        return None
    result = querier.instant(expr, at_ms)
    if result.type is not ResultType.VECTOR:
        return None
    for sample in result.vector:
        found = dict(sample.labels)
        if all(found.get(k, "") == v for k, v in labels.items()):
            return sample.value
    return None


def data_since(querier: Querier, expr: str, window: Window) -> int | None:
    """When `expr` first has data in the window (ms, to one step), or None: what the store
    still keeps (the embedded store's long-term tier, a remote's own retention), so that a
    page can say that data before then is not there. One instant query over one series:
    the earliest sample time of a subquery at the window's step."""
    span_s, step_s = max(1, window.span_ms // 1000), max(1, window.step_ms // 1000)
    query = f"min_over_time(timestamp({expr})[{span_s}s:{step_s}s])"
    result = querier.instant(query, window.end_ms)
    if result.type is not ResultType.VECTOR or not result.vector:
        return None
    return round(min(sample.value for sample in result.vector) * 1000)


def line(querier: Querier, expr: str, window: Window) -> Line | None:
    """The first series of a range query (the selectors pick one instance), or None."""
    result = querier.range(expr, window.start_ms, window.end_ms, window.step_ms)
    if result.type is not ResultType.MATRIX or not result.matrix:
        return None
    series = result.matrix[0]
    return Line(
        name=expr,
        t_ms=tuple(int(t) for t in series.timestamps.tolist()),
        values=tuple(float(v) for v in series.values.tolist()),
    )
