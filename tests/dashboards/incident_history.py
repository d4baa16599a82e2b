"""What the incident pages read beyond the SLO rules' own output, for the scenario
(tests/dashboards/scenario.py): the aggregator's fault gauges, the ALERTS and ALERTS_FOR_STATE
series the rule evaluator would have written for the scenario's other alerts, an approval and
the notifications sent.

Two incidents result: at 10:18 a provider_errors fault on eu/netent pages (ProviderFailing),
the isolation is rolled back and the alert resolves at 10:26; from 11:15 eu/evolution is down
(the SLO burn alerts join it), and at 11:54 a wallet timeout fault makes the retry queue grow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controlplane.audit import AuditLog
from controlplane.model.series import STALE_NAN, labels_from
from controlplane.runbooks.store import ExecutionStore, State
from controlplane.tsdb.store import Store

MINUTE = 60_000


@dataclass(frozen=True, kw_only=True)
class Times:
    start_ms: int  # the scenario's first sample
    incident_ms: int  # eu/evolution goes down
    end_ms: int  # now


class Clock(Protocol):
    t_s: float


def add_series(store: Store, times: Times) -> None:
    """Fault gauges and alerts, one sample a minute as a scrape and an evaluation would write."""
    first = times.start_ms + 18 * MINUTE
    _alert(store, times, "ProviderFailing", {"provider": "netent"}, first, 2, first + 8 * MINUTE)
    _alert(store, times, "ProviderFailing", {"provider": "evolution"}, times.incident_ms, 2, None)
    pending = {"severity": "ticket", "region": "eu"}
    _alert(store, times, "WalletRetryQueueGrowing", pending, times.end_ms - 5 * MINUTE, 10, None)
    region = {"job": "aggregator-eu", "instance": "127.0.0.1:8101", "region": "eu"}
    early = times.start_ms + 17 * MINUTE
    _gauge(store, times, "casino_faults_active", {**region, "kind": "provider_errors"}, early, 8)
    down = times.incident_ms
    _gauge(store, times, "casino_faults_active", {**region, "kind": "provider_down"}, down, None)
    wallet = {"job": "wallet", "instance": "127.0.0.1:8200", "kind": "wallet_timeout"}
    _wallet_gauge(store, times, wallet, times.end_ms - 6 * MINUTE)


def _minutes(start_ms: int, end_ms: int) -> range:
    return range(start_ms, end_ms + 1, MINUTE)


def _alert(
    store: Store,
    times: Times,
    name: str,
    labels: dict[str, str],
    active_ms: int,
    pending_min: int,
    resolved_ms: int | None,
) -> None:
    """ALERTS (pending for `pending_min` minutes, then firing) and ALERTS_FOR_STATE, with the
    staleness markers the evaluator writes once the alert resolves."""
    base = {"alertname": name, "severity": "page", "region": "eu", **labels}
    for_state = labels_from({**base, "__name__": "ALERTS_FOR_STATE"})
    fired_ms = active_ms + pending_min * MINUTE
    last = times.end_ms if resolved_ms is None else resolved_ms - MINUTE
    spans = (("pending", active_ms, min(fired_ms - MINUTE, last)), ("firing", fired_ms, last))
    for state, begin, end in spans:
        series = labels_from({**base, "__name__": "ALERTS", "alertstate": state})
        for t in _minutes(begin, end):
            store.append(series, t, 1.0)
        if end < times.end_ms:
            store.append(series, end + MINUTE, STALE_NAN)
    for t in _minutes(active_ms, last):
        store.append(for_state, t, float(active_ms // 1000))
    if resolved_ms is not None:
        store.append(for_state, resolved_ms, STALE_NAN)


def _gauge(
    store: Store, times: Times, name: str, labels: dict[str, str], from_ms: int, minutes: int | None
) -> None:
    """A region's fault gauge: exported only while a fault of the kind is active."""
    series = labels_from({**labels, "__name__": name})
    until = times.end_ms if minutes is None else from_ms + (minutes - 1) * MINUTE
    for t in _minutes(from_ms, until):
        store.append(series, t, 1.0)
    if until < times.end_ms:
        store.append(series, until + MINUTE, STALE_NAN)


def _wallet_gauge(store: Store, times: Times, labels: dict[str, str], from_ms: int) -> None:
    """The wallet exports its fault gauge always: 0 until the fault."""
    series = labels_from({**labels, "__name__": "casino_wallet_faults_active"})
    for t in _minutes(times.start_ms, times.end_ms):
        store.append(series, t, 1.0 if t >= from_ms else 0.0)


def add_events(audit: AuditLog, executions: ExecutionStore, clock: Clock, times: Times) -> None:
    """Notifications as the notifier would audit them, and carol's approval of the eu drain."""
    first = times.start_ms + 20 * MINUTE
    for at, alert, status, receiver in (
        (first, "ProviderFailing", "firing", "oncall-eu"),
        (first + 6 * MINUTE, "ProviderFailing", "resolved", "oncall-eu"),
        (times.incident_ms + 2 * MINUTE, "ProviderFailing", "firing", "oncall-eu"),
        (times.incident_ms + 3 * MINUTE, "LaunchSuccessBudgetBurn", "firing", "aggregator-team"),
        (times.incident_ms + 21 * MINUTE, "LaunchSuccessBudgetBurn", "firing", "oncall-eu"),
    ):
        clock.t_s = at / 1000
        data = {"receiver": receiver, "integration": "slack", "alerts": [alert], "status": status}
        audit.append("notified", data, actor="notify")
    (drain,) = executions.find(runbook="drain-region", states=[State.PENDING_APPROVAL])
    clock.t_s = (times.end_ms - 4 * MINUTE) / 1000
    executions.add_approval(drain.id, "carol", 2)
    audit.append("approved", {"count": 1, "needed": 2}, actor="carol", execution_id=drain.id)
