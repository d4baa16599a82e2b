"""Hostile bodies on every write path of the control plane: too large gets 413, nested
thousands deep gets 400, both as JSON errors; nothing is stored and the process goes on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.app import EXTENSION, create_app
from controlplane.config import Config, ServerConfig, StoreConfig
from controlplane.model import jsonbody
from tests.conftest import ROOT

AUTH = {"Authorization": "Bearer t"}
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
WRITES = [
    "/api/v1/alertmanager",
    "/api/v1/silences",
    "/api/v1/runbooks/isolate-provider/executions",
    "/api/v1/automation/pause",
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    config = Config(
        api_token="t",
        database_url=f"sqlite:///{tmp_path / 'cp.db'}",
        rules_dir=ROOT / "rules",
        runbooks_dir=ROOT / "runbooks",
        routing_file=ROOT / "config" / "routing.yml",
        server=ServerConfig(max_body_bytes=64 * 1024),
        # not the default var/controlplane-store of the checkout, shared by every test
        store=StoreConfig(checkpoint_path=tmp_path / "store"),
    )
    app = create_app(config)
    plane = app.extensions[EXTENSION]
    plane.start()
    try:
        yield app.test_client()
    finally:
        plane.stop()


@pytest.mark.parametrize("path", WRITES)
def test_a_body_over_the_limit_is_413_json(client: FlaskClient, path: str) -> None:
    body = b'{"comment": "' + b"x" * (80 * 1024) + b'"}'
    r = client.post(path, data=body, headers=AUTH, content_type="application/json")
    assert r.status_code == 413
    assert r.is_json and r.get_json()["message"]


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_thousands_deep_is_400_json(
    client: FlaskClient, path: str, body: bytes
) -> None:
    r = client.post(path, data=body, headers=AUTH, content_type="application/json")
    assert r.status_code == 400, r.data[:200]
    assert "nested deeper than 64" in r.get_json()["message"]


def test_nothing_is_stored_and_the_process_goes_on(client: FlaskClient) -> None:
    client.post("/api/v1/silences", data=DEEP, headers=AUTH, content_type="application/json")
    assert client.get("/api/v1/silences").get_json() == {"silences": []}
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/automation").get_json()["paused"] is False


def test_a_prometheus_api_form_over_the_limit_is_a_prometheus_error(client: FlaskClient) -> None:
    r = client.post("/api/v1/query", data={"query": "1" + "+1" * 40_000})
    assert r.status_code in (400, 413)  # werkzeug's form limit or the body limit
    assert r.get_json()["status"] == "error"
    assert "limit" in r.get_json()["error"]


# keys the write endpoints read, so generated bodies get past "unknown field" now and then
KEYS = st.sampled_from(
    ["matchers", "duration", "endsAt", "startsAt", "comment", "createdBy", "labels", "params",
     "dry_run", "reason", "user", "alerts", "version", "status", "name", "value", "isRegex"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.binary(max_size=512) | JSON.map(lambda v: json.dumps(v).encode())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(WRITES), body=BODIES)
def test_any_body_is_answered_2xx_or_4xx(client: FlaskClient, path: str, body: bytes) -> None:
    r = client.post(path, data=body, headers=AUTH, content_type="application/json")
    assert r.status_code < 500, r.data[:300]
    assert r.is_json


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'"[[[[[["', 0),  # brackets inside a string do not nest
        (b'["\\"[[[", [1]]', 2),  # nor after an escaped quote
        (b"[" * 100 + b"]" * 100, 65),  # counting stops past the limit
    ],
)
def test_depth(text: bytes, depth: int) -> None:
    assert jsonbody.depth(json.loads(text), stop_at=64) == depth


@pytest.mark.parametrize("levels", [65, 900, 5000])
def test_loads_refuses_past_the_limit_however_deep(levels: int) -> None:
    with pytest.raises(jsonbody.JSONBodyError, match="nested deeper than 64"):
        jsonbody.loads(b"[" * levels + b"]" * levels)
    assert jsonbody.loads(b"[" * 64 + b"]" * 64) is not None


def test_loads_keeps_ordinary_bodies() -> None:
    assert jsonbody.loads(b'{"labels": {"region": "eu"}, "params": [1, [2]]}') == {
        "labels": {"region": "eu"},
        "params": [1, [2]],
    }
    with pytest.raises(ValueError, match="Expecting property name"):
        jsonbody.loads(b"{not json")


def test_a_manual_run_without_the_labels_its_templates_need_is_400(client: FlaskClient) -> None:
    # found by the property test above: it was a 500 with a traceback in the log
    r = client.post("/api/v1/runbooks/isolate-provider/executions", json={}, headers=AUTH)
    assert r.status_code == 400
    assert "$labels.region is not set" in r.get_json()["message"]
