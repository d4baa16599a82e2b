"""Shared fixtures: real servers where the behaviour is the point.

A test that needs a server absent on this machine skips with the reason; under CI=true it
fails instead, so a missing install step cannot hide behind a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from waitress import wasyncore
from waitress.server import create_server

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# The longest tests, started first (pytest-xdist's workers each take the next module when idle:
# one of these started last would keep the run going long after the other workers are done).
LONG_POLES = (
    "tests/e2e/",  # the closed loop: minutes
    "tests/dashboards/test_browser.py",  # Chromium, a page at a time
    "tests/controlplane/demo/test_bundle.py::test_demo_runs_every_role",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first, by module (a module's tests stay together, so its module-scoped fixtures
    are built once): LONG_POLES, then the modules with `slow` tests, then the rest, each in the
    order collected. It is also the order in which pytest-xdist's workers are given them."""

    def rank(item: pytest.Item) -> int:
        for i, prefix in enumerate(LONG_POLES):
            if item.nodeid.startswith(prefix):
                return i
        return len(LONG_POLES) + (0 if item.get_closest_marker("slow") else 1)

    module_rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        module_rank[module] = min(module_rank.get(module, rank(item)), rank(item))
    items.sort(key=lambda item: module_rank[item.nodeid.split("::")[0]])


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist gives each idle worker the next module (`--dist loadfile`), in the order
    above: a module's module-scoped fixtures (a real Prometheus, an export) are built once; and
    tests/dashboards/ as one, whose session-scoped incident scenario costs 15 s of CPU to build.
    (xdist_group marks would do it, but pytest-xdist 3.8 cannot apply them under pytest 9.2.)"""
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/dashboards/"):
                return "tests/dashboards/"
            return str(super()._split_scope(nodeid))

    return ModuleScheduling(config, log)


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail under CI, when a real component the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name!r} is not installed (Debian package)")
    assert path is not None
    return path


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require(_port_open("127.0.0.1", 5432), "PostgreSQL is not listening on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema per test, dropped afterwards: tests never see each other's rows."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`; always reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class ServedApp:
    """A WSGI app on 127.0.0.1:<free port>, in a thread, until `close()`."""

    def __init__(self, app: Any, *, threads: int = 8) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = create_server(app, host="127.0.0.1", port=self.port, threads=threads)
        self._thread = threading.Thread(target=self._run, name=f"served-{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # server.run() with a short select() timeout, which lets close() end the serving thread
        # promptly. Not through create_server(asyncore_loop_timeout=0.05): waitress reads that
        # setting as an int, 0, and the loop then spins a whole core for as long as it serves.
        # Closing from another thread may end the loop with an error on a closed descriptor.
        server: Any = self._server
        with contextlib.suppress(Exception):
            wasyncore.loop(timeout=0.05, map=server._map)

    def close(self) -> None:
        server: Any = self._server
        server.close()
        # keep-alive channels would keep the loop running; close them and the worker threads
        wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown()
        self._thread.join(5)


class Proc:
    """A role started as a real process on 127.0.0.1, stopped (and reaped) at teardown."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(
                [sys.executable, "-m", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        return self

    def kill(self, sig: int = 9) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(timeout=15)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_http(url: str, timeout: float = 20.0, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log()[-3000:]}")
        try:
            if requests.get(url, timeout=0.5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[Proc]]:
    """Collects started processes; all of them are stopped at teardown, logs kept in tmp_path."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop()


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGGREGATOR_", "WALLET_"))}
    env.update(
        AGGREGATOR_ADMIN_TOKEN="test-admin-token",
        AGGREGATOR_SESSION_SECRET="test-session-secret",
        WALLET_TOKEN_SECRET="test-wallet-secret",
        PYTHONUNBUFFERED="1",
    )
    return env
