from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from controlplane.model.series import labels_from
from controlplane.notify.errors import SilenceError, SilenceExpired, SilenceNotFound
from controlplane.notify.matchers import parse_matchers
from controlplane.notify.silences import Silence, SilenceState, SilenceStore
from tests.controlplane.notify.conftest import (
    T0,
    FakeClock,
    RecordingNotifier,
    alert,
    make_dispatcher,
    routing_from,
)


def add(store: SilenceStore, text: str, *, start_s: float = 0, end_s: float = 3600) -> str:
    return store.add(
        matchers=parse_matchers(text),
        starts_at=T0 + timedelta(seconds=start_s),
        ends_at=T0 + timedelta(seconds=end_s),
        created_by="alice",
        comment="maintenance",
    ).id


def test_states_follow_the_clock(silence_store: SilenceStore, clock: FakeClock) -> None:
    later = add(silence_store, "alertname=A", start_s=600, end_s=1200)
    now = add(silence_store, "alertname=B", end_s=300)
    states = {s.id: s.state_at(clock.now) for s in silence_store.list_silences()}
    assert states == {later: SilenceState.PENDING, now: SilenceState.ACTIVE}
    assert [s.id for s in silence_store.active()] == [now]
    clock.at(seconds=700)
    assert [s.id for s in silence_store.list_silences(SilenceState.ACTIVE)] == [later]
    assert [s.id for s in silence_store.list_silences(SilenceState.EXPIRED)] == [now]
    assert silence_store.list_silences(SilenceState.PENDING) == []
    clock.at(seconds=1200)
    assert silence_store.active() == []


def test_expire_sets_the_end_to_now(silence_store: SilenceStore, clock: FakeClock) -> None:
    active = add(silence_store, "alertname=A")
    pending = add(silence_store, "alertname=B", start_s=600)
    clock.at(seconds=60)
    expired = silence_store.expire(active)
    assert expired.ends_at == clock.now and expired.starts_at == T0
    assert expired.state_at(clock.now) is SilenceState.EXPIRED
    ended = silence_store.expire(pending)
    assert ended.starts_at == ended.ends_at == clock.now
    assert silence_store.get(active).ends_at == clock.now
    with pytest.raises(SilenceExpired):
        silence_store.expire(active)
    with pytest.raises(SilenceNotFound):
        silence_store.expire("nope")


@pytest.mark.parametrize(
    ("matchers", "end_s", "message"),
    [
        ("alertname=~.*", 3600, "must not match the empty string"),
        ('severity="", team!~.+', 3600, "must not match the empty string"),
        ("alertname=A", 60, "ends_at .* must be after starts_at"),
    ],
)
def test_invalid_silences_are_refused(
    silence_store: SilenceStore, clock: FakeClock, matchers: str, end_s: float, message: str
) -> None:
    clock.at(seconds=120)
    with pytest.raises(SilenceError, match=message):
        add(silence_store, matchers, end_s=end_s)
    assert silence_store.list_silences() == []


def test_a_new_silence_never_starts_in_the_past(
    silence_store: SilenceStore, clock: FakeClock
) -> None:
    clock.at(seconds=100)
    silence = silence_store.get(add(silence_store, "alertname=A", start_s=-500))
    assert silence.starts_at == clock.now


@pytest.mark.parametrize(
    ("matchers", "labels", "muted"),
    [
        ("alertname=A", {"alertname": "A", "region": "eu"}, True),
        ("alertname=A", {"alertname": "B"}, False),
        ('alertname=A, region=~"eu|latam"', {"alertname": "A", "region": "latam"}, True),
        ('alertname=A, region=~"eu|latam"', {"alertname": "A", "region": "eu-west"}, False),
        ("alertname=A, region!=eu", {"alertname": "A", "region": "latam"}, True),
        ("alertname=A, region!=eu", {"alertname": "A", "region": "eu"}, False),
        ("alertname=A, region!=eu", {"alertname": "A"}, True),
        ("alertname=A, provider!~pv[12]", {"alertname": "A", "provider": "pv3"}, True),
        ("alertname=A, provider!~pv[12]", {"alertname": "A", "provider": "pv1"}, False),
    ],
)
def test_matching(
    silence_store: SilenceStore, matchers: str, labels: dict[str, str], muted: bool
) -> None:
    silence = silence_store.get(add(silence_store, matchers))
    assert silence.mutes(labels_from(labels)) is muted


def _restart_round_trip(url: str, clock: FakeClock) -> None:
    first = sa.create_engine(url)
    store = SilenceStore(first, clock=clock)
    store.create_tables()
    kept = add(store, 'alertname=A, region=~"eu|latam", team!="games"', start_s=60)
    gone = add(store, "alertname=B")
    store.expire(gone)
    first.dispose()
    second = sa.create_engine(url)
    try:
        again = SilenceStore(second, clock=clock)
        silence = again.get(kept)
        assert silence.matcher_strings == ['alertname="A"', 'region=~"eu|latam"', 'team!="games"']
        assert silence.starts_at == T0 + timedelta(seconds=60)
        assert silence.ends_at == T0 + timedelta(seconds=3600)
        assert (silence.created_by, silence.comment) == ("alice", "maintenance")
        assert again.get(gone).state_at(clock.now) is SilenceState.EXPIRED
        assert [s.id for s in again.list_silences(SilenceState.PENDING)] == [kept]
        clock.at(seconds=60)
        assert [s.id for s in again.active()] == [kept]
    finally:
        second.dispose()


def test_persisted_across_a_restart_sqlite(tmp_path: Path, clock: FakeClock) -> None:
    _restart_round_trip(f"sqlite:///{tmp_path / 'cp.db'}", clock)


@pytest.mark.postgres
def test_persisted_across_a_restart_postgres(postgres_schema: str, clock: FakeClock) -> None:
    _restart_round_trip(postgres_schema, clock)


CONFIG = """
route:
  receiver: team
  group_by: [alertname, region]
  group_wait: 10s
  group_interval: 1m
receivers: [{name: team}]
inhibit_rules:
  - source_matchers: [severity=page]
    target_matchers: [severity=ticket]
    equal: [region]
"""


def test_silenced_alerts_are_not_notified(silence_store: SilenceStore, clock: FakeClock) -> None:
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(CONFIG), clock, notifiers, silences=silence_store)
    silence = add(silence_store, "alertname=A, region=~eu|latam", end_s=300)
    dispatcher.put([alert("A", region="eu"), alert("A", region="us"), alert("B", region="eu")])
    clock.at(seconds=10)
    dispatcher.tick()
    sent = notifiers["team"].sent
    assert sorted(str(s.group_key) for s in sent) == [
        '{}:{alertname="A", region="us"}',
        '{}:{alertname="B", region="eu"}',
    ]
    clock.at(seconds=30)
    silence_store.expire(silence)
    clock.at(seconds=70)
    dispatcher.tick()
    assert [str(s.group_key) for s in sent[2:]] == ['{}:{alertname="A", region="eu"}']


def test_a_silence_ending_lets_the_notification_through(
    silence_store: SilenceStore, clock: FakeClock
) -> None:
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(CONFIG), clock, notifiers, silences=silence_store)
    add(silence_store, "alertname=A", end_s=100)
    dispatcher.put([alert("A", region="eu")])
    for second in (10, 70):
        clock.at(seconds=second)
        dispatcher.tick()
    assert notifiers["team"].sent == []
    clock.at(seconds=130)
    dispatcher.tick()
    assert len(notifiers["team"].sent) == 1


def test_inhibition_needs_equal_labels(clock: FakeClock) -> None:
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(CONFIG), clock, notifiers)
    dispatcher.put(
        [
            alert("Burn", severity="page", region="eu"),
            alert("Slow", severity="ticket", region="eu"),  # inhibited: same region
            alert("Slow", severity="ticket", region="latam"),  # no page in latam
            alert("Other", severity="ticket"),  # lacks region; the page has one
        ]
    )
    clock.at(seconds=10)
    dispatcher.tick()
    keys = sorted(str(s.group_key) for s in notifiers["team"].sent)
    assert keys == [
        '{}:{alertname="Burn", region="eu"}',
        '{}:{alertname="Other"}',
        '{}:{alertname="Slow", region="latam"}',
    ]
    # the page resolves: the ticket is news at the next flush
    dispatcher.put([alert("Burn", severity="page", region="eu", ends_at=clock.now)])
    clock.at(seconds=70)
    dispatcher.tick()
    new = [str(s.group_key) for s in notifiers["team"].sent[3:]]
    assert '{}:{alertname="Slow", region="eu"}' in new


def test_an_alert_matching_both_sides_does_not_inhibit_itself(clock: FakeClock) -> None:
    config = """
route: {receiver: team, group_wait: 0s}
receivers: [{name: team}]
inhibit_rules: [{source_matchers: [team=wallet], target_matchers: [team=wallet], equal: [x]}]
"""
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(config), clock, notifiers)
    dispatcher.put([alert("A", team="wallet"), alert("B", team="wallet")])
    dispatcher.tick()
    assert sorted(notifiers["team"].sent[0].names) == ["A", "B"]


class FlakySilences:
    """Answers from a real store until the database 'goes away'."""

    def __init__(self, store: SilenceStore) -> None:
        self.store = store
        self.down = False

    def active(self, now: datetime | None = None) -> list[Silence]:
        if self.down:
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is gone"))
        return self.store.active(now)


def test_unreadable_silences_fall_back_to_the_last_read(
    silence_store: SilenceStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakySilences(silence_store)
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(CONFIG), clock, notifiers, silences=flaky)
    add(silence_store, "alertname=A")
    dispatcher.put([alert("A", region="eu")])
    clock.at(seconds=10)
    dispatcher.tick()
    flaky.down = True
    dispatcher.put([alert("B", region="eu")])
    clock.at(seconds=20)
    dispatcher.tick()
    assert [s.names for s in notifiers["team"].sent] == [["B"]]
    assert "cannot read silences; using the 1 last read" in caplog.text


def test_muted_resolved_alerts_still_leave_their_group(
    silence_store: SilenceStore, clock: FakeClock
) -> None:
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(CONFIG), clock, notifiers, silences=silence_store)
    add(silence_store, "alertname=A")
    dispatcher.put([alert("A", region="eu")])
    clock.at(seconds=10)
    dispatcher.tick()
    dispatcher.put([alert("A", region="eu", ends_at=clock.now)])
    clock.at(seconds=70)
    dispatcher.tick()
    assert notifiers["team"].sent == [] and dispatcher.groups() == []


def test_a_one_sided_source_mutes_two_sided_alerts(clock: FakeClock) -> None:
    config = """
route: {receiver: team, group_wait: 0s, group_by: [alertname]}
receivers: [{name: team}]
inhibit_rules: [{source_matchers: [severity=page], target_matchers: [team=wallet]}]
"""
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(routing_from(config), clock, notifiers)
    dispatcher.put([alert("Both", severity="page", team="wallet")])
    dispatcher.tick()
    assert [s.names for s in notifiers["team"].sent] == [["Both"]]
    dispatcher.put([alert("Target", team="wallet"), alert("Source", severity="page", team="games")])
    clock.advance(minutes=5)
    dispatcher.tick()
    assert sorted(n for s in notifiers["team"].sent[1:] for n in s.names) == ["Source"]


def test_old_expired_silences_are_forgotten(silence_store: SilenceStore, clock: FakeClock) -> None:
    gone = add(silence_store, "alertname=A", end_s=60)
    kept = add(silence_store, "alertname=B", end_s=7200)
    clock.at(hours=2)
    assert silence_store.delete_expired(timedelta(minutes=30)) == 1
    assert [s.id for s in silence_store.list_silences()] == [kept]
    with pytest.raises(SilenceNotFound):
        silence_store.get(gone)
