"""The manager: scheduling on APScheduler, alerts handed over, restore after a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from controlplane.model.series import Matcher, MatchOp, is_stale_marker
from controlplane.rules.alerting import Alert, AlertState
from controlplane.rules.growsource import GrowingSource
from controlplane.rules.load import parse_text
from controlplane.rules.manager import RuleManager
from tests.controlplane.rules.fakes import ListSink, ScriptedQuerier

S = 1000
M = 60 * S

RULES = """
groups:
  - name: fast
    interval: 50ms
    rules:
      - alert: Down
        expr: up == 0
        labels: {severity: page}
  - name: slow
    interval: 1h
    rules:
      - alert: LongDown
        expr: up == 0
        for: 30m
"""


def _down(t: int) -> list[tuple[dict[str, str], float]]:
    return [({"__name__": "up", "instance": "a"}, 0.0)]


def test_groups_run_on_the_scheduler_and_alerts_reach_the_callback() -> None:
    received: list[Alert] = []
    got_two = threading.Event()

    def on_alerts(alerts: Sequence[Alert]) -> None:
        received.extend(alerts)
        if len(received) >= 2:
            got_two.set()

    scheduler = BackgroundScheduler()
    manager = RuleManager(
        querier=ScriptedQuerier({"up == 0": _down}),
        sink=ListSink(),
        scheduler=scheduler,
        on_alerts=on_alerts,
        resend_delay_ms=0,
    )
    manager.update(parse_text(RULES, "r.yml"))
    scheduler.start()
    try:
        manager.start()
        assert got_two.wait(10), "the 50ms group did not run twice within 10s"
    finally:
        manager.stop()
        scheduler.shutdown(wait=True)
    assert {a.rule for a in received} == {"Down"}
    assert received[0].state is AlertState.FIRING
    assert scheduler.get_jobs() == []


def test_evaluate_group_hands_over_firing_and_survives_a_failing_callback() -> None:
    calls: list[int] = []

    def broken(alerts: Sequence[Alert]) -> None:
        calls.append(len(alerts))
        raise RuntimeError("dispatcher down")

    registry = CollectorRegistry()
    manager = RuleManager(
        querier=ScriptedQuerier({"up == 0": _down}),
        sink=ListSink(),
        on_alerts=broken,
        registry=registry,
    )
    manager.update(parse_text(RULES, "r.yml"))
    assert len(manager.evaluate_group("r.yml;fast", 0)) == 1
    manager.evaluate_group("r.yml;fast", 200)  # 3 iterations of 50ms skipped
    assert calls == [1]
    missed = registry.get_sample_value(
        "controlplane_rule_group_iterations_missed_total", {"rule_group": "r.yml;fast"}
    )
    assert missed == 3
    assert [a.rule for a in manager.alerts()] == ["Down"]
    assert [g.group.name for g in manager.groups()] == ["fast", "slow"]


def test_restart_restores_for_state_after_the_second_evaluation() -> None:
    store = GrowingSource()
    querier = ScriptedQuerier({"up == 0": _down})
    groups = parse_text(RULES, "r.yml")
    first = RuleManager(querier=querier, sink=store)
    first.update(groups)
    for t in range(0, 10 * M + 1, M):
        first.evaluate_group("r.yml;slow", t)  # pending for 10 of its 30 minutes

    # down from 10m to 15m; the new process evaluates at 15m and 16m, then restores
    second = RuleManager(querier=querier, sink=store, restore_source=store)
    second.update(groups)
    second.evaluate_group("r.yml;slow", 15 * M)
    for_state = Matcher(name="__name__", op=MatchOp.EQ, value="ALERTS_FOR_STATE")
    assert store.select([for_state], 15 * M, 15 * M) == []  # nothing written before restore
    second.evaluate_group("r.yml;slow", 16 * M)
    (alert,) = second.alerts()
    assert alert.active_at_ms == 16 * M - 10 * M  # 10 minutes of pending survive the restart
    second.evaluate_group("r.yml;slow", 17 * M)
    (written,) = store.select([for_state], 17 * M, 17 * M)
    assert written.values.tolist() == [6 * 60.0]


def test_removed_groups_end_their_series(tmp_path: Path) -> None:
    sink = ListSink()
    manager = RuleManager(
        querier=ScriptedQuerier({"up == 0": _down}), sink=sink, clock=lambda: 100.0
    )
    (tmp_path / "r.yml").write_text(RULES)
    (tmp_path / "routing.yml").write_text("route: {receiver: x}\n")
    manager.load([tmp_path])
    manager.evaluate_group(f"{tmp_path / 'r.yml'};fast", 0)
    manager.update([])
    assert manager.groups() == []
    ended = {dict(lb)["__name__"]: v for lb, t, v in sink.samples if t == 100 * S}
    assert set(ended) == {"ALERTS", "ALERTS_FOR_STATE"}
    assert all(is_stale_marker(v) for v in ended.values())


def test_the_default_clock_aligns_evaluations_to_the_interval() -> None:
    manager = RuleManager(
        querier=ScriptedQuerier({"up == 0": _down}), sink=ListSink(), clock=time.time
    )
    manager.update(parse_text(RULES, "r.yml"))
    manager.start()
    try:
        jobs = manager.scheduler.get_jobs()
        assert sorted(j.id for j in jobs) == ["rules:r.yml;fast", "rules:r.yml;slow"]
    finally:
        manager.stop()
    assert not manager.scheduler.running
