from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from controlplane.model.series import labels_from
from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.errors import NotifyError
from controlplane.notify.notifiers import (
    BuildContext,
    LogNotifier,
    WebhookNotifier,
    build_integrations,
)
from controlplane.notify.sender import Sender
from tests.conftest import free_port
from tests.controlplane.notify.conftest import T0, FakeClock, memory_outbox, routing_from


class Hook:
    """A real HTTP server on 127.0.0.1 that records what it is POSTed."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.bodies.append(json.loads(raw))
                hook.headers.append(dict(self.headers))
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


KEY = GroupKey(route_key='{}/{severity="page"}', labels=labels_from({"alertname": "Burn"}))
FIRING = Alert.of(
    {"alertname": "Burn", "severity": "page", "region": "eu"},
    starts_at=T0,
    annotations={"summary": "eu burns", "runbook": "isolate"},
    generator_url="http://cp/graph",
)
RESOLVED = Alert.of(
    {"alertname": "Burn", "severity": "page", "region": "latam"},
    starts_at=T0,
    ends_at=T0 + timedelta(minutes=3, microseconds=500000),
    annotations={"summary": "latam burns", "runbook": "isolate"},
)


def test_webhook_posts_version_4_json(hook: Hook, session: requests.Session) -> None:
    notifier = WebhookNotifier(url=hook.url, session=session, external_url="http://cp:8000")
    notifier.notify(KEY, "oncall", [FIRING, RESOLVED], AlertStatus.FIRING)
    (body,) = hook.bodies
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert body == {
        "version": "4",
        "groupKey": '{}/{severity="page"}:{alertname="Burn"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall",
        "groupLabels": {"alertname": "Burn"},
        "commonLabels": {"alertname": "Burn", "severity": "page"},
        "commonAnnotations": {"runbook": "isolate"},
        "externalURL": "http://cp:8000",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Burn", "severity": "page", "region": "eu"},
                "annotations": {"summary": "eu burns", "runbook": "isolate"},
                "startsAt": "2024-05-01T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://cp/graph",
                "fingerprint": FIRING.fingerprint,
            },
            {
                "status": "resolved",
                "labels": {"alertname": "Burn", "severity": "page", "region": "latam"},
                "annotations": {"summary": "latam burns", "runbook": "isolate"},
                "startsAt": "2024-05-01T12:00:00Z",
                "endsAt": "2024-05-01T12:03:00.5Z",
                "generatorURL": "",
                "fingerprint": RESOLVED.fingerprint,
            },
        ],
    }


def test_max_alerts_truncates(hook: Hook, session: requests.Session) -> None:
    notifier = WebhookNotifier(url=hook.url, session=session, max_alerts=1)
    notifier.notify(KEY, "oncall", [RESOLVED, FIRING], AlertStatus.FIRING)
    (body,) = hook.bodies
    assert body["truncatedAlerts"] == 1 and len(body["alerts"]) == 1
    assert body["status"] == "resolved"  # as Alertmanager: it describes what is sent


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False)]
)
def test_webhook_failures(
    hook: Hook, session: requests.Session, status: int, retryable: bool
) -> None:
    hook.status = status
    notifier = WebhookNotifier(url=hook.url, session=session)
    with pytest.raises(NotifyError) as info:
        notifier.notify(KEY, "oncall", [FIRING], AlertStatus.FIRING)
    assert info.value.retryable is retryable
    assert str(status) in str(info.value)


def test_unreachable_webhook_is_retryable(session: requests.Session) -> None:
    notifier = WebhookNotifier(
        url=f"http://127.0.0.1:{free_port()}/x", session=session, timeout_s=2
    )
    with pytest.raises(NotifyError) as info:
        notifier.notify(KEY, "oncall", [FIRING], AlertStatus.FIRING)
    assert info.value.retryable


def test_log_notifier(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="controlplane.notify.log"):
        LogNotifier().notify(KEY, "oncall", [FIRING], AlertStatus.FIRING)
        LogNotifier().notify(KEY, "oncall", [RESOLVED], AlertStatus.RESOLVED)
    first, second = caplog.records
    assert first.levelno == logging.WARNING and "receiver=oncall status=firing" in first.message
    assert second.levelno == logging.INFO and "names=Burn" in second.message


def test_dispatch_through_a_configured_webhook(
    hook: Hook, session: requests.Session, clock: FakeClock
) -> None:
    routing = routing_from(
        f"""
route: {{receiver: hooks, group_by: [alertname], group_wait: 5s}}
receivers:
  - name: hooks
    webhook_configs: [{{url: "{hook.url}", send_resolved: false}}]
    log_configs: [{{}}]
"""
    )
    integrations = build_integrations(routing.receivers, BuildContext(session=session))
    assert [i.name for i in integrations["hooks"]] == ["webhook[0]", "log[0]"]
    assert [i.send_resolved for i in integrations["hooks"]] == [False, True]
    outbox = memory_outbox()
    dispatcher = Dispatcher(routing=routing, integrations=integrations, outbox=outbox, clock=clock)
    dispatcher.put([FIRING])
    clock.at(seconds=5)
    dispatcher.tick()
    assert hook.bodies == []  # decided, in the outbox: the sender delivers
    assert Sender(outbox, dispatcher.integration, clock=clock).run_once() == 2
    (body,) = hook.bodies
    assert body["groupKey"] == '{}:{alertname="Burn"}' and body["receiver"] == "hooks"
    assert body["alerts"][0]["fingerprint"] == FIRING.fingerprint
