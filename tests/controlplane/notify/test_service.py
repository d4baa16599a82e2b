from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client import CollectorRegistry

from controlplane.api.notify import create_blueprint
from controlplane.notify.runner import DispatcherRunner
from controlplane.notify.service import build_notify
from controlplane.operate import Silencing
from tests.conftest import ROOT
from tests.controlplane.notify.conftest import (
    RecordingNotifier,
    alert,
    make_dispatcher,
    routing_from,
)
from tests.people import people


def test_runner_ticks_in_real_time() -> None:
    notifiers: dict[str, RecordingNotifier] = {}
    routing = routing_from("route: {receiver: r, group_wait: 0s}\nreceivers: [{name: r}]")
    dispatcher = make_dispatcher(routing, lambda: datetime.now(UTC), notifiers)  # type: ignore[arg-type]
    runner = DispatcherRunner(dispatcher, max_sleep_s=0.2)
    runner.start()
    try:
        dispatcher.put([alert("A", starts_at=datetime.now(UTC))])
        deadline = time.monotonic() + 5
        while not notifiers["r"].sent and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert [s.names for s in notifiers["r"].sent] == [["A"]]


def test_build_notify_from_the_shipped_routing(
    sqlite_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    notify = build_notify(
        routing=ROOT / "config" / "routing.yml",
        engine=sqlite_engine,
        registry=registry,
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
    assert "receiver=oncall status=firing" in caplog.text
    sent = registry.get_sample_value("controlplane_notifications_total", {"integration": "log"})
    assert sent == 1.0
