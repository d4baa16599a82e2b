"""The PromQL each panel runs, in one place: read it here to know what a chart shows.

Panels read the series the generated SLO rules record (`controlplane/slo/generate.py`), so
they cost the same against the embedded engine and against a remote Prometheus. A range query's
step comes from the range (`view.step_ms`); past the 5m window the SLI is averaged over each
step, so no sample between two points is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import promql_parser

from controlplane.slo import SLO

SHORTEST_WINDOW_MS = 5 * 60_000


def selector(metric: str, slo: SLO, labels: Mapping[str, str] | None = None) -> str:
    """`metric{slo_id="...", <labels>}` with every value quoted as PromQL needs."""
    matchers = {"slo_id": slo.id, **(labels or {})}
    inside = ", ".join(f"{name}={_quote(value)}" for name, value in matchers.items())
    return f"{metric}{{{inside}}}"


def slo_status(slo: SLO) -> str:
    """Every series recorded for the SLO, at one instant (what `slo.status` reads)."""
    return f'{{__name__=~"slo:.+", slo_id={_quote(slo.id)}}}'


def availability(slo: SLO, labels: Mapping[str, str], step_ms: int) -> str:
    """The SLI (good / total) over time, for the chart against the objective."""
    five = selector("slo:sli_error:ratio_rate5m", slo, labels)
    if step_ms <= SHORTEST_WINDOW_MS:
        return f"1 - {five}"
    return f"1 - avg_over_time({five}[{_duration(step_ms)}])"


def budget_remaining(slo: SLO, labels: Mapping[str, str]) -> str:
    """The share of the window's error budget left, as the status reports it, over time."""
    return selector("slo:period_error_budget_remaining:ratio", slo, labels)


def events_in_window(slo: SLO) -> str | None:
    """All events over the SLO's window, by its `by` labels (None: the SLI has no total)."""
    window = promql_parser.display_duration(slo.window)
    total = slo.sli.total_rate(window)
    if total is None:
        return None
    return f"({total}) * {slo.window.total_seconds():g}"


def _duration(ms: int) -> str:
    seconds = max(1, ms // 1000)
    return f"{seconds}s"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# -- incidents (dashboards/incidents.py) ------------------------------------------------------
# Past the 5m lookback a plain selector would skip what happened between two points, so the
# incident queries then take the extreme over each step instead.
LOOKBACK_MS = 5 * 60_000


def _per_step(expr: str, over: str, step_ms: int) -> str:
    return expr if step_ms <= LOOKBACK_MS else f"{over}({expr}[{_duration(step_ms)}])"


def _severities(severities: Sequence[str]) -> str:
    return _quote("|".join(re.escape(s) for s in severities))


def alert_active_at(severities: Sequence[str], step_ms: int) -> str:
    """Every alert of these severities while pending or firing, valued at its activeAt (unix
    seconds, as the rule evaluator records it): the exact start, whatever the step."""
    expr = f"ALERTS_FOR_STATE{{severity=~{_severities(severities)}}}"
    return _per_step(expr, "min_over_time", step_ms)


def alert_states(severities: Sequence[str], step_ms: int) -> str:
    """The same alerts by `alertstate` (pending, firing): 1 while in that state."""
    expr = f"ALERTS{{severity=~{_severities(severities)}}}"
    return _per_step(expr, "max_over_time", step_ms)


def faults_active(step_ms: int) -> tuple[str, str]:
    """Injected faults the aggregator reports: by region and kind, and the wallet's by kind."""
    return (
        _per_step("casino_faults_active", "max_over_time", step_ms) + " > 0",
        _per_step("casino_wallet_faults_active", "max_over_time", step_ms) + " > 0",
    )


def budgets_remaining() -> str:
    """Every SLO instance's share of error budget left, as the generated rules record it."""
    return "slo:period_error_budget_remaining:ratio"


# -- fleet: providers, wallet, regions (dashboards/fleet.py) ---------------------------------
# A rate takes at least two samples of a one-minute scrape and at least the step, so nothing
# between two points is skipped; past a minute a state gauge takes its extreme over the step.
# Every query aggregates the scrape labels (job, instance) away, by region and what it shows.
RATE_FLOOR_MS = 2 * 60_000
STATE_STEP_MS = 60_000
BY_PROVIDER = "region, provider"


def rate_window(step_ms: int) -> str:
    return _duration(max(step_ms, RATE_FLOOR_MS))


def _sel(metric: str, region: str | None = None, *matchers: str) -> str:
    inside = [*matchers, *([f"region={_quote(region)}"] if region else [])]
    return f"{metric}{{{', '.join(inside)}}}" if inside else metric


def _per_state_step(expr: str, over: str, step_ms: int) -> str:
    return expr if step_ms <= STATE_STEP_MS else f"{over}({expr}[{_duration(step_ms)}])"


def _ratio(good: str, total: str, by: str, window: str) -> str:
    return f"sum by ({by}) (rate({good}[{window}])) / sum by ({by}) (rate({total}[{window}]))"


def provider_p99(region: str | None, window: str) -> str:
    """p99 latency of calls to each provider, launches and rounds together."""
    buckets = _sel("casino_provider_request_duration_seconds_bucket", region)
    return f"histogram_quantile(0.99, sum by ({BY_PROVIDER}, le) (rate({buckets}[{window}])))"


def provider_error_ratio(region: str | None, window: str) -> str:
    """Share of the calls sent to each provider that failed (5xx or timeout); calls refused
    by isolation or an open breaker were not sent (as casino:provider_request_failure)."""
    failed = _sel("casino_provider_requests_total", region, 'outcome=~"error|timeout"')
    sent = _sel("casino_provider_requests_total", region, 'outcome!="rejected"')
    return _ratio(failed, sent, BY_PROVIDER, window)


def launch_success(region: str | None, window: str) -> str:
    """Launches that reached a game, per provider that served them (failover counts)."""
    good = _sel("casino_game_launches_total", region, 'outcome=~"ok|failover"')
    return _ratio(good, _sel("casino_game_launches_total", region), BY_PROVIDER, window)


def breaker_state(region: str | None, step_ms: int) -> str:
    """0 closed, 1 open, 2 half-open; over a long step the highest code in it."""
    state = _sel("casino_circuit_breaker_state", region)
    return f"max by ({BY_PROVIDER}) ({_per_state_step(state, 'max_over_time', step_ms)})"


def provider_isolated(region: str | None, step_ms: int) -> str:
    isolated = _sel("casino_provider_isolated", region)
    return f"max by ({BY_PROVIDER}) ({_per_state_step(isolated, 'max_over_time', step_ms)})"


def provider_canary(region: str | None, step_ms: int) -> str:
    canary = _sel("casino_provider_canary_percent", region)
    return f"min by ({BY_PROVIDER}) ({_per_state_step(canary, 'min_over_time', step_ms)})"


def provider_regions() -> str:
    """Every region that reports provider calls, for the region picker."""
    return "count by (region) (casino_provider_requests_total)"


def wallet_answered(window: str) -> str:
    """Share of the aggregator's wallet calls that got a definite answer (ok or a business
    status such as insufficient funds), by region and operation: the wallet SLO's SLI."""
    answered = _sel("casino_wallet_requests_total", None, 'outcome!~"error|timeout"')
    return _ratio(answered, "casino_wallet_requests_total", "region, operation", window)


def wallet_operator_answered(window: str) -> str:
    """The operator wallet's own count: calls not answered RS_ERROR_UNKNOWN (a 5xx)."""
    answered = _sel("casino_wallet_operator_requests_total", None, 'status!="RS_ERROR_UNKNOWN"')
    return _ratio(answered, "casino_wallet_operator_requests_total", "operation", window)


def wallet_latency(quantile: float, window: str) -> str:
    buckets = "casino_wallet_request_duration_seconds_bucket"
    return f"histogram_quantile({quantile:g}, sum by (region, le) (rate({buckets}[{window}])))"


def wallet_queue(metric: str, step_ms: int) -> str:
    """`casino_wallet_queue_depth` or `..._oldest_age_seconds`: the highest in each step."""
    return f"max by (region) ({_per_state_step(metric, 'max_over_time', step_ms)})"


def per_minute(metric: str, by: str, window: str) -> str:
    """Events a minute, averaged over the window: the same scale at every step."""
    return f"sum by ({by}) (rate({metric}[{window}])) * 60"


def region_state(metric: str, over: str, step_ms: int) -> str:
    """A front door or region gauge by region (`over`: which extreme a long step keeps)."""
    agg = "min" if over == "min_over_time" else "max"
    return f"{agg} by (region) ({_per_state_step(metric, over, step_ms)})"


def failover_counts(range_ms: int) -> str:
    """Failover events in the range, by region and kind."""
    return f"sum by (region, kind) (increase(casino_failover_events_total[{_duration(range_ms)}]))"


def active_sessions() -> str:
    return "sum by (region) (casino_active_sessions)"
