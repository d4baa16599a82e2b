"""Who may do what over HTTP, on a whole control plane: tokens name people, roles decide,
anonymous reads can be turned off, the dashboards' sign-in, and /-/reload changes who may."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from controlplane.access.session import COOKIE
from controlplane.app import EXTENSION, create_app
from controlplane.config import Config
from tests.conftest import ROOT

ACCESS = """
anonymous_read: false
users:
  - {name: vera, role: viewer, token_env: T_VERA}
  - {name: oncall, role: operator, token_env: T_ONCALL}
  - {name: alice, role: approver, token_env: T_ALICE}
"""
TOKENS = {"T_VERA": "vera-token", "T_ONCALL": "oncall-token", "T_ALICE": "alice-token"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FlaskClient, Path]]:
    for name in ("rules", "runbooks"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "access.yml").write_text(ACCESS)
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    config = Config(
        api_token="admin-token",
        database_url=f"sqlite:///{tmp_path / 'cp.db'}",
        rules_dir=tmp_path / "rules",
        runbooks_dir=tmp_path / "runbooks",
        routing_file=ROOT / "config" / "routing.yml",
        access_file=tmp_path / "access.yml",
        docs_dir=ROOT / "docs",
    )
    app = create_app(config, registry=CollectorRegistry())
    plane = app.extensions[EXTENSION]
    plane.start()
    try:
        yield app.test_client(), tmp_path
    finally:
        plane.stop()


def test_reads_need_a_token_when_anonymous_reads_are_off(world: tuple[FlaskClient, Path]) -> None:
    client, _ = world
    for path in ("/api/v1/executions", "/api/v1/query?query=up", "/api/v1/automation"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.get_json()["error"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(path, headers=bearer("vera-token")).status_code == 200
    assert client.post("/api/v1/query", data={"query": "up"}).status_code == 401
    assert (
        client.post("/api/v1/query", data={"query": "up"}, headers=bearer("vera-token")).status_code
        == 200
    )
    for open_path in ("/metrics", "/healthz", "/readyz", "/dash/signin"):
        assert client.get(open_path).status_code in (200, 503), open_path
    page = client.get("/dash/slos?range=6h")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/dash/signin?next=%2Fdash%2Fslos%3Frange%3D6h")


def test_writes_are_decided_by_the_tokens_role(world: tuple[FlaskClient, Path]) -> None:
    client, _ = world
    assert client.post("/api/v1/automation/pause", json={}).status_code == 401
    viewer = client.post("/api/v1/automation/pause", headers=bearer("vera-token"), json={})
    assert viewer.status_code == 403 and viewer.get_json()["error"] == "forbidden"
    paused = client.post(
        "/api/v1/automation/pause",
        headers={**bearer("oncall-token"), "X-User": "alice"},
        json={"reason": "incident 9", "user": "alice"},
    )
    assert paused.status_code == 200 and paused.get_json()["changed_by"] == "oncall"
    assert (
        client.post("/api/v1/automation/resume", headers=bearer("oncall-token")).status_code == 403
    )
    assert (
        client.post("/api/v1/automation/resume", headers=bearer("alice-token")).status_code == 200
    )
    events = client.get("/api/v1/audit", headers=bearer("vera-token")).get_json()["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("automation_paused", "oncall"),
        ("automation_resumed", "alice"),
    ]
    silence = {"matchers": ["alertname=X"], "duration": "1h", "comment": "c", "createdBy": "alice"}
    made = client.post("/api/v1/silences", headers=bearer("oncall-token"), json=silence)
    assert made.status_code == 201 and made.get_json()["silence"]["createdBy"] == "oncall"
    assert (
        client.post("/api/v1/silences", headers=bearer("vera-token"), json=silence).status_code
        == 403
    )


def test_reload_is_for_admins_and_changes_who_may(world: tuple[FlaskClient, Path]) -> None:
    client, tmp_path = world
    assert client.post("/-/reload", headers=bearer("alice-token")).status_code == 403
    (tmp_path / "access.yml").write_text(ACCESS.replace("role: operator", "role: viewer"))
    assert client.post("/-/reload", headers=bearer("admin-token")).status_code == 200
    demoted = client.post("/api/v1/automation/pause", headers=bearer("oncall-token"), json={})
    assert demoted.status_code == 403
    (tmp_path / "access.yml").write_text("users: [{name: x, role: boss}]")
    bad = client.post("/-/reload", headers=bearer("admin-token"))
    assert bad.status_code == 400 and "access.yml: users[0].role" in bad.get_json()["message"]
    assert client.get("/api/v1/automation", headers=bearer("vera-token")).status_code == 200


def cookie_of(client: FlaskClient) -> Any:
    return client.get_cookie(COOKIE, path="/dash/")


def test_signing_in_to_the_dashboards(world: tuple[FlaskClient, Path]) -> None:
    client, _ = world
    wrong = client.post("/dash/signin", data={"token": "guess", "next": "/dash/"})
    assert wrong.status_code == 401 and cookie_of(client) is None
    elsewhere = client.post(
        "/dash/signin", data={"token": "alice-token", "next": "https://evil.example/"}
    )
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/dash/"
    cookie = cookie_of(client)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    set_cookie = elsewhere.headers["Set-Cookie"]
    assert "Max-Age=43200" in set_cookie and "Path=/dash/" in set_cookie
    assert client.get("/dash/slos").status_code == 200  # the session lets the reader in
    layout = client.get("/dash/_dash-layout")
    assert layout.status_code == 200 and b'"alice"' in layout.data
    out = client.get("/dash/signout")
    assert out.status_code == 303 and cookie_of(client) is None
    assert client.get("/dash/slos").status_code == 302


def test_a_forged_or_stale_cookie_is_no_session(
    world: tuple[FlaskClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = world
    client.set_cookie(COOKIE, "eyJ1IjoiYWxpY2UifQ.forged.sig", path="/dash/")
    assert client.get("/dash/slos").status_code == 302
    client.post("/dash/signin", data={"token": "alice-token"})
    assert client.get("/dash/slos").status_code == 200
    # alice's token changes: her sessions end at the reload
    monkeypatch.setenv("T_ALICE", "new-alice-token")
    assert client.post("/-/reload", headers=bearer("admin-token")).status_code == 200
    assert client.get("/dash/slos").status_code == 302


def test_hostile_sign_ins_get_4xx_and_the_server_lives(world: tuple[FlaskClient, Path]) -> None:
    client, _ = world
    huge = client.post("/dash/signin", data={"token": "x" * 2_000_000})
    assert huge.status_code == 413  # over server.max_body_bytes, refused before it is read
    long_token = client.post("/dash/signin", data={"token": "x" * 100_000, "next": "//evil"})
    assert long_token.status_code == 401
    not_a_form = client.post("/dash/signin", data=b"\xff\x00{[", content_type="application/json")
    assert not_a_form.status_code == 401
    forged = client.get("/dash/slos", headers={"Cookie": "controlplane_session=" + "A" * 5000})
    assert forged.status_code == 302
    assert client.get("/healthz").status_code == 200
