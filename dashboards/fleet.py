"""Providers, the wallet and the regions, for their pages: each data function runs the PromQL
of `queries.py` through the querier (never the store, so the same pages read a remote
Prometheus) and shapes the answer for one figure or table. Like activity.py and slos.py they
return `(data, problem)`: a querier that cannot answer becomes a problem text in the panel.

States are small integer codes (`BREAKER`, `ROUTING`, `REGION`: the code is the index), so
that a state over time is a grid of numbers a heatmap can colour.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from controlplane.promql.results import Querier, ResultType
from controlplane.rules.alerting import Alert
from controlplane.slo.status import slo_status
from dashboards import queries, slos
from dashboards.activity import attempt
from dashboards.reads import ReadModels
from dashboards.slos import SLORow
from dashboards.view import Window

BREAKER = ("closed", "open", "half-open")  # casino_circuit_breaker_state's values
ROUTING = ("serving", "canary", "isolated")
REGION = ("up", "drained", "down")
WALLET_SERVICE = "wallet"  # the `service` of rules/slo/wallet.yaml
FAILOVER_KINDS = ("breaker_open", "provider_failover", "region_failover")

Key = tuple[str, ...]
Cell = tuple[float | None, str]  # a state's code and its words


@dataclass(frozen=True, kw_only=True)
class Curve:
    """One series of a range query: its labels and its points."""

    labels: Mapping[str, str]
    t_ms: tuple[int, ...]
    values: tuple[float, ...]

    def name(self, *keys: str) -> str:
        return " ".join(self.labels.get(k, "") for k in keys if self.labels.get(k)).strip()


@dataclass(frozen=True, kw_only=True)
class Grid:
    """Rows (providers, regions) over every step of the window; None where nothing was
    reported (no traffic, not exported). `notes`: words for each cell, for the hover."""

    title: str  # the region of a per-region grid; "" when a grid stands alone
    rows: tuple[str, ...]
    t_ms: tuple[int, ...]
    cells: tuple[tuple[float | None, ...], ...]
    notes: tuple[tuple[str, ...], ...] = ()

    def row(self, name: str) -> tuple[float | None, ...]:
        return self.cells[self.rows.index(name)]


Curves = tuple[list[Curve], str | None]  # what a data function returns: data, problem
Grids = tuple[list[Grid], str | None]


@dataclass(frozen=True, kw_only=True)
class ProviderNow:
    region: str
    provider: str
    p99_s: float | None
    error_ratio: float | None
    breaker: int | None  # an index of BREAKER
    isolated: bool | None
    canary_percent: float | None

    @property
    def urgency(self) -> tuple[int, float, str, str]:
        """Isolated or breaker not closed first, then the most failing, then by name."""
        held = bool(self.isolated) or bool(self.breaker)
        return (0 if held else 1, -(self.error_ratio or 0.0), self.region, self.provider)


@dataclass(frozen=True, kw_only=True)
class FailoverCount:
    region: str
    kind: str
    count: float


@dataclass(frozen=True, kw_only=True)
class WalletBudget:
    rows: tuple[SLORow, ...]  # the wallet SLOs' instances, least budget left first
    budget: tuple[Curve, ...]  # share of budget left over the window, per SLO and region


# -- shaping, pure --------------------------------------------------------------------------


def steps(window: Window) -> tuple[int, ...]:
    return tuple(range(window.start_ms, window.end_ms + 1, window.step_ms))


def grids(found: Sequence[Curve], window: Window, *, group: str, row: str) -> list[Grid]:
    """Curves laid on the window's steps, one grid per value of `group`, rows by `row`."""
    t = steps(window)
    index = {ts: i for i, ts in enumerate(t)}
    groups: dict[str, dict[str, list[float | None]]] = {}
    for curve in found:
        rows = groups.setdefault(curve.labels.get(group, ""), {})
        cells = rows.setdefault(curve.labels.get(row, ""), [None] * len(t))
        for ts, value in zip(curve.t_ms, curve.values, strict=True):
            i = index.get(ts)
            if i is not None and math.isfinite(value):
                cells[i] = value
    return [
        Grid(
            title=title,
            rows=tuple(sorted(rows)),
            t_ms=t,
            cells=tuple(tuple(rows[name]) for name in sorted(rows)),
        )
        for title, rows in sorted(groups.items())
    ]


def combine(parts: Sequence[Sequence[Grid]], cell: Callable[..., Cell]) -> list[Grid]:
    """The grids of the first part, each cell `cell(*values)` of that cell in every part
    (None where a part lacks the row): several gauges read as one state."""
    lookup = [{(g.title, r): g.row(r) for g in part for r in g.rows} for part in parts[1:]]
    out = []
    for grid in parts[0]:
        cells, notes = [], []
        for name, row in zip(grid.rows, grid.cells, strict=True):
            others = [found.get((grid.title, name), (None,) * len(row)) for found in lookup]
            pairs = [cell(*values) for values in zip(row, *others, strict=True)]
            cells.append(tuple(code for code, _ in pairs))
            notes.append(tuple(note for _, note in pairs))
        out.append(replace(grid, cells=tuple(cells), notes=tuple(notes)))
    return out


def breaker_cell(state: float | None) -> Cell:
    known = state is not None and state in range(len(BREAKER))
    return (state, BREAKER[int(state)]) if known and state is not None else (None, "")


def routing_cell(isolated: float | None, canary: float | None) -> Cell:
    """Isolated (2), on a canary below 100% (1), or serving (0)."""
    if isolated is None:
        return None, ""
    if isolated >= 1:
        return 2.0, ROUTING[2]
    if canary is not None and canary < 100:
        return 1.0, f"canary {canary:g}%"
    return 0.0, ROUTING[0]


def region_cell(up: float | None, drained: float | None, down: float | None) -> Cell:
    """Down (2) when the front door's checks fail or a region_down fault holds, drained (1),
    else up (0); a region the front door does not report: no cell."""
    if up is None:
        return None, ""
    code = 2 if up < 1 or (down or 0) >= 1 else 1 if (drained or 0) >= 1 else 0
    return float(code), REGION[code]


# -- reading --------------------------------------------------------------------------------


def curves(querier: Querier, expr: str, window: Window, **extra: str) -> list[Curve]:
    """Every series of a range query over the window, with `extra` labels added."""
    result = querier.range(expr, window.start_ms, window.end_ms, window.step_ms)
    if result.type is not ResultType.MATRIX:
        return []
    found = [
        Curve(
            labels={**dict(series.labels), **extra},
            t_ms=tuple(int(t) for t in series.timestamps.tolist()),
            values=tuple(float(v) for v in series.values.tolist()),
        )
        for series in result.matrix
    ]
    return sorted(found, key=lambda c: sorted(c.labels.items()))


def instant(querier: Querier, expr: str, at_ms: int, by: Sequence[str]) -> dict[Key, float]:
    """An instant query's values by the labels `by`."""
    result = querier.instant(expr, at_ms)
    if result.type is not ResultType.VECTOR:
        return {}
    return {tuple(dict(s.labels).get(k, "") for k in by): s.value for s in result.vector}


def _ranged(
    reads: ReadModels, what: str, window: Window, *exprs: tuple[str, Mapping[str, str]]
) -> Curves:
    """Range queries' curves, each query's with its extra labels (what tells them apart)."""

    def read() -> list[Curve]:
        return [c for e, extra in exprs for c in curves(reads.querier, e, window, **extra)]

    none: list[Curve] = []
    return attempt(read, none, what)


def known_regions(reads: ReadModels, at_ms: int) -> tuple[list[str], str | None]:
    def read() -> list[str]:
        found = instant(reads.querier, queries.provider_regions(), at_ms, ("region",))
        return sorted(k[0] for k in found if k[0])

    none: list[str] = []
    return attempt(read, none, "the regions")


# -- providers ------------------------------------------------------------------------------


def _grids(
    reads: ReadModels,
    what: str,
    window: Window,
    exprs: Sequence[str],
    cell: Callable[..., Cell] | None = None,
    *,
    group: str = "region",
    row: str = "provider",
) -> Grids:
    """Range queries laid on grids; with `cell`, their cells read together as one state."""

    def read(q: Querier) -> list[Grid]:
        parts = [grids(curves(q, expr, window), window, group=group, row=row) for expr in exprs]
        return combine(parts, cell) if cell is not None else parts[0]

    none: list[Grid] = []
    return attempt(lambda: read(reads.querier), none, what)


def provider_latency(reads: ReadModels, region: str | None, window: Window) -> Grids:
    expr = queries.provider_p99(region, queries.rate_window(window.step_ms))
    return _grids(reads, "provider latency", window, [expr])


def provider_errors(reads: ReadModels, region: str | None, window: Window) -> Grids:
    expr = queries.provider_error_ratio(region, queries.rate_window(window.step_ms))
    return _grids(reads, "provider errors", window, [expr])


def launch_success(reads: ReadModels, region: str | None, window: Window) -> Curves:
    expr = queries.launch_success(region, queries.rate_window(window.step_ms))
    return _ranged(reads, "launch success", window, (expr, {}))


def breakers(reads: ReadModels, region: str | None, window: Window) -> Grids:
    expr = queries.breaker_state(region, window.step_ms)
    return _grids(reads, "circuit breakers", window, [expr], breaker_cell)


def isolation(reads: ReadModels, region: str | None, window: Window) -> Grids:
    exprs = [
        queries.provider_isolated(region, window.step_ms),
        queries.provider_canary(region, window.step_ms),
    ]
    return _grids(reads, "isolation and canaries", window, exprs, routing_cell)


def providers_now(
    reads: ReadModels, region: str | None, at_ms: int
) -> tuple[list[ProviderNow], str | None]:
    """One row per region and provider at `at_ms`: p99, error ratio, breaker, isolation."""
    by = ("region", "provider")
    window = queries.rate_window(0)
    exprs = {
        "p99": queries.provider_p99(region, window),
        "errors": queries.provider_error_ratio(region, window),
        "breaker": queries.breaker_state(region, 0),
        "isolated": queries.provider_isolated(region, 0),
        "canary": queries.provider_canary(region, 0),
    }

    def read() -> list[ProviderNow]:
        got = {name: instant(reads.querier, e, at_ms, by) for name, e in exprs.items()}
        keys = sorted({k for values in got.values() for k in values})
        rows = [_provider_now(key, got) for key in keys]
        return sorted(rows, key=lambda r: r.urgency)

    none: list[ProviderNow] = []
    return attempt(read, none, "the providers")


def _provider_now(key: Key, got: Mapping[str, Mapping[Key, float]]) -> ProviderNow:
    def value(name: str) -> float | None:
        found = got[name].get(key)
        return found if found is not None and math.isfinite(found) else None

    breaker, isolated = value("breaker"), value("isolated")
    return ProviderNow(
        region=key[0],
        provider=key[1],
        p99_s=value("p99"),
        error_ratio=value("errors"),
        breaker=None if breaker is None else int(breaker),
        isolated=None if isolated is None else isolated >= 1,
        canary_percent=value("canary"),
    )


# -- wallet ---------------------------------------------------------------------------------


def wallet_answered(reads: ReadModels, window: Window) -> Curves:
    """Definite answers per region and operation as the aggregator sees them, and per
    operation as the operator wallet counts them (region "operator")."""
    rate = queries.rate_window(window.step_ms)
    return _ranged(
        reads,
        "wallet answers",
        window,
        (queries.wallet_answered(rate), {}),
        (queries.wallet_operator_answered(rate), {"region": "operator"}),
    )


def wallet_latency(reads: ReadModels, window: Window) -> Curves:
    rate = queries.rate_window(window.step_ms)
    return _ranged(
        reads,
        "wallet latency",
        window,
        *[(queries.wallet_latency(q, rate), {"quantile": f"p{q * 100:g}"}) for q in (0.5, 0.99)],
    )


def wallet_queue(reads: ReadModels, window: Window) -> Curves:
    """Depth and oldest item's age per region (label `gauge`: depth | oldest)."""
    metrics = {"depth": "depth", "oldest": "oldest_age_seconds"}
    exprs = [
        (queries.wallet_queue(f"casino_wallet_queue_{m}", window.step_ms), {"gauge": g})
        for g, m in metrics.items()
    ]
    return _ranged(reads, "the wallet retry queue", window, *exprs)


def wallet_replays(reads: ReadModels, window: Window) -> Curves:
    """Retry queue items sent again per minute by region and outcome, and the operator's
    calls answered from its ledger (an earlier identical call: region "operator")."""
    rate = queries.rate_window(window.step_ms)
    queue = queries.per_minute("casino_wallet_queue_replayed_total", "region, outcome", rate)
    ledger = queries.per_minute("casino_wallet_operator_replays_total", "operation", rate)
    return _ranged(reads, "wallet replays", window, (queue, {}), (ledger, {"region": "operator"}))


def wallet_budget(reads: ReadModels, window: Window) -> tuple[WalletBudget, list[str]]:
    """The wallet SLOs' rows at the window's end and their budget left over the window."""
    wallet = [slo for slo in reads.slos if slo.service == WALLET_SERVICE]
    no_alerts: Sequence[Alert] = ()
    alerts, alert_problem = attempt(reads.alerts, no_alerts, "alerts")

    def rows() -> list[SLORow]:
        found = [
            row
            for slo in wallet
            for row in slos.rows_of(
                slo, slo_status(slo, reads.querier, alerts, time_ms=window.end_ms).instances
            )
        ]
        return slos.by_urgency(found)

    none: list[SLORow] = []
    found, problem = attempt(rows, none, "the wallet SLOs")
    lines, lines_problem = _ranged(
        reads,
        "the wallet error budget",
        window,
        *[(queries.budget_remaining(slo, {}), {"slo": slo.name}) for slo in wallet],
    )
    problems = [p for p in (alert_problem, problem, lines_problem) if p]
    return WalletBudget(rows=tuple(found), budget=tuple(lines)), problems


# -- regions --------------------------------------------------------------------------------


def region_weights(reads: ReadModels, window: Window) -> Curves:
    expr = queries.region_state("casino_region_weight", "max_over_time", 0)
    return _ranged(reads, "region weights", window, (expr, {}))


def region_states(reads: ReadModels, window: Window) -> Grids:
    """Up, drained or down per region and step; down wins over drained within a step."""
    exprs = [
        queries.region_state(metric, over, window.step_ms)
        for metric, over in (
            ("casino_region_up", "min_over_time"),
            ("casino_region_drained", "max_over_time"),
            ("casino_region_down", "max_over_time"),
        )
    ]
    return _grids(reads, "region health", window, exprs, region_cell, group="", row="region")


def failover_rates(reads: ReadModels, window: Window) -> Curves:
    expr = queries.per_minute(
        "casino_failover_events_total", "region, kind", queries.rate_window(window.step_ms)
    )
    return _ranged(reads, "failover events", window, (expr, {}))


def failover_counts(reads: ReadModels, window: Window) -> tuple[list[FailoverCount], str | None]:
    """Events in the window by region and kind (the aggregator exports every kind from 0)."""

    def read() -> list[FailoverCount]:
        expr = queries.failover_counts(window.span_ms)
        found = instant(reads.querier, expr, window.end_ms, ("region", "kind"))
        return [FailoverCount(region=r, kind=k, count=n) for (r, k), n in sorted(found.items())]

    none: list[FailoverCount] = []
    return attempt(read, none, "failover counts")


def sessions(reads: ReadModels, window: Window) -> Curves:
    return _ranged(reads, "active sessions", window, (queries.active_sessions(), {}))
