"""Fixtures of the notification tests: a fake clock, a recording notifier, served apps."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.dispatch import Backoff, Dispatcher, SilenceSource
from controlplane.notify.notifiers import Integration
from controlplane.notify.routing import RoutingConfig, parse_routing
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


def make_dispatcher(
    routing: RoutingConfig,
    clock: FakeClock,
    notifiers: dict[str, RecordingNotifier],
    *,
    send_resolved: bool = True,
    silences: SilenceSource | None = None,
) -> Dispatcher:
    """One recording integration per receiver (`notifiers[name]`, created when missing)."""
    integrations = {}
    for name in routing.receivers:
        notifier = notifiers.setdefault(name, RecordingNotifier())
        integrations[name] = (
            Integration(name="test[0]", notifier=notifier, send_resolved=send_resolved),
        )
    return Dispatcher(
        routing=routing,
        integrations=integrations,
        silences=silences,
        clock=clock,
        backoff=Backoff(initial=timedelta(seconds=1), factor=2, maximum=timedelta(seconds=30)),
    )


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
