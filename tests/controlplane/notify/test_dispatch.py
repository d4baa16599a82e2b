"""Flush timing as Alertmanager's: group_wait, group_interval, repeat_interval, resolution,
retries. Time only moves when a test moves the fake clock. Each tick runs the sender once
(conftest's DeliveringDispatcher); retries are the sender's, from the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controlplane.errors import ConfigError
from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.errors import NotifyError
from tests.controlplane.notify.conftest import (
    T0,
    FakeClock,
    RecordingNotifier,
    alert,
    make_dispatcher,
    memory_outbox,
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


def setup(
    clock: FakeClock, *, send_resolved: bool = True, config: str = CONFIG
) -> tuple[Dispatcher, dict[str, RecordingNotifier]]:
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(
        routing_from(config), clock, notifiers, send_resolved=send_resolved
    )
    return dispatcher, notifiers


def run_until(dispatcher: Dispatcher, clock: FakeClock, seconds: int, step: int = 1) -> None:
    """Tick every `step` seconds of fake time up to T0 + seconds, as the runner would."""
    while clock.now < T0 + timedelta(seconds=seconds):
        clock.advance(seconds=step)
        dispatcher.tick()


def test_group_wait_before_the_first_notification(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A", region="eu")])
    run_until(dispatcher, clock, 29)
    assert notifiers["team"].sent == []
    run_until(dispatcher, clock, 30)
    (sent,) = notifiers["team"].sent
    assert clock.now == T0 + timedelta(seconds=30)
    assert sent.names == ["A"] and sent.statuses == ["firing"]
    assert str(sent.group_key) == '{}:{alertname="A"}'
    assert sent.alerts[0].ends_at is None


def test_alerts_of_one_group_go_together_and_other_groups_apart(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A", region="eu"), alert("A", region="latam"), alert("B")])
    run_until(dispatcher, clock, 30)
    sent = sorted(notifiers["team"].sent, key=lambda s: str(s.group_key))
    assert [len(s.alerts) for s in sent] == [2, 1]
    assert [str(s.group_key) for s in sent] == ['{}:{alertname="A"}', '{}:{alertname="B"}']


def test_a_new_alert_joins_the_group_at_the_next_group_interval(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A", region="eu")])
    run_until(dispatcher, clock, 30)
    clock.at(seconds=60)
    dispatcher.put([alert("A", region="latam", starts_at=clock.now)])
    run_until(dispatcher, clock, 30 + 299)
    assert len(notifiers["team"].sent) == 1  # not at once: group_interval runs from the flush
    run_until(dispatcher, clock, 30 + 300)
    second = notifiers["team"].sent[1]
    assert len(second.alerts) == 2
    assert [dict(a.labels)["region"] for a in second.alerts] == ["eu", "latam"]


def test_nothing_new_is_sent_again_after_repeat_interval(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A")])
    sent_at = []
    flushes = []
    for _ in range(30):
        due = dispatcher.next_due()
        assert due is not None
        clock.now = due
        before = len(notifiers["team"].sent)
        dispatcher.tick()
        flushes.append((clock.now - T0).total_seconds())
        if len(notifiers["team"].sent) > before:
            sent_at.append((clock.now - T0).total_seconds())
    assert flushes[:3] == [30, 330, 630]
    # flushes run at 30s + k*5m; the one exactly 1h after a send is not past repeat_interval
    # (Alertmanager compares strictly), so the repeat goes out one group_interval later
    assert 30 + 3600 in flushes
    assert sent_at == [30, 30 + 3900, 30 + 7800]


def test_resolved_alerts_are_sent_once_then_the_group_goes(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A", region="eu"), alert("A", region="latam")])
    run_until(dispatcher, clock, 30)
    clock.at(seconds=100)
    dispatcher.put([alert("A", region="eu", ends_at=clock.now)])
    run_until(dispatcher, clock, 330)
    update = notifiers["team"].sent[1]
    assert update.statuses == ["resolved", "firing"] and update.status.value == "firing"
    assert update.alerts[0].ends_at == T0 + timedelta(seconds=100)
    clock.at(seconds=400)
    dispatcher.put([alert("A", region="latam", ends_at=clock.now)])
    run_until(dispatcher, clock, 630)
    last = notifiers["team"].sent[2]
    assert last.statuses == ["resolved"] and last.status.value == "resolved"
    run_until(dispatcher, clock, 1800, step=10)
    assert len(notifiers["team"].sent) == 3
    assert dispatcher.groups() == [] and dispatcher.alerts() == []


def test_without_send_resolved_resolutions_are_not_sent(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock, send_resolved=False)
    dispatcher.put([alert("A", region="eu"), alert("A", region="latam")])
    run_until(dispatcher, clock, 30)
    dispatcher.put([alert("A", region="eu", ends_at=clock.now)])
    run_until(dispatcher, clock, 330)
    assert len(notifiers["team"].sent) == 1  # latam is still known and firing: no news
    dispatcher.put([alert("A", region="latam", ends_at=clock.now)])
    run_until(dispatcher, clock, 630)
    assert len(notifiers["team"].sent) == 1
    assert dispatcher.groups() == []
    # the same alert firing again later is news, after a fresh group_wait
    clock.at(seconds=1000)
    dispatcher.put([alert("A", region="eu", starts_at=clock.now)])
    run_until(dispatcher, clock, 1030)
    assert len(notifiers["team"].sent) == 2


def test_an_alert_that_fired_and_resolved_unseen_is_not_sent(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A")])
    clock.at(seconds=10)
    dispatcher.put([alert("A", ends_at=clock.now)])
    run_until(dispatcher, clock, 60)
    assert notifiers["team"].sent == [] and dispatcher.groups() == []


def test_an_old_alert_is_not_held_for_group_wait(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A", starts_at=T0 - timedelta(minutes=10))])
    dispatcher.tick()
    assert len(notifiers["team"].sent) == 1


def test_a_failed_notification_is_retried_with_backoff(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    team = notifiers["team"]
    team.failures = [NotifyError("503"), NotifyError("timeout")]
    dispatcher.put([alert("A")])
    clock.at(seconds=30)
    dispatcher.tick()
    assert dispatcher.sender.next_due() == T0 + timedelta(seconds=31)
    clock.at(seconds=31)
    dispatcher.tick()
    assert dispatcher.sender.next_due() == T0 + timedelta(seconds=33)  # backoff doubled
    clock.at(seconds=33)
    dispatcher.tick()
    assert team.calls == 3 and len(team.sent) == 1
    assert dispatcher.sender.next_due() is None
    run_until(dispatcher, clock, 30 + 600)
    assert len(team.sent) == 1  # delivered once: the log knows it


def test_a_refused_notification_waits_for_the_next_flush(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    team = notifiers["team"]
    team.failures = [NotifyError("400 bad request", retryable=False)]
    dispatcher.put([alert("A")])
    run_until(dispatcher, clock, 329)
    assert team.calls == 1 and team.sent == []
    run_until(dispatcher, clock, 330)
    assert team.calls == 2 and len(team.sent) == 1


def test_retries_stop_at_the_cap_and_the_next_flush_starts_over(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    team = notifiers["team"]
    team.failures = [RuntimeError("bug in a notifier")] * 1000
    dispatcher.put([alert("A")])
    run_until(dispatcher, clock, 329)
    # 6 attempts (the test policy's cap) 1, 2, 4, 8, 16 s apart, then a dead letter
    assert team.sent == [] and team.calls == 6
    run_until(dispatcher, clock, 330)
    assert team.calls == 7  # the dead letter made the log forget: the next flush decides again
    calls = team.calls
    team.failures = []
    run_until(dispatcher, clock, 340)
    assert team.calls > calls and len(team.sent) == 1


def test_continue_sends_to_several_receivers(clock: FakeClock) -> None:
    config = """
route:
  receiver: default
  group_wait: 10s
  routes:
    - {matchers: [team=wallet], receiver: wallet, continue: true, group_by: ['...']}
    - {matchers: [severity=page], receiver: pager, group_wait: 0s}
receivers: [{name: default}, {name: wallet}, {name: pager}]
"""
    dispatcher, notifiers = setup(clock, config=config)
    dispatcher.put([alert("A", team="wallet", severity="page")])
    dispatcher.tick()
    assert [s.receiver for s in notifiers["pager"].sent] == ["pager"]
    run_until(dispatcher, clock, 10)
    (wallet,) = notifiers["wallet"].sent
    assert (
        str(wallet.group_key)
        == '{}/{team="wallet"}:{alertname="A", severity="page", team="wallet"}'
    )
    assert notifiers["default"].sent == []


def test_every_routed_receiver_needs_integrations(clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="no integrations built for \\['team'\\]"):
        Dispatcher(
            routing=routing_from(CONFIG), integrations={}, outbox=memory_outbox(), clock=clock
        )


def _integrations(routing_text: str, notifiers: dict[str, RecordingNotifier]) -> dict[str, tuple]:  # type: ignore[type-arg]
    from controlplane.notify.notifiers import Integration

    routing = routing_from(routing_text)
    return {
        name: (
            Integration(
                name="test[0]",
                notifier=notifiers.setdefault(name, RecordingNotifier()),
                send_resolved=True,
            ),
        )
        for name in routing.receivers
    }


def test_a_reload_keeps_alerts_and_what_was_told(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    dispatcher.put([alert("A", region="eu"), alert("B", region="eu", severity="page")])
    run_until(dispatcher, clock, 30)
    assert len(notifiers["team"].sent) == 2
    new = CONFIG.replace(
        "receivers: [{name: team}]",
        "  routes: [{receiver: pager, matchers: ['severity=\"page\"']}]\nreceivers: [{name: team}, {name: pager}]",
    )
    dispatcher.reconfigure(routing_from(new), _integrations(new, notifiers))
    run_until(dispatcher, clock, 90)
    # A's group is the same group: not told again; B now belongs to a new route: told there
    assert len(notifiers["team"].sent) == 2
    (paged,) = notifiers["pager"].sent
    assert paged.names == ["B"]


def test_a_reload_without_integrations_for_a_receiver_changes_nothing(clock: FakeClock) -> None:
    dispatcher, notifiers = setup(clock)
    new = CONFIG.replace(
        "receivers: [{name: team}]",
        "  routes: [{receiver: pager}]\nreceivers: [{name: team}, {name: pager}]",
    )
    with pytest.raises(ConfigError, match="no integrations built for \\['pager'\\]"):
        dispatcher.reconfigure(routing_from(new), _integrations(CONFIG, notifiers))
    dispatcher.put([alert("A")])
    run_until(dispatcher, clock, 30)
    assert len(notifiers["team"].sent) == 1
