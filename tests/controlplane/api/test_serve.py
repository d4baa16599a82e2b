"""`controlplane serve` as a real process: config from file and environment, probes, the
Prometheus API, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_http
from tests.controlplane.api.fakes import Exporter, wait_for

pytestmark = pytest.mark.slow


class Server:
    """`python -m controlplane ...` with its output in a file; always reaped."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "controlplane", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)
            raise AssertionError(f"no exit {timeout}s after SIGTERM:\n{self.log()}") from None


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.popen.poll() is None:
            server.popen.kill()
            server.popen.wait(timeout=5)


def env_with(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLPLANE_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def in_tmp(tmp_path: Path) -> str:
    """The database in the test's folder: the default, var/ under ROOT, is shared by every test
    (and every pytest-xdist worker) that starts a server from the checkout."""
    return f"sqlite:///{tmp_path / 'controlplane.db'}"


def test_serve_remote_mode_until_sigterm(tmp_path: Path, servers: list[Server]) -> None:
    port = free_port()
    config = tmp_path / "cp.yaml"
    config.write_text(f"query: {{prometheus_url: 'http://127.0.0.1:{free_port()}'}}\n")
    env = env_with(CONTROLPLANE_CONFIG=str(config), CONTROLPLANE_DATABASE_URL=in_tmp(tmp_path))
    proc = Server(["serve", "--port", str(port)], env, tmp_path / "cp.log")
    servers.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", timeout=60)
    assert requests.get(f"{url}/readyz", timeout=5).json()["status"] == "ready"
    r = requests.post(f"{url}/api/v1/query", data={"query": "up"}, timeout=10)
    assert r.status_code == 503
    assert r.json()["errorType"] == "unavailable"
    with requests.Session() as keep_alive:
        # an idle keep-alive connection must not hold the stopping server open
        metrics = keep_alive.get(f"{url}/metrics", timeout=5).text
        assert "controlplane_http_requests_total" in metrics
        assert proc.stop(timeout=15) == 0
    assert f"controlplane listening on http://127.0.0.1:{port}" in proc.log()


def test_serve_refuses_a_bad_config(tmp_path: Path, servers: list[Server]) -> None:
    config = tmp_path / "cp.yaml"
    config.write_text("scrape: {interval: 5x}\n")
    proc = Server(["serve", "--config", str(config)], env_with(), tmp_path / "cp.log")
    servers.append(proc)
    assert proc.popen.wait(timeout=60) == 2, proc.log()
    assert f"{config}: scrape.interval: '5x' is not a duration" in proc.log()


def test_serve_scrapes_and_checkpoints_at_shutdown(tmp_path: Path, servers: list[Server]) -> None:
    exporter = Exporter()
    try:
        config = tmp_path / "cp.yaml"
        config.write_text(
            "scrape:\n"
            "  targets:\n"
            f"    - {{job: demo, url: 'http://127.0.0.1:{exporter.port}', interval: 500ms}}\n"
            f"store: {{checkpoint_path: '{tmp_path / 'store'}'}}\n"
        )
        port = free_port()
        env = env_with(
            CONTROLPLANE_CONFIG=str(config),
            CONTROLPLANE_PORT=str(port),
            CONTROLPLANE_DATABASE_URL=in_tmp(tmp_path),
        )
        proc = Server(["serve"], env, tmp_path / "cp.log")
        servers.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", timeout=60)
        with requests.Session() as http:

            def temperature() -> list[Any]:
                r = http.get(f"{url}/api/v1/query", params={"query": "demo_temperature"})
                assert r.json()["status"] == "success", (r.text, proc.log())
                return r.json()["data"]["result"]  # type: ignore[no-any-return]

            def health() -> list[str]:
                targets = http.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
                return [t["health"] for t in targets]

            wait_for(temperature, "a scraped sample")
            # the target's status is set just after its samples are stored
            wait_for(lambda: health() == ["up"], "target health up")
        assert proc.stop() == 0
    finally:
        exporter.close()
    assert list((tmp_path / "store").glob("snapshot-*.npz"))

    # the next start, with no targets at all, answers from the checkpoint
    config.write_text(f"store: {{checkpoint_path: '{tmp_path / 'store'}'}}\n")
    again = Server(
        ["serve", "--config", str(config), "--port", str(port)],
        env_with(CONTROLPLANE_DATABASE_URL=in_tmp(tmp_path)),
        tmp_path / "again.log",
    )
    servers.append(again)
    wait_http(f"{url}/readyz", timeout=60)
    query = {"query": "demo_temperature", "time": str(time.time())}
    body = requests.get(f"{url}/api/v1/query", params=query, timeout=10).json()
    assert body["status"] == "success", (body, again.log())
    assert [r["value"][1] for r in body["data"]["result"]] == ["21.5"]
    assert again.stop() == 0


def test_serve_on_a_taken_port_exits_1(tmp_path: Path, servers: list[Server]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_with(CONTROLPLANE_CHECKPOINT_PATH=str(tmp_path / "store"))
        proc = Server(["serve", "--port", str(port)], env, tmp_path / "cp.log")
        servers.append(proc)
        assert proc.popen.wait(timeout=60) == 1, proc.log()
    assert "controlplane serve: " in proc.log()
    assert "Traceback" not in proc.log()
    # it never started: no checkpoint directory was created
    assert not (tmp_path / "store").exists()
