"""The control plane serves the dashboards at /dash/ from its own Flask server, beside
/api/v1, and every script and stylesheet they need comes from that server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.app import EXTENSION, create_app
from controlplane.config import Config, StoreConfig
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp: Path = tmp_path_factory.mktemp("mount")
    config = Config(
        database_url=f"sqlite:///{tmp / 'cp.db'}",
        rules_dir=ROOT / "rules",
        runbooks_dir=ROOT / "runbooks",
        routing_file=ROOT / "config" / "routing.yml",
        # not the default var/controlplane-store of the checkout, shared by every test
        store=StoreConfig(checkpoint_path=tmp / "store"),
    )
    app = create_app(config)
    plane = app.extensions[EXTENSION]
    plane.start()
    try:
        yield app
    finally:
        plane.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.mark.parametrize(
    "path",
    [
        "/dash/",
        "/dash/slos",
        "/dash/slos/launches-launch-success",
        "/dash/executions",
        "/dash/executions/nope",
        "/dash/audit",
    ],
)
def test_every_page_is_served_under_the_prefix(client: FlaskClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert '"url_base_pathname":"\\u002fdash\\u002f"' in page.get_data(as_text=True)


def test_every_script_and_stylesheet_is_served_here(client: FlaskClient) -> None:
    html = client.get("/dash/").get_data(as_text=True)
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/dash/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "unpkg.com" not in html and "cdn." not in html


def test_the_api_still_answers_beside_the_dashboards(client: FlaskClient) -> None:
    assert (
        client.get("/api/v1/query", query_string={"query": "1+1"}).get_json()["status"] == "success"
    )
    assert client.get("/healthz").status_code == 200


def test_links_in_the_layout_carry_the_prefix(client: FlaskClient) -> None:
    layout = json.dumps(client.get("/dash/_dash-layout").get_json())
    hrefs = re.findall(r'"href": "([^"]*)"', layout)
    assert hrefs and all(h.startswith("/dash/") for h in hrefs), hrefs


def test_the_overview_callbacks_answer_from_the_live_pipeline(client: FlaskClient) -> None:
    dependencies = client.get("/dash/_dash-dependencies").get_json()
    outputs = {d["output"] for d in dependencies}
    assert "ov-automation.children" in outputs and "ov-slos.children" in outputs
    body = {
        "output": "ov-automation.children",
        "outputs": {"id": "ov-automation", "property": "children"},
        "inputs": [
            {"id": "beat", "property": "data", "value": 1},
            {"id": "url", "property": "search", "value": "?range=6h"},
        ],
        "changedPropIds": ["beat.data"],
        "state": [],
    }
    answer = client.post("/dash/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    text = answer.get_data(as_text=True)
    assert "action budget" in text and "active" in text


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"{not json",
        b"[]",
        b"{}",
        b'{"output": "no-such.children", "inputs": []}',
        b'{"output": "ov-automation.children", "inputs": "x"}',
    ],
    ids=[
        "deep-array",
        "deep-object",
        "malformed",
        "not-an-object",
        "no-output",
        "unknown",
        "bad-inputs",
    ],
)
def test_hostile_callback_requests_get_400_and_the_app_answers(
    client: FlaskClient, body: bytes
) -> None:
    answer = client.post("/dash/_dash-update-component", data=body, content_type="application/json")
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert answer.get_json()["error"] == "bad_request"
    assert client.get("/healthz").status_code == 200
    assert client.get("/dash/").status_code == 200


def test_an_oversized_callback_request_gets_413(client: FlaskClient) -> None:
    body = b'{"output": "' + b"x" * (2 << 20) + b'"}'
    answer = client.post("/dash/_dash-update-component", data=body, content_type="application/json")
    assert answer.status_code == 413
