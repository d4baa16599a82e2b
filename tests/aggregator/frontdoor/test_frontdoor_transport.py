"""The front door over real sockets: pooled transport, health thread, and proxying end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask, Response, request
from prometheus_client import CollectorRegistry

from aggregator import sessions
from aggregator.frontdoor import FrontdoorConfig, create_app
from aggregator.frontdoor.routing import Region
from aggregator.frontdoor.transport import PooledTransport, TransportError
from aggregator.httpapi import json_response
from tests.aggregator.served import Served
from tests.conftest import free_port


def region_app(name: str) -> Flask:
    app = Flask(f"fake-{name}")
    app.extensions["ready"] = True

    @app.get("/readyz")
    def readyz() -> Response:
        return json_response({"status": "ready"}, 200 if app.extensions["ready"] else 503)

    @app.post("/player/<route>")
    def player(route: str) -> Response:
        return json_response({"served_by": name, "route": route, **request.get_json()})

    return app


@pytest.fixture
def eu() -> Iterator[tuple[Served, Flask]]:
    app = region_app("eu")
    server = Served(app)
    yield server, app
    server.close()


def test_pooled_transport(eu: tuple[Served, Flask]) -> None:
    server, _ = eu
    transport = PooledTransport(pool_size=2)
    try:
        answer = transport.request(
            "POST", f"{server.url}/player/round", body=b'{"a": 1}', timeout=5
        )
        assert answer.status == 200 and b'"served_by": "eu"' in answer.body
        assert answer.content_type.startswith("application/json")
        with pytest.raises(TransportError) as refused:
            transport.request("GET", f"http://127.0.0.1:{free_port()}/readyz", timeout=2)
        assert not refused.value.timeout
    finally:
        transport.close()


def test_health_thread_and_proxy_over_real_sockets(eu: tuple[Served, Flask]) -> None:
    server, region = eu
    dead = f"http://127.0.0.1:{free_port()}"
    config = FrontdoorConfig(
        regions=(Region(id="eu", url=server.url), Region(id="latam", url=dead)),
        admin_token="t",
        health_interval_s=0.05,
    )
    app = create_app(config, registry=CollectorRegistry())
    front = app.extensions["frontdoor"]
    front.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and {v.id for v in front.table.snapshot() if v.up} != {
            "eu"
        }:
            time.sleep(0.05)
        assert {v.id: v.up for v in front.table.snapshot()} == {"eu": True, "latam": False}
        token = sessions.sign({"region": "latam", "user": "p1"}, "x")
        reply = app.test_client().post("/player/round", json={"session": token, "round": "r"})
        assert reply.get_json()["served_by"] == "eu"  # latam is down: failed over
        region.extensions["ready"] = False
        while time.monotonic() < deadline and any(v.up for v in front.table.snapshot()):
            time.sleep(0.05)
        assert not any(v.up for v in front.table.snapshot())
        assert app.test_client().get("/readyz").status_code == 503
    finally:
        front.stop()
