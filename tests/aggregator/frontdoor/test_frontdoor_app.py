from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from frontdoor_fakes import FakeTransport, ok_region
from prometheus_client import CollectorRegistry

from aggregator import sessions
from aggregator.frontdoor import FrontDoor, FrontdoorConfig, create_app
from aggregator.frontdoor.routing import Region
from aggregator.frontdoor.transport import TransportError, Upstream

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EU, LATAM = "http://eu.test", "http://latam.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(transport: FakeTransport, clock: Clock) -> Flask:
    transport.handlers = {EU: ok_region("eu"), LATAM: ok_region("latam")}
    config = FrontdoorConfig(
        regions=(Region(id="eu", url=EU), Region(id="latam", url=LATAM)), admin_token=TOKEN
    )
    return create_app(config, transport=transport, clock=clock, registry=CollectorRegistry())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def front(app: Flask) -> FrontDoor:
    return app.extensions["frontdoor"]


def session_for(home: str, user: str = "p1") -> str:
    return sessions.GameSession(
        session_id="s1", user=user, token="t", currency="EUR", game="g", provider="pv", region=home
    ).encode("whatever")


def play(client: FlaskClient, home: str, round_id: str = "r1") -> dict[str, object]:
    reply = client.post("/player/round", json={"session": session_for(home), "round": round_id})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()


def metric(client: FlaskClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and _labels(line) == want:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _labels(line: str) -> str:
    inner = line[line.index("{") + 1 : line.index("}")]
    return ",".join(sorted(inner.split(",")))


def take_down(app: Flask, transport: FakeTransport, base: str) -> None:
    del transport.handlers[base]
    front(app).checker.check_once()
    front(app).checker.check_once()


def test_launch_is_routed_by_user_and_sticky(client: FlaskClient) -> None:
    seen = {
        client.post("/player/launch", json={"user": f"p{i}"}).get_json()["served_by"]
        for i in range(40)
    }
    assert seen == {"eu", "latam"}
    first = client.post("/player/launch", json={"user": "p7"}).get_json()["served_by"]
    assert all(
        client.post("/player/launch", json={"user": "p7"}).get_json()["served_by"] == first
        for _ in range(5)
    )


def test_rounds_go_to_the_home_region(client: FlaskClient) -> None:
    assert play(client, "eu")["served_by"] == "eu"
    assert play(client, "latam")["served_by"] == "latam"
    assert metric(client, "casino_failover_events_total", region="eu", kind="region_failover") == 0


def test_round_fails_over_when_home_is_down(
    app: Flask, client: FlaskClient, transport: FakeTransport, clock: Clock
) -> None:
    take_down(app, transport, EU)
    transport.calls.clear()
    assert play(client, "eu")["served_by"] == "latam"
    assert transport.player_calls() == [f"{LATAM}/player/round"]  # no wasted try on eu
    assert metric(client, "casino_failover_events_total", region="eu", kind="region_failover") == 1
    assert metric(client, "casino_region_up", region="eu") == 0
    assert metric(client, "casino_region_weight", region="eu") == 0
    state = client.get("/admin/state", headers=AUTH).get_json()
    eu = next(r for r in state["regions"] if r["id"] == "eu")
    assert eu["health"] == "down" and eu["last_check_at"] == clock.now
    assert client.get("/readyz").status_code == 200


def test_connection_error_marks_suspect_and_retries_once(
    app: Flask, client: FlaskClient, transport: FakeTransport
) -> None:
    del transport.handlers[EU]  # refused, but health checks have not noticed yet
    assert play(client, "eu")["served_by"] == "latam"
    assert transport.player_calls() == [f"{EU}/player/round", f"{LATAM}/player/round"]
    view = {v.id: v for v in front(app).table.snapshot()}
    assert view["eu"].suspect and view["eu"].up
    transport.calls.clear()
    assert play(client, "eu", "r2")["served_by"] == "latam"
    assert transport.player_calls() == [f"{LATAM}/player/round"]  # suspect is skipped
    assert (
        metric(
            client, "casino_frontdoor_requests_total", region="eu", route="round", outcome="error"
        )
        == 1
    )


def test_503_without_money_is_retried_but_with_money_is_final(
    client: FlaskClient, transport: FakeTransport
) -> None:
    def region_down(method: str, path: str, body: bytes | None) -> Upstream:
        return Upstream(status=503, body=b'{"error": "region_down"}')

    def no_money(method: str, path: str, body: bytes | None) -> Upstream:
        return Upstream(status=503, body=b'{"error": "wallet_unavailable", "money": "none"}')

    transport.handlers[EU] = region_down
    assert play(client, "eu")["served_by"] == "latam"
    transport.handlers[EU] = no_money
    client.application.extensions["frontdoor"].table.record_probe("eu", True, at=0.0)
    reply = client.post("/player/round", json={"session": session_for("eu"), "round": "r2"})
    assert reply.status_code == 503 and reply.get_json()["money"] == "none"


def test_launch_failed_is_the_regions_answer_not_a_fault(
    app: Flask, client: FlaskClient, transport: FakeTransport
) -> None:
    transport.handlers[EU] = transport.handlers[LATAM] = lambda m, p, b: Upstream(
        status=503, body=b'{"error": "launch_failed", "message": "no provider"}'
    )
    reply = client.post("/player/launch", json={"user": "p1"})
    assert reply.status_code == 503 and reply.get_json()["error"] == "launch_failed"
    assert len(transport.player_calls()) == 1
    assert not any(v.suspect for v in front(app).table.snapshot())


@pytest.mark.parametrize(("timeout", "status"), [(False, 502), (True, 504)])
def test_both_regions_failing_is_a_gateway_error(
    client: FlaskClient, transport: FakeTransport, timeout: bool, status: int
) -> None:
    def broken(method: str, path: str, body: bytes | None) -> Upstream:
        raise TransportError("gone", timeout=timeout)

    transport.handlers = {EU: broken, LATAM: broken}
    reply = client.post("/player/round", json={"session": session_for("eu"), "round": "r"})
    assert reply.status_code == status
    assert "money" not in reply.get_json()  # unknown outcome: the client must retry
    assert len(transport.player_calls()) == 2


def test_bad_player_requests(client: FlaskClient, transport: FakeTransport) -> None:
    assert client.post("/player/round", data=b"{nope").status_code == 400
    assert client.post("/player/round", json={"session": 5}).status_code == 400
    assert client.post("/player/round", json={"session": "garbage"}).status_code == 401
    assert transport.player_calls() == []
    forged = client.post("/player/round", json={"session": session_for("mars"), "round": "r"})
    assert forged.status_code == 200
    assert 'region="mars"' not in client.get("/metrics").get_data(as_text=True)


def test_drain_routes_new_sessions_away_and_is_idempotent(
    client: FlaskClient, transport: FakeTransport
) -> None:
    headers = {**AUTH, "Idempotency-Key": "k1"}
    first = client.post("/admin/regions/eu/drain", headers=headers)
    assert first.get_json() == {"region": "eu", "drained": True, "changed": True}
    replay = client.post("/admin/regions/eu/drain", headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == first.get_json()
    again = client.post("/admin/regions/eu/drain", headers=AUTH).get_json()
    assert again["changed"] is False
    served = {
        client.post("/player/launch", json={"user": f"p{i}"}).get_json()["served_by"]
        for i in range(40)
    }
    assert served == {"latam"}
    assert play(client, "eu")["served_by"] == "eu"  # existing sessions keep going
    assert metric(client, "casino_region_weight", region="eu") == 0
    assert metric(client, "casino_region_weight", region="latam") == 1
    client.post("/admin/regions/eu/undrain", headers=AUTH)
    assert metric(client, "casino_region_weight", region="eu") == 1


def test_admin_needs_the_token_and_names_unknown_regions(client: FlaskClient) -> None:
    assert client.get("/admin/state").status_code == 401
    bad = client.post("/admin/regions/eu/drain", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "unauthorized"
    missing = client.post("/admin/regions/mars/drain", headers=AUTH)
    assert missing.status_code == 404
    assert "'mars'" in missing.get_json()["message"]
    assert client.post("/admin/regions/mars/undrain", headers=AUTH).status_code == 404


def test_region_down_fault_partitions_a_region(
    app: Flask, client: FlaskClient, transport: FakeTransport, clock: Clock
) -> None:
    body = {"kind": "region_down", "target": "eu", "duration_s": 60}
    added = client.post("/admin/faults", headers=AUTH, json=body)
    assert added.status_code == 201
    assert play(client, "eu")["served_by"] == "latam"
    assert transport.player_calls() == [f"{LATAM}/player/round"]
    front(app).checker.check_once()
    front(app).checker.check_once()
    assert not {v.id: v for v in front(app).table.snapshot()}["eu"].up
    unknown = client.post("/admin/faults", headers=AUTH, json={**body, "target": "mars"})
    assert unknown.status_code == 404
    clock.now += 61  # the fault expires by the injected clock
    front(app).checker.check_once()
    front(app).checker.check_once()
    assert {v.id: v for v in front(app).table.snapshot()}["eu"].up
    fault_id = added.get_json()["id"]
    assert client.delete(f"/admin/faults/{fault_id}", headers=AUTH).status_code == 404


def test_readyz_follows_region_health(
    app: Flask, client: FlaskClient, transport: FakeTransport
) -> None:
    assert client.get("/readyz").status_code == 200
    transport.handlers.clear()
    front(app).checker.check_once()
    front(app).checker.check_once()
    assert client.get("/readyz").status_code == 503
    assert json.loads(client.get("/readyz").data)["status"] == "not_ready"
