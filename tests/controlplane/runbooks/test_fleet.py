from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from controlplane.runbooks.act import AggregatorTargets
from controlplane.runbooks.fleet import FleetReader
from tests.conftest import free_port


@pytest.fixture
def aggregator() -> Iterator[str]:
    app = Flask("agg")

    @app.get("/admin/state")
    def state() -> Any:
        if request.headers.get("Authorization") != "Bearer tok":
            return jsonify({"error": "unauthorized"}), 401
        return jsonify(
            {
                "providers": [{"id": "pv1", "isolated": True}, {"id": "pv2", "isolated": False}],
                "regions": [
                    {"id": "eu", "up": True, "drained": False},
                    {"id": "latam", "up": True, "drained": True},
                    {"id": "us", "up": False, "drained": False},
                ],
            }
        )

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_reads_providers_isolation_and_healthy_regions(aggregator: str) -> None:
    fleet = FleetReader(
        AggregatorTargets(frontdoor_url=aggregator, regions={"eu": aggregator}, token="tok")
    )()
    assert fleet.providers == {"eu": frozenset({"pv1", "pv2"})}
    assert fleet.isolated == {"eu": frozenset({"pv1"})}
    assert fleet.healthy_regions == frozenset({"eu"})


def test_unreachable_or_unauthorised_fails_safe(aggregator: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    fleet = FleetReader(
        AggregatorTargets(frontdoor_url=dead, regions={"eu": dead}, token="tok"), timeout_s=0.5
    )()
    assert fleet.providers == {"eu": frozenset()} and fleet.healthy_regions == frozenset()
    wrong = FleetReader(AggregatorTargets(frontdoor_url=aggregator, regions={}, token="bad"))()
    assert wrong.healthy_regions == frozenset()
