"""The durable notification log and outbox: restarts, leases, pacing, retries, dead letters,
and two senders racing (SQLite, and PostgreSQL where it runs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from controlplane.audit import AuditLog, install
from controlplane.db import create_engine
from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.message import Decision, Message
from controlplane.notify.nflog import LogEntry, LogLine
from controlplane.notify.notifiers import Integration
from controlplane.notify.outbox import Outbox, State
from controlplane.notify.routing import RoutingConfig
from controlplane.notify.sender import Sender, SendPolicy
from tests.controlplane.notify.conftest import (
    T0,
    TEST_POLICY,
    FakeClock,
    RecordingNotifier,
    alert,
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
receivers: [{name: team}, {name: other}]
"""


@dataclass
class Process:
    """One control plane process's notification half, over a database that outlives it."""

    engine: sa.Engine
    outbox: Outbox
    dispatcher: Dispatcher
    sender: Sender

    def crash(self) -> None:
        self.engine.dispose()


def start(
    url: str,
    clock: FakeClock,
    notifiers: dict[str, RecordingNotifier],
    *,
    routing: RoutingConfig | None = None,
    policy: SendPolicy = TEST_POLICY,
    owner: str | None = None,
) -> Process:
    routing = routing or routing_from(CONFIG)
    engine = create_engine(url)
    outbox = Outbox(engine)
    outbox.create_tables()
    integrations = {
        name: (
            Integration(name="test[0]", notifier=notifiers.setdefault(name, RecordingNotifier())),
        )
        for name in routing.receivers
    }
    dispatcher = Dispatcher(routing=routing, integrations=integrations, outbox=outbox, clock=clock)
    sender = Sender(outbox, dispatcher.integration, clock=clock, policy=policy, owner=owner)
    return Process(engine=engine, outbox=outbox, dispatcher=dispatcher, sender=sender)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'controlplane.db'}"


# -- durability across a restart -------------------------------------------------------------


def test_a_decision_survives_a_crash_before_sending_and_is_sent_once(
    db_url: str, clock: FakeClock
) -> None:
    remote: dict[str, RecordingNotifier] = {}  # the receivers outlive our process
    first = start(db_url, clock, remote)
    first.dispatcher.put([alert("A")])
    first.dispatcher.tick(clock.at(seconds=30))  # decided: in the log and the outbox
    first.crash()  # before any sender ran
    assert remote["team"].sent == []

    second = start(db_url, clock, remote)
    assert second.sender.run_once(clock.at(seconds=31)) == 1
    assert [s.names for s in remote["team"].sent] == [["A"]]
    # the rule engine re-sends the alert to the new process: its log knows it was told
    second.dispatcher.put([alert("A")])
    for second_ in range(31, 400, 5):
        second.dispatcher.tick(clock.at(seconds=second_))
        second.sender.run_once()
    assert len(remote["team"].sent) == 1


def test_a_sent_notification_is_not_resent_and_repeat_interval_holds_after_restart(
    db_url: str, clock: FakeClock
) -> None:
    remote: dict[str, RecordingNotifier] = {}
    first = start(db_url, clock, remote)
    first.dispatcher.put([alert("A")])
    first.dispatcher.tick(clock.at(seconds=30))
    assert first.sender.run_once() == 1
    first.crash()

    second = start(db_url, clock, remote)
    assert second.sender.run_once(clock.at(seconds=40)) == 0
    second.dispatcher.put([alert("A")])  # re-sent by the rules after the restart
    sent_at = []
    for t in range(40, 30 + 3600 + 700, 10):
        before = len(remote["team"].sent)
        second.dispatcher.tick(clock.at(seconds=t))
        second.sender.run_once()
        if len(remote["team"].sent) > before:
            sent_at.append(t)
    # the alert is older than group_wait: the new group flushes at once (40 s), then every 5m;
    # the first flush past 1h after the send at 30 s repeats it
    assert sent_at == [40 + 300 * 12]
    assert len(remote["team"].sent) == 2


def test_a_row_held_by_a_dead_sender_is_claimed_again_when_its_lease_expires(
    db_url: str, clock: FakeClock
) -> None:
    """The one window where a notification may go twice: sent, then the process died before
    marking it. Taken over after the lease, it is sent again (PagerDuty's dedup_key and
    Slack's in-place updates absorb the repeat)."""
    remote: dict[str, RecordingNotifier] = {}
    policy = replace(TEST_POLICY, lease=timedelta(minutes=2))
    first = start(db_url, clock, remote, policy=policy, owner="first")
    first.dispatcher.put([alert("A")])
    first.dispatcher.tick(clock.at(seconds=30))
    claimed = first.outbox.claim("first", clock.now, lease=policy.lease, pace=policy.pace)
    assert claimed is not None and claimed.attempts == 1
    first.crash()  # mid-send: the lease is still held

    second = start(db_url, clock, remote, policy=policy, owner="second")
    assert second.sender.run_once(clock.at(seconds=30 + 119)) == 0
    assert second.sender.next_due() == T0 + timedelta(seconds=30 + 120)
    assert second.sender.run_once(clock.at(seconds=30 + 120)) == 1
    assert len(remote["team"].sent) == 1
    # the dead holder's outcome can no longer overwrite the new one
    assert not second.outbox.mark_sent(claimed, clock.now)
    (row,) = second.outbox.rows()
    assert row.state is State.SENT and row.attempts == 2


# -- pacing, Retry-After, order --------------------------------------------------------------


class PacedNotifier(RecordingNotifier):
    def __init__(self, key: str | None) -> None:
        super().__init__()
        self.key = key

    def pace_key(self) -> str | None:
        return self.key


PACED = replace(TEST_POLICY, pace=timedelta(seconds=1))


def paced(
    clock: FakeClock,
    notifiers: dict[str, RecordingNotifier],
    registry: CollectorRegistry | None = None,
) -> tuple[Dispatcher, Sender]:
    """Groups flushed at once, to senders paced at one message a second per key."""
    outbox = memory_outbox()
    dispatcher = Dispatcher(
        routing=routing_from(CONFIG.replace("group_wait: 30s", "group_wait: 0s")),
        integrations={
            name: (Integration(name="test[0]", notifier=notifier),)
            for name, notifier in notifiers.items()
        },
        outbox=outbox,
        clock=clock,
    )
    sender = Sender(outbox, dispatcher.integration, clock=clock, policy=PACED, registry=registry)
    return dispatcher, sender


def test_one_message_a_second_per_pace_key(clock: FakeClock) -> None:
    channel = PacedNotifier("#alerts")
    dispatcher, sender = paced(clock, {"team": channel, "other": PacedNotifier("#other")})
    dispatcher.put([alert(n) for n in ("A", "B", "C")])
    dispatcher.tick(clock.at(seconds=0))
    assert sender.run_once() == 1  # three groups for one channel: one now
    clock.at(seconds=0.5)
    assert sender.run_once() == 0
    assert sender.run_once(clock.at(seconds=1)) == 1
    assert sender.run_once(clock.at(seconds=2)) == 1
    assert [s.names for s in channel.sent] == [["A"], ["B"], ["C"]]


def test_pace_keys_are_independent(clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    outbox = memory_outbox()
    lookup = lambda r, i: Integration(name=i, notifier=notifier)  # noqa: E731
    sender = Sender(outbox, lookup, clock=clock, policy=PACED)
    outbox.record([_decision("k1", "A", pace="#a"), _decision("k2", "B", pace="#b")], T0)
    outbox.record([_decision("k3", "C", pace="#a"), _decision("k4", "D", pace=None)], T0)
    assert sender.run_once(T0) == 3  # #a once, #b, and the unpaced one
    assert sender.run_once(T0 + timedelta(seconds=1)) == 1


def _decision(key: str, name: str, *, receiver: str = "team", pace: str | None = None) -> Decision:
    firing = replace(alert(name), ends_at=None)
    group = GroupKey(route_key="{}", labels=(("alertname", name),))
    line = LogLine(
        key=key,
        receiver=receiver,
        integration="test[0]",
        group_key=str(group),
        entry=LogEntry(firing=frozenset({firing.fingerprint}), resolved=frozenset(), sent_at=T0),
    )
    message = Message(
        receiver=receiver,
        integration="test[0]",
        group_key=group,
        alerts=(firing,),
        status=AlertStatus.FIRING,
        pace_key=pace,
    )
    return Decision(line=line, message=message)


def test_retry_after_holds_the_row_and_its_whole_pace_key(clock: FakeClock) -> None:
    channel = PacedNotifier("#alerts")
    channel.failures = [RetryAfter("429", seconds=7)]
    registry = CollectorRegistry()
    dispatcher, sender = paced(clock, {"team": channel, "other": PacedNotifier("#x")}, registry)
    dispatcher.put([alert("A"), alert("B")])
    dispatcher.tick(clock.at(seconds=0))
    assert sender.run_once() == 1 and channel.sent == []  # asked to wait 7 s
    for t in range(1, 7):
        assert sender.run_once(clock.at(seconds=t)) == 0  # neither row: the key is held
    assert sender.run_once(clock.at(seconds=7)) == 1
    assert sender.run_once(clock.at(seconds=8)) == 1
    assert sorted(n for s in channel.sent for n in s.names) == ["A", "B"]
    labels = {"integration": "test", "outcome": "rate_limited"}
    assert registry.get_sample_value("controlplane_notify_deliveries_total", labels) == 1.0


def test_rows_of_one_group_go_in_order(clock: FakeClock) -> None:
    notifier = RecordingNotifier(failures=[NotifyError("503")])
    outbox = memory_outbox()
    sender = Sender(
        outbox,
        lambda r, i: Integration(name=i, notifier=notifier),
        clock=clock,
        policy=TEST_POLICY,
    )
    outbox.record([_decision("same", "First")], T0)
    assert sender.run_once(T0) == 1  # fails: retry at T0 + 1 s
    outbox.record([_decision("same", "Second")], T0)
    assert sender.run_once(T0) == 0  # the newer waits for the older
    assert sender.run_once(T0 + timedelta(seconds=1)) == 2
    assert [s.names for s in notifier.sent] == [["First"], ["Second"]]


# -- giving up --------------------------------------------------------------------------------


def test_a_refusal_is_a_dead_letter_audited_counted_and_forgotten_by_the_log(
    tmp_path: Path, clock: FakeClock
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cp.db'}")
    install(engine)
    audit = AuditLog(engine)
    registry = CollectorRegistry()
    notifier = RecordingNotifier(failures=[NotifyError("400 bad payload", retryable=False)])
    outbox = Outbox(engine)
    outbox.create_tables()
    sender = Sender(
        outbox,
        lambda r, i: Integration(name=i, notifier=notifier),
        clock=clock,
        policy=TEST_POLICY,
        audit=audit,
        registry=registry,
    )
    outbox.record([_decision("k", "A")], T0)
    assert outbox.nflog.get("k") is not None
    assert sender.run_once(T0) == 1
    (row,) = outbox.rows(State.DEAD)
    assert row.last_error == "NotifyError: 400 bad payload" and row.attempts == 1
    assert outbox.nflog.get("k") is None  # the next flush decides again
    assert (
        registry.get_sample_value("controlplane_notify_dead_letters_total", {"integration": "test"})
        == 1.0
    )
    assert registry.get_sample_value("controlplane_notify_outbox_dead_letters") == 1.0
    (event,) = audit.events()
    assert event.kind == "notification_failed" and event.data["error"] == row.last_error
    assert event.data["alertnames"] == ["A"]
    engine.dispose()


def test_a_receiver_removed_by_a_reload_dead_letters_its_rows(clock: FakeClock) -> None:
    outbox = memory_outbox()
    sender = Sender(outbox, lambda r, i: None, clock=clock, policy=TEST_POLICY)
    outbox.record([_decision("k", "A")], T0)
    assert sender.run_once(T0) == 1
    (row,) = outbox.rows(State.DEAD)
    assert "has no test[0] any more" in (row.last_error or "")


def test_outbox_depth_and_oldest_age(clock: FakeClock) -> None:
    outbox = memory_outbox()
    registry = CollectorRegistry()
    Sender(outbox, lambda r, i: None, clock=clock, policy=TEST_POLICY, registry=registry)
    assert registry.get_sample_value("controlplane_notify_outbox_depth") == 0.0
    outbox.record([_decision("k1", "A"), _decision("k2", "B")], T0)
    clock.at(seconds=90)
    assert registry.get_sample_value("controlplane_notify_outbox_depth") == 2.0
    assert registry.get_sample_value("controlplane_notify_outbox_oldest_age_seconds") == 90.0


def test_upkeep_forgets_old_rows(clock: FakeClock) -> None:
    outbox = memory_outbox()
    notifier = RecordingNotifier()
    sender = Sender(
        outbox, lambda r, i: Integration(name=i, notifier=notifier), clock=clock, policy=TEST_POLICY
    )
    outbox.record([_decision("k", "A")], T0)
    sender.run_once(T0)
    sender.upkeep(T0 + timedelta(hours=23))
    assert len(outbox.rows()) == 1
    sender.upkeep(T0 + timedelta(hours=25))  # a day after it was sent: the row goes
    assert outbox.rows() == [] and outbox.nflog.get("k") is not None
    sender.upkeep(T0 + timedelta(days=6))  # past the log's retention (120 h)
    assert outbox.nflog.get("k") is None


# -- two senders ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = (
        f"sqlite:///{tmp_path}/race.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_schema")
    )
    eng = create_engine(url)
    yield eng
    eng.dispose()


class CountingNotifier:
    """Counts deliveries per group; lingers a little so that senders overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        with self.lock:
            self.counts[str(group_key)] = self.counts.get(str(group_key), 0) + 1
        threading.Event().wait(0.002)


def test_two_senders_never_deliver_the_same_row_twice(engine: sa.Engine) -> None:
    outbox = Outbox(engine)
    outbox.create_tables()
    notifier = CountingNotifier()
    rows = 40
    # a few pace keys, so that the pace slots are raced for too; pace 0 keeps it quick
    outbox.record([_decision(f"k{i}", f"A{i}", pace=f"#{i % 3}") for i in range(rows)], T0)
    outbox.record([_decision("k0", "A0-again", pace="#0")], T0)  # a second row of one group
    senders = [
        Sender(
            Outbox(engine),
            lambda r, i: Integration(name=i, notifier=notifier),
            policy=replace(TEST_POLICY, pace=timedelta(seconds=0.001)),
            owner=f"sender-{n}",
        )
        for n in range(3)
    ]
    errors: list[BaseException] = []

    def drain(sender: Sender) -> None:
        try:
            for _ in range(2000):
                sender.run_once()
                if outbox.stats().depth == 0:
                    return
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert outbox.stats().depth == 0
    assert sum(notifier.counts.values()) == rows + 1
    assert all(count == 1 for count in notifier.counts.values()), notifier.counts
    assert {r.state for r in outbox.rows()} == {State.SENT}
