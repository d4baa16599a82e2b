"""pagerduty_configs through the outbox, against a stand-in of the Events API v2 on 127.0.0.1:
trigger and resolve on one dedup_key, Retry-After, 5xx retried, dead letters."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from controlplane.audit import AuditLog, install
from controlplane.errors import ConfigError
from controlplane.notify.alerts import AlertStatus, GroupKey
from controlplane.notify.errors import NotifyError
from controlplane.notify.notifiers import BuildContext
from controlplane.notify.outbox import State
from controlplane.notify.pagerduty import PagerDutyNotifier, event
from controlplane.notify.receivers import PagerDutyConfig, parse_pagerduty
from controlplane.notify.routing import parse_routing
from tests.conftest import ServedApp
from tests.controlplane.notify.conftest import T0, FakeClock, Wired, alert, routing_from, wire
from tests.controlplane.notify.pagerduty_standin import EventsAPI

KEY = "0123456789abcdef0123456789abcdef"  # an integration key has 32 characters
EXTERNAL = "http://controlplane.example:8000"


@pytest.fixture
def api(serve: Callable[[Any], ServedApp]) -> Iterator[tuple[EventsAPI, str]]:
    standin = EventsAPI()
    yield standin, f"{serve(standin.app).url}/v2/enqueue"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def audit(sqlite_engine: sa.Engine) -> AuditLog:
    install(sqlite_engine)
    return AuditLog(sqlite_engine)


def plane(
    url: str,
    engine: sa.Engine,
    clock: FakeClock,
    session: requests.Session,
    **kwargs: Any,
) -> Wired:
    routing = routing_from(
        f"""
route: {{receiver: pager, group_by: [alertname], group_wait: 0s, group_interval: 1m}}
receivers:
  - name: pager
    pagerduty_configs:
      - routing_key: {KEY}
        url: {url}
        severity: critical
        class: availability
        component: wallet
        group: eu
        details: {{runbook: "https://runbooks.example/wallet"}}
"""
    )
    ctx = BuildContext(session=session, external_url=EXTERNAL)
    return wire(routing, engine, clock, ctx=ctx, **kwargs)


def test_trigger_then_resolve_on_one_dedup_key(
    api: tuple[EventsAPI, str],
    sqlite_engine: sa.Engine,
    clock: FakeClock,
    session: requests.Session,
    audit: AuditLog,
) -> None:
    standin, url = api
    cp = plane(url, sqlite_engine, clock, session, audit=audit)
    cp.dispatcher.put([alert("WalletDown", region="eu", severity="page")])
    assert cp.tick(clock.at(seconds=0)) == 1
    cp.dispatcher.put([alert("WalletDown", region="eu", severity="page", ends_at=clock.now)])
    assert cp.tick(clock.at(seconds=60)) == 1

    trigger, resolve = standin.events
    group = GroupKey(route_key="{}", labels=(("alertname", "WalletDown"),))
    dedup = hashlib.sha256(str(group).encode()).hexdigest()  # Alertmanager's
    assert trigger["dedup_key"] == resolve["dedup_key"] == dedup
    assert resolve == {"routing_key": KEY, "dedup_key": dedup, "event_action": "resolve"}
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == KEY
    assert trigger["client_url"] == EXTERNAL
    payload = trigger["payload"]
    assert payload["summary"] == "[FIRING:1] WalletDown (eu page)"
    assert (payload["severity"], payload["class"], payload["component"], payload["group"]) == (
        "critical",
        "availability",
        "wallet",
        "eu",
    )
    details = payload["custom_details"]
    assert details["num_firing"] == "1" and details["num_resolved"] == "0"
    assert " - alertname = WalletDown\n" in details["firing"]
    assert details["runbook"] == "https://runbooks.example/wallet"
    notified = [(e.kind, e.data["status"], e.data["integration"]) for e in audit.events()]
    assert notified == [
        ("notified", "firing", "pagerduty[0]"),
        ("notified", "resolved", "pagerduty[0]"),
    ]


def test_a_429_waits_for_its_retry_after(
    api: tuple[EventsAPI, str],
    sqlite_engine: sa.Engine,
    clock: FakeClock,
    session: requests.Session,
) -> None:
    standin, url = api
    standin.answers = [(429, {"Retry-After": "7"})]
    cp = plane(url, sqlite_engine, clock, session)
    cp.dispatcher.put([alert("WalletDown")])
    assert cp.tick(clock.at(seconds=0)) == 1 and standin.events == []
    assert cp.sender.next_due() == T0 + timedelta(seconds=7)
    assert cp.sender.run_once(clock.at(seconds=6)) == 0
    assert standin.requests == 1
    assert cp.sender.run_once(clock.at(seconds=7)) == 1
    assert len(standin.events) == 1 and standin.requests == 2


def test_5xx_is_retried_with_backoff_then_delivered(
    api: tuple[EventsAPI, str],
    sqlite_engine: sa.Engine,
    clock: FakeClock,
    session: requests.Session,
) -> None:
    standin, url = api
    standin.answers = [(500, {}), (503, {})]
    registry = CollectorRegistry()
    cp = plane(url, sqlite_engine, clock, session, registry=registry)
    cp.dispatcher.put([alert("WalletDown")])
    cp.tick(clock.at(seconds=0))
    assert cp.sender.next_due() == T0 + timedelta(seconds=1)
    cp.sender.run_once(clock.at(seconds=1))
    assert cp.sender.next_due() == T0 + timedelta(seconds=3)
    cp.sender.run_once(clock.at(seconds=3))
    assert len(standin.events) == 1 and standin.requests == 3
    count = registry.get_sample_value
    kind = {"integration": "pagerduty"}
    assert count("controlplane_notify_deliveries_total", {**kind, "outcome": "retried"}) == 2
    assert count("controlplane_notify_deliveries_total", {**kind, "outcome": "sent"}) == 1
    assert count("controlplane_notifications_failed_total", kind) == 2
    assert count("controlplane_notifications_total", kind) == 3


def test_a_dead_letter_after_the_cap_then_the_next_flush_tries_again(
    api: tuple[EventsAPI, str],
    sqlite_engine: sa.Engine,
    clock: FakeClock,
    session: requests.Session,
    audit: AuditLog,
) -> None:
    standin, url = api
    standin.answers = [(500, {})] * 6  # the test policy gives up after 6 attempts
    registry = CollectorRegistry()
    cp = plane(url, sqlite_engine, clock, session, audit=audit, registry=registry)
    cp.dispatcher.put([alert("WalletDown")])
    for t in range(0, 59):
        cp.tick(clock.at(seconds=t))
    assert standin.requests == 6 and standin.events == []  # at 0, 1, 3, 7, 15 and 31 s
    (dead,) = cp.outbox.rows(State.DEAD)
    assert dead.attempts == 6 and "answered 500" in (dead.last_error or "")
    dead_total = {"integration": "pagerduty"}
    assert registry.get_sample_value("controlplane_notify_dead_letters_total", dead_total) == 1
    (failed,) = [e for e in audit.events() if e.kind == "notification_failed"]
    assert failed.data["alertnames"] == ["WalletDown"] and "500" in failed.data["error"]
    cp.tick(clock.at(seconds=60))  # the group's next flush: the log forgot, so it pages again
    assert len(standin.events) == 1


def test_a_refused_event_is_not_retried(
    api: tuple[EventsAPI, str], session: requests.Session
) -> None:
    _, url = api
    notifier = PagerDutyNotifier(PagerDutyConfig(routing_key="too-short", url=url), session=session)
    with pytest.raises(NotifyError, match="answered 400") as info:
        notifier.notify(
            GroupKey(route_key="{}", labels=()), "pager", [alert("A")], AlertStatus.FIRING
        )
    assert not info.value.retryable


def test_the_routing_key_file_is_read_at_each_send(
    api: tuple[EventsAPI, str], session: requests.Session, tmp_path: Path
) -> None:
    standin, url = api
    path = tmp_path / "pd.key"
    path.write_text(KEY + "\n")
    notifier = PagerDutyNotifier(
        PagerDutyConfig(routing_key_file=str(path), url=url), session=session
    )
    key = GroupKey(route_key="{}", labels=())
    notifier.notify(key, "pager", [alert("A")], AlertStatus.FIRING)
    path.write_text("f" * 32)  # rotated
    notifier.notify(key, "pager", [alert("A")], AlertStatus.FIRING)
    assert [e["routing_key"] for e in standin.events] == [KEY, "f" * 32]
    path.unlink()
    with pytest.raises(NotifyError, match="routing_key_file") as info:
        notifier.notify(key, "pager", [alert("A")], AlertStatus.FIRING)
    assert not info.value.retryable


def test_a_long_summary_is_cut_and_description_replaces_it() -> None:
    key = GroupKey(route_key="{}", labels=(("alertname", "A"),))
    body = event(
        PagerDutyConfig(routing_key=KEY),
        routing_key=KEY,
        group_key=key,
        alerts=[alert("A", detail="x" * 2000)],
        status=AlertStatus.FIRING,
    )
    assert len(body["payload"]["summary"]) == 1024
    custom = PagerDutyConfig(routing_key=KEY, description="Wallet is down")
    body = event(
        custom, routing_key=KEY, group_key=key, alerts=[alert("A")], status=AlertStatus.FIRING
    )
    assert body["payload"]["summary"] == "Wallet is down"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "routing_key: one of routing_key or routing_key_file must be configured"),
        ({"routing_key": "k", "routing_key_file": "/k"}, "routing_key: at most one of"),
        ({"service_key": "k"}, "service_key: Events API v1 is not supported"),
        ({"routing_key": "k", "severity": "page"}, "severity: 'page' is not one of"),
        ({"routing_key": "k", "url": "ftp://x"}, "url: 'ftp://x' is not an http(s) URL"),
        ({"routing_key": "k", "details": {"a": [1]}}, "details.a: [1] is not a string"),
        ({"routing_key": "k", "send_resolved": "yes"}, "send_resolved: 'yes' is not a boolean"),
        ({"routing_key": "k", "http_config": {}}, "http_config: unknown or unsupported field"),
    ],
)
def test_config_errors_name_the_file_and_field(config: dict[str, Any], message: str) -> None:
    text = {"route": {"receiver": "p"}, "receivers": [{"name": "p", "pagerduty_configs": [config]}]}
    with pytest.raises(ConfigError) as info:
        parse_routing(text, source="routing.yml")
    assert str(info.value).startswith("routing.yml: receivers[0].pagerduty_configs[0].")
    assert message in str(info.value)


def test_the_secret_stays_out_of_reprs() -> None:
    config = parse_pagerduty({"routing_key": KEY}, lambda f, m: ConfigError(m))
    assert KEY not in repr(config)
