from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from controlplane.api.notify import create_blueprint
from controlplane.audit import AuditLog, install
from controlplane.cli import silences as silencecli
from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.ingest import IngestLimits
from controlplane.notify.silences import SilenceStore
from controlplane.operate import Silencing
from tests.conftest import ServedApp
from tests.controlplane.notify.conftest import (
    T0,
    FakeClock,
    RecordingNotifier,
    make_dispatcher,
    routing_from,
)
from tests.people import bearer, people, token

TOKEN = token("alice")
AUTH = bearer("alice")
ROUTING = """
route: {receiver: team, group_by: [alertname], group_wait: 0s}
receivers: [{name: team}]
"""
GOOD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="WalletDown"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "controlplane",
    "groupLabels": {"alertname": "WalletDown"},
    "commonLabels": {"alertname": "WalletDown"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "WalletDown", "region": "eu", "source": "spoofed"},
            "annotations": {"summary": "wallet down"},
            "startsAt": "2024-05-01T11:58:00.123456789+00:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "0123456789abcdef",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "WalletDown", "region": "latam"},
            "annotations": {},
            "startsAt": "2024-05-01T11:50:00Z",
            "endsAt": "2024-05-01T11:59:00Z",
            "generatorURL": "",
            "fingerprint": "fedcba9876543210",
        },
    ],
}


def make_app(
    dispatcher: Dispatcher,
    store: SilenceStore,
    clock: FakeClock,
    limits: IngestLimits | None = None,
) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(
        create_blueprint(
            dispatcher=dispatcher,
            silencing=Silencing(silences=store),
            access=people(),
            clock=clock,
            limits=limits,
        )
    )
    return app


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def dispatcher(
    clock: FakeClock, notifier: RecordingNotifier, silence_store: SilenceStore
) -> Dispatcher:
    return make_dispatcher(routing_from(ROUTING), clock, {"team": notifier}, silences=silence_store)


@pytest.fixture
def client(dispatcher: Dispatcher, silence_store: SilenceStore, clock: FakeClock) -> FlaskClient:
    limits = IngestLimits(max_alerts=3, max_body_bytes=4096)
    return make_app(dispatcher, silence_store, clock, limits).test_client()


def test_ingest_feeds_the_dispatcher(
    client: FlaskClient, dispatcher: Dispatcher, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    response = client.post("/api/v1/alertmanager", json=GOOD, headers=AUTH)
    assert response.status_code == 200, response.json
    assert response.json == {"status": "success", "accepted": 2}
    eu, latam = sorted(dispatcher.alerts(), key=lambda a: a.label_map["region"])
    assert eu.label_map == {"alertname": "WalletDown", "region": "eu", "source": "alertmanager"}
    assert eu.ends_at is None and eu.starts_at == T0 - timedelta(minutes=2, microseconds=-123456)
    assert dict(eu.annotations) == {"summary": "wallet down"}
    assert latam.ends_at == T0 - timedelta(minutes=1)
    dispatcher.tick()
    (sent,) = notifier.sent
    assert sent.statuses == ["firing", "resolved"]  # the whole group, as Alertmanager sends it


def _without(path: str) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    del node[int(last) if last.isdigit() else last]
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() and isinstance(node, list) else last] = value
    return body


def _raw(body: Any) -> bytes:
    return json.dumps(body).encode()


BAD = [
    (b"{not json", 400, "malformed_json", None),
    (b"[1, 2]", 400, "invalid_payload", "$"),
    (_raw(_with("bogus", 1)), 400, "unknown_field", "bogus"),
    (_raw(_with("alerts.0.extra", "x")), 400, "unknown_field", "alerts[0].extra"),
    (_raw(_with("version", "3")), 400, "invalid_payload", "version"),
    (_raw(_without("version")), 400, "invalid_payload", "version"),
    (_raw(_with("alerts", {})), 400, "invalid_payload", "alerts"),
    (_raw(_with("status", "burning")), 400, "invalid_payload", "status"),
    (_raw(_with("truncatedAlerts", "0")), 400, "invalid_payload", "truncatedAlerts"),
    (_raw(_with("groupLabels", {"a": 1})), 400, "invalid_payload", "groupLabels.a"),
    (_raw(_with("externalURL", 5)), 400, "invalid_payload", "externalURL"),
    (_raw(_without("alerts.1.labels")), 400, "invalid_payload", "alerts[1].labels"),
    (_raw(_with("alerts.1.labels", {})), 400, "invalid_payload", "alerts[1].labels"),
    (_raw(_with("alerts.1.labels", "x=y")), 400, "invalid_payload", "alerts[1].labels"),
    (_raw(_with("alerts.0.labels.region", 1)), 400, "invalid_payload", "alerts[0].labels.region"),
    (
        _raw(_with("alerts.0.labels.bad-name", "x")),
        400,
        "invalid_payload",
        "alerts[0].labels.bad-name",
    ),
    (_raw(_with("alerts.0.annotations", [])), 400, "invalid_payload", "alerts[0].annotations"),
    (_raw(_with("alerts.0.status", "ok")), 400, "invalid_payload", "alerts[0].status"),
    (_raw(_with("alerts.0.startsAt", "yesterday")), 400, "invalid_payload", "alerts[0].startsAt"),
    (_raw(_with("alerts.0.startsAt", 1714564800)), 400, "invalid_payload", "alerts[0].startsAt"),
    (_raw(_without("alerts.0.startsAt")), 400, "invalid_payload", "alerts[0].startsAt"),
    (
        _raw(_with("alerts.1.endsAt", "0001-01-01T00:00:00Z")),
        400,
        "invalid_payload",
        "alerts[1].endsAt",
    ),
    (_raw(_with("alerts.0.generatorURL", None)), 400, "invalid_payload", "alerts[0].generatorURL"),
    (_raw(_with("alerts.1", "alert")), 400, "invalid_payload", "alerts[1]"),
    (_raw(_with("alerts", [GOOD["alerts"][0]] * 4)), 413, "too_many_alerts", "alerts"),
    (_raw(_with("externalURL", "x" * 5000)), 413, "payload_too_large", None),
]


@pytest.mark.parametrize(("raw", "status", "code", "field"), BAD)
def test_bad_payloads_change_nothing(
    client: FlaskClient,
    dispatcher: Dispatcher,
    raw: bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = client.post(
        "/api/v1/alertmanager",
        data=raw,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.json
    body = response.json
    assert body is not None and body["error"] == code and body["message"]
    assert body.get("field") == field
    if field and field != "$":
        assert field in body["message"]
    assert dispatcher.alerts() == [] and dispatcher.groups() == []


def test_ingest_refuses_other_media_types(client: FlaskClient, dispatcher: Dispatcher) -> None:
    response = client.post("/api/v1/alertmanager", data=_raw(GOOD), headers=AUTH)
    assert response.status_code == 415 and response.json["error"] == "unsupported_media_type"
    assert dispatcher.alerts() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/alertmanager", GOOD),
        ("POST", "/api/v1/silences", {"matchers": ["a=b"], "duration": "1h"}),
        ("DELETE", "/api/v1/silences/some-id", None),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer "])
def test_writes_need_the_token(
    client: FlaskClient,
    dispatcher: Dispatcher,
    silence_store: SilenceStore,
    method: str,
    path: str,
    body: Any,
    header: str | None,
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json is not None and response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert dispatcher.alerts() == [] and silence_store.list_silences() == []


def test_silence_lifecycle_over_http(
    client: FlaskClient, silence_store: SilenceStore, clock: FakeClock
) -> None:
    body = {
        "matchers": [
            "alertname=WalletDown",
            {"name": "region", "value": "eu|latam", "isRegex": True},
        ],
        "duration": "2h",
        "createdBy": "alice",
        "comment": "wallet maintenance",
    }
    created = client.post("/api/v1/silences", json=body, headers=AUTH)
    assert created.status_code == 201, created.json
    sid = created.json["id"]
    listed = client.get("/api/v1/silences?state=active").json["silences"]
    assert listed == [
        {
            "id": sid,
            "state": "active",
            "matchers": ['alertname="WalletDown"', 'region=~"eu|latam"'],
            "startsAt": "2024-05-01T12:00:00Z",
            "endsAt": "2024-05-01T14:00:00Z",
            "updatedAt": "2024-05-01T12:00:00Z",
            "createdBy": "alice",
            "comment": "wallet maintenance",
        }
    ]
    assert client.get("/api/v1/silences?state=pending").json == {"silences": []}
    clock.advance(minutes=5)
    expired = client.delete(f"/api/v1/silences/{sid}", headers=AUTH)
    assert expired.status_code == 200 and expired.json["state"] == "expired"
    assert expired.json["endsAt"] == "2024-05-01T12:05:00Z"
    assert client.get(f"/api/v1/silences/{sid}").json["state"] == "expired"
    again = client.delete(f"/api/v1/silences/{sid}", headers=AUTH)
    assert again.status_code == 409 and again.json["error"] == "already_expired"
    missing = client.delete("/api/v1/silences/nope", headers=AUTH)
    assert missing.status_code == 404 and missing.json["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"matchers": [], "duration": "1h"}, "bad_request", "matchers"),
        ({"matchers": ["a~b"], "duration": "1h"}, "bad_request", "matchers[0]"),
        ({"matchers": ["a=~.*"], "duration": "1h"}, "invalid_silence", None),
        ({"matchers": ["a=b"]}, "bad_request", None),
        (
            {"matchers": ["a=b"], "duration": "1h", "endsAt": "2024-05-01T13:00:00Z"},
            "bad_request",
            None,
        ),
        ({"matchers": ["a=b"], "duration": "soon"}, "bad_request", "duration"),
        ({"matchers": ["a=b"], "endsAt": "2024-05-01T11:00:00Z"}, "invalid_silence", None),
        ({"matchers": ["a=b"], "endsAt": None}, "bad_request", "endsAt"),
        ({"matchers": ["a=b"], "duration": "1h", "who": "me"}, "unknown_field", "who"),
        ({"matchers": ["a=b"], "duration": "1h", "createdBy": 7}, "bad_request", "createdBy"),
    ],
)
def test_bad_silences_are_refused(
    client: FlaskClient,
    silence_store: SilenceStore,
    body: dict[str, Any],
    code: str,
    field: str | None,
) -> None:
    full = {"createdBy": "alice", "comment": "why", **body}
    response = client.post("/api/v1/silences", json=full, headers=AUTH)
    assert response.status_code == 400, response.json
    assert response.json["error"] == code and response.json.get("field") == field
    assert silence_store.list_silences() == []


def test_bad_state_filter(client: FlaskClient) -> None:
    response = client.get("/api/v1/silences?state=sleeping")
    assert response.status_code == 400 and response.json["field"] == "state"


def test_groups_view(client: FlaskClient) -> None:
    client.post("/api/v1/alertmanager", json=GOOD, headers=AUTH)
    (group,) = client.get("/api/v1/notify/groups").json["groups"]
    assert group["groupKey"] == '{}:{alertname="WalletDown"}' and group["receiver"] == "team"
    assert sorted(a["status"] for a in group["alerts"]) == ["firing", "resolved"]


def _cli(url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    silencecli.configure(parser)
    return silencecli.run(parser.parse_args(["--url", url, *argv]))


def test_cli_against_a_running_api(
    dispatcher: Dispatcher,
    silence_store: SilenceStore,
    clock: FakeClock,
    serve: Callable[[Any], ServedApp],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served = serve(make_app(dispatcher, silence_store, clock))
    monkeypatch.delenv(silencecli.TOKEN_ENV, raising=False)
    assert _cli(served.url, "add", "alertname=X", "--comment", "c") == 2
    assert "CONTROLPLANE_API_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv(silencecli.TOKEN_ENV, token("carol"))
    args = ["add", "alertname=X", 'region=~"eu|latam"', "--duration", "2h", "--comment", "fix"]
    assert _cli(served.url, *args, "--author", "bob") == 0
    sid = capsys.readouterr().out.strip()
    assert silence_store.get(sid).matcher_strings == ['alertname="X"', 'region=~"eu|latam"']
    assert silence_store.get(sid).ends_at == T0 + timedelta(hours=2)
    assert _cli(served.url, "list", "--state", "active") == 0
    out = capsys.readouterr().out
    assert sid in out and 'region=~"eu|latam"' in out and "# fix" in out
    assert _cli(served.url, "expire", sid) == 0
    assert capsys.readouterr().out.strip() == f"{sid} expired"
    assert _cli(served.url, "expire", sid) == 1
    assert "409" in capsys.readouterr().err
    assert _cli(served.url, "add", "alertname~X", "--comment", "c") == 2
    monkeypatch.setenv(silencecli.TOKEN_ENV, "wrong")
    assert _cli(served.url, "expire", sid) == 1
    assert "401" in capsys.readouterr().err
    with requests.get(served.url + "/api/v1/silences", timeout=5) as response:
        assert len(response.json()["silences"]) == 1


def audited_app(
    dispatcher: Dispatcher, store: SilenceStore, clock: FakeClock, *, engine: Any, **kwargs: Any
) -> tuple[FlaskClient, AuditLog]:
    install(engine)
    log = AuditLog(engine, clock=lambda: clock().timestamp())
    app = Flask(__name__)
    app.register_blueprint(
        create_blueprint(
            dispatcher=dispatcher,
            silencing=Silencing(silences=store, audit=log),
            access=people(),
            clock=clock,
            **kwargs,
        )
    )
    return app.test_client(), log


@pytest.mark.parametrize(
    ("extra", "field", "why"),
    [
        ({"duration": "99999999y"}, "duration", "'99999999y' is more than the maximum silence"),
        ({"duration": "30d1s"}, "duration", "'30d1s' is more than the maximum silence of '4w2d'"),
        ({"endsAt": "9999-12-31T00:00:00Z"}, "endsAt", "of '4w2d' after the start"),
        (
            {"startsAt": "2024-06-01T00:00:01Z", "duration": "1h"},
            "startsAt",
            "'2024-06-01T00:00:01Z' is more than the maximum silence of '4w2d' from now",
        ),
    ],
)
def test_silences_are_bounded(
    client: FlaskClient,
    silence_store: SilenceStore,
    extra: dict[str, str],
    field: str,
    why: str,
) -> None:
    body = {"matchers": ["a=b"], "createdBy": "alice", "comment": "why", **extra}
    response = client.post("/api/v1/silences", json=body, headers=AUTH)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "bad_request" and response.json["field"] == field
    assert why in response.json["message"] and "(silence_max_duration)" in response.json["message"]
    assert silence_store.list_silences() == []


@pytest.mark.parametrize(
    "extra",
    [
        {"duration": "30d"},
        {"endsAt": "2024-05-31T12:00:00Z"},
        {"startsAt": "2024-05-31T12:00:00Z", "endsAt": "2024-06-30T12:00:00Z"},
    ],
)
def test_silences_up_to_the_bound_are_accepted(client: FlaskClient, extra: dict[str, str]) -> None:
    body = {"matchers": ["a=b"], "createdBy": "alice", "comment": "why", **extra}
    assert client.post("/api/v1/silences", json=body, headers=AUTH).status_code == 201


def test_the_silence_bound_is_configurable(
    dispatcher: Dispatcher, silence_store: SilenceStore, clock: FakeClock, sqlite_engine: Any
) -> None:
    client, _ = audited_app(
        dispatcher, silence_store, clock, engine=sqlite_engine, max_silence=timedelta(hours=2)
    )
    body = {"matchers": ["a=b"], "createdBy": "alice", "comment": "why", "duration": "3h"}
    response = client.post("/api/v1/silences", json=body, headers=AUTH)
    assert response.status_code == 400 and "'2h'" in response.json["message"]


def test_creating_and_expiring_a_silence_are_audit_events(
    dispatcher: Dispatcher, silence_store: SilenceStore, clock: FakeClock, sqlite_engine: Any
) -> None:
    client, log = audited_app(dispatcher, silence_store, clock, engine=sqlite_engine)
    body = {"matchers": ["alertname=WalletDown"], "duration": "2h", "createdBy": "alice"}
    created = client.post("/api/v1/silences", json={**body, "comment": "wallet"}, headers=AUTH)
    sid = created.json["id"]
    refused = client.post("/api/v1/silences", json={**body, "duration": "60d"}, headers=AUTH)
    assert refused.status_code == 400
    clock.advance(minutes=5)
    # who expires it is the token's user, whatever a header says
    expired = client.delete(f"/api/v1/silences/{sid}", headers={**bearer("bob"), "X-User": "eve"})
    assert expired.status_code == 200
    assert client.delete(f"/api/v1/silences/{sid}", headers=AUTH).status_code == 409
    made, ended = log.events()
    assert (made.kind, made.actor, ended.kind, ended.actor) == (
        "silence_created",
        "alice",
        "silence_expired",
        "bob",
    )
    assert made.data == {
        "id": sid,
        "matchers": ['alertname="WalletDown"'],
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "2024-05-01T14:00:00Z",
        "createdBy": "alice",
        "comment": "wallet",
    }
    assert ended.data["endsAt"] == "2024-05-01T12:05:00Z" and log.verify().ok


def test_the_cli_names_who_expired_a_silence(
    dispatcher: Dispatcher,
    silence_store: SilenceStore,
    clock: FakeClock,
    sqlite_engine: Any,
    serve: Callable[[Any], ServedApp],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, log = audited_app(dispatcher, silence_store, clock, engine=sqlite_engine)
    served = serve(client.application)
    monkeypatch.setenv(silencecli.TOKEN_ENV, token("carol"))
    monkeypatch.setattr(silencecli.getpass, "getuser", lambda: "carol")
    assert _cli(served.url, "add", "alertname=X", "--comment", "c") == 0
    sid = capsys.readouterr().out.strip()
    assert _cli(served.url, "expire", sid) == 0
    assert [(e.kind, e.actor) for e in log.events()] == [
        ("silence_created", "carol"),
        ("silence_expired", "carol"),
    ]
    assert _cli(served.url, "add", "alertname=X", "--duration", "99999999y", "--comment", "c") == 1
    assert "is more than the maximum silence of '4w2d'" in capsys.readouterr().err
