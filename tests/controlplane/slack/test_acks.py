"""Acknowledge stops a group's reminders in the dispatcher, not its news, until it resolves."""

from __future__ import annotations

from pathlib import Path

from controlplane import audit
from controlplane.access import Role, User
from controlplane.db import create_engine
from controlplane.notify.dispatch import Dispatcher
from controlplane.slack.acks import Acknowledgements
from controlplane.slack.tables import metadata
from tests.controlplane.notify.conftest import (
    T0,
    FakeClock,
    RecordingNotifier,
    alert,
    make_dispatcher,
    routing_from,
)

CONFIG = """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers: [{name: team}]
"""
ONCALL = User(name="oncall", role=Role.OPERATOR, slack_id="UONCALL")


def run_for(dispatcher: Dispatcher, clock: FakeClock, seconds: int) -> None:
    end = clock.now.timestamp() + seconds
    while (due := dispatcher.next_due()) is not None and due.timestamp() <= end:
        clock.now = max(clock.now, due)
        dispatcher.tick()
    clock.now = T0.fromtimestamp(end, T0.tzinfo)


def test_an_acknowledged_group_gets_news_but_no_reminders(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/a.db")
    metadata.create_all(engine)
    audit.install(engine)
    clock = FakeClock()
    acks = Acknowledgements(engine, audit.AuditLog(engine), lambda: clock.now.timestamp())
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(CONFIG), clock, notifiers)
    dispatcher.acknowledged = acks.hook(dispatcher.groups)
    dispatcher.put([alert("RegionDown", region="eu")])
    run_for(dispatcher, clock, 60)
    [group] = dispatcher.groups()
    assert len(notifiers["team"].sent) == 1
    assert acks.acknowledge(ONCALL, str(group.key), slack_user="UONCALL")
    run_for(dispatcher, clock, 3 * 3600)  # three repeat intervals: no reminder
    assert len(notifiers["team"].sent) == 1
    dispatcher.put([alert("RegionDown", region="latam")])  # news still notifies
    run_for(dispatcher, clock, 600)
    assert len(notifiers["team"].sent) == 2
    resolved_at = clock.now
    dispatcher.put(
        [
            alert("RegionDown", region="eu", ends_at=resolved_at),
            alert("RegionDown", region="latam", ends_at=resolved_at),
        ]
    )
    run_for(dispatcher, clock, 600)
    assert acks.of(str(group.key)) == []  # resolved: nobody is on it any more
    before = len(notifiers["team"].sent)
    dispatcher.put([alert("RegionDown", region="eu", starts_at=clock.now)])
    run_for(dispatcher, clock, 3600 + 900)
    assert len(notifiers["team"].sent) - before == 2  # a new episode, and its reminder
    engine.dispose()
