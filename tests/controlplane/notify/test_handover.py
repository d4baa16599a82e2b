"""Rule alerts become the dispatcher's alerts as Prometheus sends them to Alertmanager."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from controlplane.notify.alerts import Alert as NotifyAlert
from controlplane.notify.handover import generator_url, to_dispatcher
from controlplane.rules.alerting import AlertTracker
from controlplane.rules.load import parse_text
from controlplane.rules.manager import RuleManager
from controlplane.rules.model import AlertingRule
from tests.controlplane.rules.fakes import ListSink, ScriptedQuerier

RULES = """
groups:
  - name: g
    interval: 10s
    rules:
      - alert: Down
        expr: up == 0
        for: 10s
        annotations: {summary: '{{ $labels.instance }} down'}
"""


def test_firing_then_resolved_alerts_reach_the_dispatcher() -> None:
    received: list[NotifyAlert] = []

    def put(alerts: Iterable[NotifyAlert]) -> None:
        received.extend(alerts)

    up = {"down": True}
    querier = ScriptedQuerier(
        {"up == 0": lambda t: [({"__name__": "up", "instance": "a"}, 0.0)] if up["down"] else []}
    )
    manager = RuleManager(
        querier=querier,
        sink=ListSink(),
        on_alerts=to_dispatcher(put, external_url="http://cp:8000/"),
    )
    manager.update(parse_text(RULES, "r.yml"))
    manager.evaluate_group("r.yml;g", 0)  # pending: nothing sent
    manager.evaluate_group("r.yml;g", 10_000)  # firing
    up["down"] = False
    manager.evaluate_group("r.yml;g", 20_000)  # resolved
    firing, resolved = received
    assert firing.labels == (("alertname", "Down"), ("instance", "a"))
    assert firing.annotations == (("summary", "a down"),)
    assert firing.starts_at == datetime(1970, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert firing.ends_at == datetime(1970, 1, 1, 0, 4, 10, tzinfo=UTC)  # 4 x 60s resend delay
    assert firing.generator_url == "http://cp:8000/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.ends_at == datetime(1970, 1, 1, 0, 0, 20, tzinfo=UTC)


def test_generator_url_quotes_the_expression() -> None:
    tracker = AlertTracker(AlertingRule(name="A", expr='rate(x{a="b"}[5m]) > 1'))
    assert generator_url("", tracker.rule.expr) == (
        "/graph?g0.expr=rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29+%3E+1&g0.tab=1"
    )
