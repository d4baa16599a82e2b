from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client import CollectorRegistry

from controlplane.api.notify import create_blueprint
from controlplane.audit import AuditLog, install
from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.notifiers import Integration
from controlplane.notify.outbox import Outbox
from controlplane.notify.runner import DispatcherRunner, SenderRunner
from controlplane.notify.sender import Sender
from controlplane.notify.service import build_notify
from controlplane.operate import Silencing
from tests.conftest import ROOT
from tests.controlplane.notify.conftest import (
    TEST_POLICY,
    RecordingNotifier,
    alert,
    routing_from,
)
from tests.people import people


def test_runner_ticks_and_sends_in_real_time(sqlite_engine: sa.Engine) -> None:
    """The production threads: the dispatcher decides, sender threads of their own deliver."""
    notifier = RecordingNotifier()
    routing = routing_from("route: {receiver: r, group_wait: 0s}\nreceivers: [{name: r}]")
    outbox = Outbox(sqlite_engine)
    outbox.create_tables()
    integrations = {"r": (Integration(name="test[0]", notifier=notifier),)}
    dispatcher = Dispatcher(routing=routing, integrations=integrations, outbox=outbox)
    sender = Sender(outbox, dispatcher.integration, policy=TEST_POLICY)
    senders = SenderRunner(sender, workers=2, max_sleep_s=0.2)
    runner = DispatcherRunner(dispatcher, senders=senders, max_sleep_s=0.2)
    runner.start()
    try:
        dispatcher.put([alert("A", starts_at=datetime.now(UTC))])
        deadline = time.monotonic() + 5
        while not notifier.sent and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert [s.names for s in notifier.sent] == [["A"]]


def test_build_notify_from_the_shipped_routing(
    sqlite_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    install(sqlite_engine)
    audit = AuditLog(sqlite_engine)
    notify = build_notify(
        routing=ROOT / "config" / "routing.yml",
        engine=sqlite_engine,
        registry=registry,
        audit=audit,
        create_tables=True,
    )
    app = Flask(__name__)
    app.register_blueprint(
        create_blueprint(
            dispatcher=notify.dispatcher,
            silencing=Silencing(silences=notify.silences),
            access=people(),
        )
    )
    client = app.test_client()
    assert client.get("/api/v1/silences").json == {"silences": []}
    old = datetime(2024, 1, 1, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="controlplane.notify.log"):
        notify.dispatcher.put([alert("Burn", severity="page", region="eu", starts_at=old)])
        notify.dispatcher.tick()
        assert caplog.text == ""  # decided, not sent: the outbox holds it
        assert registry.get_sample_value("controlplane_notify_outbox_depth") == 1.0
        assert notify.sender.run_once() == 1
    assert "receiver=oncall status=firing" in caplog.text
    sent = registry.get_sample_value("controlplane_notifications_total", {"integration": "log"})
    assert sent == 1.0
    assert registry.get_sample_value("controlplane_notify_outbox_depth") == 0.0
    outcome = {"integration": "log", "outcome": "sent"}
    assert registry.get_sample_value("controlplane_notify_deliveries_total", outcome) == 1.0
    (event,) = [e for e in audit.events() if e.kind == "notified"]
    assert event.actor == "controlplane"
    assert {k: event.data[k] for k in ("receiver", "integration", "status", "alertnames")} == {
        "receiver": "oncall",
        "integration": "log[0]",
        "status": "firing",
        "alertnames": ["Burn"],
    }
