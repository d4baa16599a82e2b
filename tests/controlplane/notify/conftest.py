"""Fixtures of the notification tests: a fake clock, a recording notifier, served apps, and a
dispatcher whose tick also runs its sender once (delivery as if instant)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import CollectorRegistry
from requests import Session
from sqlalchemy.pool import StaticPool

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.dispatch import Dispatcher, SilenceSource
from controlplane.notify.notifiers import Backoff, BuildContext, Integration, build_integrations
from controlplane.notify.outbox import Outbox
from controlplane.notify.routing import RoutingConfig, parse_routing
from controlplane.notify.sender import AuditSink, Sender, SendPolicy
from controlplane.notify.silences import SilenceStore
from tests.conftest import ServedApp

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, **delta: float) -> datetime:
        """Set the time to T0 + delta."""
        self.now = T0 + timedelta(**delta)
        return self.now


@dataclass
class Sent:
    group_key: GroupKey
    receiver: str
    alerts: tuple[Alert, ...]
    status: AlertStatus

    @property
    def names(self) -> list[str]:
        return [dict(a.labels).get("alertname", "") for a in self.alerts]

    @property
    def statuses(self) -> list[str]:
        return [a.notified_status.value for a in self.alerts]


@dataclass
class RecordingNotifier:
    """Records each notification; raises the queued exceptions first, one per call."""

    sent: list[Sent] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    calls: int = 0

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(Sent(group_key, receiver, tuple(alerts), status))


def routing_from(text: str) -> RoutingConfig:
    return parse_routing(yaml.safe_load(text), source="test.yml")


def alert(
    name: str,
    *,
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
    **labels: str,
) -> Alert:
    return Alert.of({"alertname": name, **labels}, starts_at=starts_at, ends_at=ends_at)


# unpaced, so that a tick delivers every group it flushed; pacing has tests of its own
TEST_POLICY = SendPolicy(
    backoff=Backoff(initial=timedelta(seconds=1), factor=2, maximum=timedelta(seconds=30)),
    max_attempts=6,
    pace=timedelta(0),
)


def memory_outbox() -> Outbox:
    """An outbox in a private in-memory SQLite database (one connection, shared by threads)."""
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    outbox = Outbox(engine)
    outbox.create_tables()
    return outbox


class DeliveringDispatcher(Dispatcher):
    """A dispatcher whose `tick` also runs its sender once at the same time, so tests written
    for synchronous delivery read as before; `sender` is there for the retry tests."""

    sender: Sender

    def tick(self, now: datetime | None = None) -> None:
        super().tick(now)
        self.sender.run_once(now)


def make_dispatcher(
    routing: RoutingConfig,
    clock: FakeClock,
    notifiers: dict[str, RecordingNotifier],
    *,
    send_resolved: bool = True,
    silences: SilenceSource | None = None,
    outbox: Outbox | None = None,
    policy: SendPolicy = TEST_POLICY,
) -> DeliveringDispatcher:
    """One recording integration per receiver (`notifiers[name]`, created when missing)."""
    integrations = {}
    for name in routing.receivers:
        notifier = notifiers.setdefault(name, RecordingNotifier())
        integrations[name] = (
            Integration(name="test[0]", notifier=notifier, send_resolved=send_resolved),
        )
    outbox = outbox or memory_outbox()
    dispatcher = DeliveringDispatcher(
        routing=routing, integrations=integrations, outbox=outbox, silences=silences, clock=clock
    )
    dispatcher.sender = Sender(outbox, dispatcher.integration, clock=clock, policy=policy)
    return dispatcher


@dataclass
class Wired:
    """A dispatcher and a sender over one outbox, with the integrations routing configures."""

    dispatcher: Dispatcher
    sender: Sender
    outbox: Outbox

    def tick(self, now: datetime) -> int:
        """Flush what is due at `now`, then deliver what is due; how many were attempted."""
        self.dispatcher.tick(now)
        return self.sender.run_once(now)


def wire(
    routing: RoutingConfig,
    engine: sa.Engine,
    clock: Callable[[], datetime],
    *,
    ctx: BuildContext | None = None,
    policy: SendPolicy = TEST_POLICY,
    audit: AuditSink | None = None,
    registry: CollectorRegistry | None = None,
) -> Wired:
    outbox = Outbox(engine)
    outbox.create_tables()
    integrations = build_integrations(routing.receivers, ctx or BuildContext(session=Session()))
    dispatcher = Dispatcher(routing=routing, integrations=integrations, outbox=outbox, clock=clock)
    sender = Sender(
        outbox, dispatcher.integration, clock=clock, policy=policy, audit=audit, registry=registry
    )
    return Wired(dispatcher=dispatcher, sender=sender, outbox=outbox)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'controlplane.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def silence_store(sqlite_engine: sa.Engine, clock: FakeClock) -> SilenceStore:
    store = SilenceStore(sqlite_engine, clock=clock)
    store.create_tables()
    return store


@pytest.fixture
def serve() -> Iterator[Callable[[Any], ServedApp]]:
    served: list[ServedApp] = []

    def start(app: Any) -> ServedApp:
        served.append(ServedApp(app))
        return served[-1]

    yield start
    for item in reversed(served):
        item.close()
