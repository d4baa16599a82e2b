"""The Slack stand-in served on 127.0.0.1, and what the message tests build on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey, group_status
from controlplane.notify.receivers import SlackConfig
from controlplane.notify.slack import SlackMessages, SlackNotifier, web_client
from controlplane.slack.standin import StandinConfig, create_app
from tests.conftest import ServedApp

TOKEN = "xoxb-test-token"
T0 = datetime(2026, 3, 2, 11, 15, 30, tzinfo=UTC)
KEY = GroupKey(route_key="{}", labels=(("alertname", "ProviderDown"), ("region", "eu")))


class Standin:
    def __init__(self, channels: Sequence[str] = ("alerts", "oncall")) -> None:
        self.served = ServedApp(create_app(StandinConfig(token=TOKEN, channels=tuple(channels))))
        self.url = self.served.url
        self.api_url = f"{self.url}/api/"

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        params = {"channel": channel} if channel else {}
        found: list[dict[str, Any]] = requests.get(
            f"{self.url}/stand-in/messages", params=params, timeout=5
        ).json()["messages"]
        return found

    def calls(self) -> list[str]:
        calls = requests.get(f"{self.url}/stand-in/calls", timeout=5).json()["calls"]
        return [c["method"] for c in calls]

    def fault(self, status: int, **more: Any) -> None:
        resp = requests.post(
            f"{self.url}/stand-in/faults", json={"status": status, **more}, timeout=5
        )
        assert resp.status_code == 201, resp.text


def served_standin() -> Iterator[Standin]:
    """The body of each test module's `standin` fixture: served until the test ends."""
    served = Standin()
    try:
        yield served
    finally:
        served.served.close()


def messages_on(path: Path) -> tuple[SlackMessages, sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{path}")
    messages = SlackMessages(engine)
    messages.create_tables()
    return messages, engine


def notifier(
    standin: Standin, messages: SlackMessages, *, token: str = TOKEN, **config: Any
) -> SlackNotifier:
    return SlackNotifier(
        config=SlackConfig(**{"channel": "#alerts", **config}),
        client=web_client(standin.api_url, token),
        messages=messages,
        external_url="http://cp.example:8000",
    )


def alert(provider: str, *, ends_at: datetime | None = None, **labels: str) -> Alert:
    return Alert.of(
        {"alertname": "ProviderDown", "region": "eu", "severity": "page", "provider": provider}
        | labels,
        starts_at=T0,
        ends_at=ends_at,
        annotations={"summary": f"{provider} is down", "runbook_url": "http://docs/ProviderDown"},
    )


def send(notifier: SlackNotifier, alerts: Sequence[Alert], key: GroupKey = KEY) -> None:
    status: AlertStatus = group_status(alerts)
    notifier.notify(key, "oncall", alerts, status)
