"""Reload on SIGHUP and POST /-/reload: all the files or nothing, and what runs keeps running."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from controlplane.app import EXTENSION, create_app
from controlplane.config import Config, StoreConfig
from controlplane.errors import ConfigError
from controlplane.reload import Reloader
from tests.conftest import ROOT, free_port, wait_http
from tests.controlplane.api.fakes import wait_for
from tests.controlplane.api.test_serve import Server, env_with, servers  # noqa: F401

AUTH = {"Authorization": "Bearer t"}
NEW_GROUP = """
groups:
  - name: reloaded
    rules:
      - alert: ReloadedAlert
        expr: vector(1)
        labels: {severity: ticket}
        annotations: {summary: s, description: d, runbook_url: u}
"""


def copy_files(tmp_path: Path) -> Config:
    for name in ("rules", "runbooks", "config"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return Config(
        api_token="t",
        database_url=f"sqlite:///{tmp_path / 'cp.db'}",
        rules_dir=tmp_path / "rules",
        runbooks_dir=tmp_path / "runbooks",
        routing_file=tmp_path / "config" / "routing.yml",
        # not the default var/controlplane-store of the checkout, shared by every test
        store=StoreConfig(checkpoint_path=tmp_path / "store"),
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FlaskClient, Config, CollectorRegistry]]:
    config, registry = copy_files(tmp_path), CollectorRegistry()
    app = create_app(config, registry=registry)
    plane = app.extensions[EXTENSION]
    plane.start()
    try:
        yield app.test_client(), config, registry
    finally:
        plane.stop()


def groups(client: FlaskClient) -> set[str]:
    return {g["name"] for g in client.get("/api/v1/rules").get_json()["data"]["groups"]}


def test_reload_picks_up_new_files_and_keeps_the_rest(
    world: tuple[FlaskClient, Config, CollectorRegistry],
) -> None:
    client, config, registry = world
    before = groups(client)
    assert client.post("/-/reload").status_code == 401
    (config.rules_dir / "new.yml").write_text(NEW_GROUP)
    runbook = config.runbooks_dir / "drain-region.yaml"
    runbook.write_text(runbook.read_text().replace("name: drain-region", "name: drain-region-2"))
    answer = client.post("/-/reload", headers=AUTH)
    assert answer.status_code == 200, answer.get_json()
    assert groups(client) == before | {"reloaded"}
    names = {r["name"] for r in client.get("/api/v1/runbooks").get_json()["runbooks"]}
    assert "drain-region-2" in names and "drain-region" not in names
    assert registry.get_sample_value("controlplane_config_last_reload_successful") == 1


def test_a_bad_file_changes_nothing_and_says_where(
    world: tuple[FlaskClient, Config, CollectorRegistry],
) -> None:
    client, config, registry = world
    before = groups(client)
    (config.rules_dir / "new.yml").write_text(NEW_GROUP)
    routing = config.routing_file
    routing.write_text(routing.read_text().replace("receiver: oncall", "receiver: nobody", 1))
    answer = client.post("/-/reload", headers=AUTH)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "reload_failed"
    assert f"{routing}: route.routes" in answer.get_json()["message"]
    assert "nobody" in answer.get_json()["message"]
    assert groups(client) == before  # the good new rule file was not taken either
    assert registry.get_sample_value("controlplane_config_last_reload_successful") == 0
    routing.write_text(routing.read_text().replace("receiver: nobody", "receiver: oncall"))
    assert client.post("/-/reload", headers=AUTH).status_code == 200
    assert registry.get_sample_value("controlplane_config_last_reload_successful") == 1


def test_the_reloader_applies_nothing_when_reading_fails() -> None:
    applied: list[int] = []

    def read() -> int:
        raise ConfigError("rules/x.yml: groups[0].name: missing")

    reloader = Reloader(read=read, apply=[applied.append], registry=CollectorRegistry())
    with pytest.raises(ConfigError, match=r"groups\[0\]\.name"):
        reloader.reload()
    assert applied == []


@pytest.mark.slow
def test_sighup_reloads_a_running_server(
    tmp_path: Path,
    servers: list[Server],  # noqa: F811
) -> None:
    config = copy_files(tmp_path)
    port = free_port()
    env = env_with(
        CONTROLPLANE_RULES_DIR=str(config.rules_dir),
        CONTROLPLANE_RUNBOOKS_DIR=str(config.runbooks_dir),
        CONTROLPLANE_ROUTING_FILE=str(config.routing_file),
        CONTROLPLANE_DATABASE_URL=config.database_url,
        CONTROLPLANE_API_TOKEN="t",
        CONTROLPLANE_CHECKPOINT_PATH=str(tmp_path / "store"),
    )
    server = Server(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    servers.append(server)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/readyz")
    (config.rules_dir / "new.yml").write_text(NEW_GROUP)
    server.popen.send_signal(signal.SIGHUP)

    def reloaded() -> bool:
        body = requests.get(f"{url}/api/v1/rules", timeout=5).json()
        return "reloaded" in {g["name"] for g in body["data"]["groups"]}

    wait_for(reloaded, "the new group after SIGHUP")
    assert server.stop() == 0
