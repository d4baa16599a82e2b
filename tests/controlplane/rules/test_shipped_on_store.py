"""The shipped rules on the real store and engine, wired as the app wires them: a provider that
starts failing pages within seconds, and the alert reaches the dispatcher callback."""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.model.series import labels_from
from controlplane.promql.engine import Engine
from controlplane.rules.alerting import Alert, AlertState
from controlplane.rules.manager import RuleManager
from controlplane.tsdb.store import Store
from tests.conftest import ROOT

STEP_MS = 5_000


def _scrape(store: Store, t_ms: int, failing: bool) -> None:
    """What a scrape of region eu would append: netent fails every launch once `failing`."""
    n = t_ms // STEP_MS
    base = {"job": "aggregator", "instance": "127.0.0.1:8101", "region": "eu"}
    counters = {
        ("netent", "ok"): 5.0 * min(n, 24),
        ("netent", "timeout"): 5.0 * max(0, n - 24) if failing else 0.0,
        ("evolution", "ok"): 5.0 * n,
    }
    for (provider, outcome), value in counters.items():
        labels = labels_from(
            {
                **base,
                "__name__": "casino_provider_requests_total",
                "provider": provider,
                "operation": "launch",
                "outcome": outcome,
            }
        )
        store.append(labels, t_ms, value)


def test_a_failing_provider_pages_through_store_engine_and_manager() -> None:
    store = Store()
    received: list[Alert] = []

    def on_alerts(alerts: Sequence[Alert]) -> None:
        received.extend(alerts)

    manager = RuleManager(
        querier=Engine(store),
        sink=store,
        restore_source=store,
        on_alerts=on_alerts,
        clock=lambda: 0.0,
    )
    groups = manager.load([ROOT / "rules"])
    assert {g.name for g in groups} >= {"casino-providers-recording", "casino-providers-alerts"}
    fired_at = None
    for t in range(0, 240_000, STEP_MS):
        _scrape(store, t, failing=True)
        manager.evaluate_all(t)
        if fired_at is None and any(a.rule == "ProviderLaunchFailing" for a in received):
            fired_at = t
    assert fired_at is not None
    # failures start at 120s; evaluated every 5s, pending then firing after `for: 10s`
    assert 120_000 < fired_at <= 150_000
    page = next(a for a in received if a.rule == "ProviderLaunchFailing")
    assert page.state is AlertState.FIRING
    assert dict(page.labels) == {
        "alertname": "ProviderLaunchFailing",
        "region": "eu",
        "provider": "netent",
        "severity": "page",
    }
    statuses = [r for g in manager.groups() for r in g.rules]
    assert all(r.health.value == "ok" for r in statuses), [
        (r.rule.name, r.last_error) for r in statuses if r.last_error
    ]
