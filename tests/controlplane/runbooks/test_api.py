from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.api.runbooks import create_blueprint
from controlplane.operate import Operations
from tests.controlplane.runbooks.test_engine import VERIFY
from tests.controlplane.runbooks.test_load import DESIGN_EXAMPLE
from tests.people import bearer, people

AUTH = bearer("api")


def ops_of(w: Any) -> Operations:
    return Operations(
        remediator=w.remediator, executions=w.store, switches=w.switches, audit=w.log, clock=w.clock
    )


@pytest.fixture
def client_world(make_world: Any) -> tuple[FlaskClient, Any]:
    w = make_world(DESIGN_EXAMPLE.replace("mode: auto", "mode: approval"))
    app = Flask("t")
    app.register_blueprint(create_blueprint(ops_of(w), access=people()))
    return app.test_client(), w


def test_runbooks_are_listed(client_world: tuple[FlaskClient, Any]) -> None:
    client, _ = client_world
    body = client.get("/api/v1/runbooks").get_json()
    assert [r["name"] for r in body["runbooks"]] == ["isolate-provider"]
    assert client.get("/api/v1/runbooks/nope").status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/runbooks/isolate-provider/executions", {"labels": {"region": "eu"}}),
        ("/api/v1/automation/pause", {"reason": "x"}),
        ("/api/v1/maintenance", {"duration": "1h"}),
    ],
)
def test_writes_without_the_token_get_401_and_change_nothing(
    client_world: tuple[FlaskClient, Any], path: str, body: dict[str, Any]
) -> None:
    client, w = client_world
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        resp = client.post(path, json=body, headers=headers)
        assert resp.status_code == 401
        assert resp.get_json()["error"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert w.store.find() == [] and w.switches.automation()[0] is False
    assert w.switches.maintenance_windows() == [] and w.log.events() == []


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[1]", 400, "bad_request"),
        (b'{"labels": {"region": 5}}', 400, "bad_request"),
        (b'{"dry_run": "yes"}', 400, "bad_request"),
        (b'{"params": {"nope": 1}}', 409, "conflict"),
    ],
)
def test_bad_run_requests_get_json_4xx(
    client_world: tuple[FlaskClient, Any], data: bytes, status: int, code: str
) -> None:
    client, w = client_world
    resp = client.post(
        "/api/v1/runbooks/isolate-provider/executions",
        data=data,
        headers=AUTH,
        content_type="application/json",
    )
    assert resp.status_code == status and resp.get_json()["error"] == code
    assert w.store.find() == []


def test_manual_run_approval_and_audit_through_http(client_world: tuple[FlaskClient, Any]) -> None:
    client, w = client_world
    w.querier.holding.add(VERIFY)
    resp = client.post(
        "/api/v1/runbooks/isolate-provider/executions",
        headers=bearer("alice"),
        # a name in the body or a header proves nothing: the token says who asks
        json={"labels": {"region": "eu", "provider": "pv2"}, "user": "mallory"},
    )
    assert resp.status_code == 201
    ex = resp.get_json()
    assert ex["state"] == "pending_approval" and ex["requested_by"] == "alice"
    listed = client.get("/api/v1/executions?state=pending_approval").get_json()["executions"]
    assert [e["id"] for e in listed] == [ex["id"]]
    own = client.post(f"/api/v1/executions/{ex['id']}/approve", headers=bearer("alice"))
    assert own.status_code == 403 and "requested" in own.get_json()["message"]
    approved = client.post(
        f"/api/v1/executions/{ex['id']}/approve",
        headers={**bearer("bob"), "X-User": "carol"},
        json={"user": "carol"},
    )
    assert approved.status_code == 200 and approved.get_json()["state"] == "succeeded"
    assert [a["user"] for a in approved.get_json()["approvals"]] == ["bob"]
    again = client.post(f"/api/v1/executions/{ex['id']}/approve", headers=bearer("carol"))
    assert again.status_code == 409
    detail = client.get(f"/api/v1/executions/{ex['id']}").get_json()
    assert [s["step_id"] for s in detail["steps"]] == ["isolate"]
    assert {"triggered", "approved", "step", "verification", "succeeded"} <= {
        e["kind"] for e in detail["audit"]
    }
    assert client.get("/api/v1/audit/verify").get_json()["ok"] is True
    assert client.get("/api/v1/executions/nope").status_code == 404
    assert client.get("/api/v1/executions?state=bogus").status_code == 400


def test_pause_resume_and_maintenance(client_world: tuple[FlaskClient, Any]) -> None:
    client, _ = client_world
    paused = client.post(
        "/api/v1/automation/pause", headers=bearer("oncall"), json={"reason": "incident 7"}
    )
    assert paused.get_json()["paused"] is True and paused.get_json()["changed_by"] == "oncall"
    assert client.post("/api/v1/automation/resume", headers=AUTH).get_json()["paused"] is False
    made = client.post(
        "/api/v1/maintenance",
        headers=AUTH,
        json={"matchers": {"region": "eu"}, "duration": "2h", "reason": "upgrade"},
    )
    assert made.status_code == 201
    assert [x["id"] for x in client.get("/api/v1/maintenance").get_json()["windows"]] == [
        made.get_json()["id"]
    ]
    bad = client.post(
        "/api/v1/maintenance", headers=AUTH, json={"matchers": {"zone": "a"}, "duration": "1h"}
    )
    assert bad.status_code == 400
    assert (
        client.delete(f"/api/v1/maintenance/{made.get_json()['id']}", headers=AUTH).status_code
        == 200
    )
    kinds = [e["kind"] for e in client.get("/api/v1/audit").get_json()["events"]]
    assert kinds == [
        "automation_paused",
        "automation_resumed",
        "maintenance_started",
        "maintenance_ended",
    ]


@pytest.mark.parametrize(
    ("duration", "why"),
    [
        ("99999999y", "at most the maximum maintenance window of '1d'"),
        ("24h1s", "at most the maximum maintenance window of '1d'"),
        ("0s", "must be more than 0s"),
        ("soon", "is not a duration"),
    ],
)
def test_maintenance_windows_are_bounded(
    client_world: tuple[FlaskClient, Any], duration: str, why: str
) -> None:
    client, w = client_world
    body = {"matchers": {"region": "eu"}, "duration": duration}
    refused = client.post("/api/v1/maintenance", headers=AUTH, json=body)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "bad_request"
    assert why in refused.get_json()["message"] and repr(duration) in refused.get_json()["message"]
    assert w.switches.maintenance_windows() == [] and w.log.events() == []
    body["duration"] = "24h"
    assert client.post("/api/v1/maintenance", headers=AUTH, json=body).status_code == 201


def test_the_maintenance_bound_is_configurable(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    app = Flask("t")
    app.register_blueprint(create_blueprint(ops_of(w), access=people(), max_maintenance_s=3600))
    client = app.test_client()
    too_long = client.post("/api/v1/maintenance", headers=AUTH, json={"duration": "2h"})
    assert (
        too_long.status_code == 400
        and "'1h' (automation.maintenance_max_duration)" in (too_long.get_json()["message"])
    )
    assert (
        client.post("/api/v1/maintenance", headers=AUTH, json={"duration": "1h"}).status_code == 201
    )


@pytest.mark.parametrize(
    ("who", "path", "allowed"),
    [
        ("vera", "/api/v1/automation/pause", False),
        ("oncall", "/api/v1/automation/pause", True),
        ("oncall", "/api/v1/automation/resume", False),
        ("alice", "/api/v1/automation/resume", True),
        ("vera", "/api/v1/runbooks/isolate-provider/executions", False),
        ("oncall", "/api/v1/runbooks/isolate-provider/executions", True),
        ("vera", "/api/v1/maintenance", False),
        ("oncall", "/api/v1/maintenance", True),
    ],
)
def test_each_write_needs_its_role(
    client_world: tuple[FlaskClient, Any], who: str, path: str, allowed: bool
) -> None:
    client, w = client_world
    w.querier.holding.add(VERIFY)
    body = {"labels": {"region": "eu", "provider": "pv2"}, "duration": "1h", "reason": "r"}
    resp = client.post(path, headers=bearer(who), json=body)
    if allowed:
        assert resp.status_code in (200, 201)
        return
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert who in resp.get_json()["message"]
    assert w.store.find() == [] and w.switches.maintenance_windows() == []
    assert w.log.events() == []


def test_an_operator_cannot_approve_and_an_approver_can(
    client_world: tuple[FlaskClient, Any],
) -> None:
    client, w = client_world
    w.querier.holding.add(VERIFY)
    made = client.post(
        "/api/v1/runbooks/isolate-provider/executions",
        headers=bearer("oncall"),
        json={"labels": {"region": "eu", "provider": "pv2"}},
    ).get_json()
    for path in ("approve", "reject"):
        refused = client.post(f"/api/v1/executions/{made['id']}/{path}", headers=bearer("oncall"))
        assert refused.status_code == 403
    assert w.store.get(made["id"]).state.value == "pending_approval"
    rejected = client.post(
        f"/api/v1/executions/{made['id']}/reject", headers=bearer("bob"), json={"reason": "no"}
    )
    assert rejected.status_code == 200 and rejected.get_json()["state"] == "rejected"
