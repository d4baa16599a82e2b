"""A control plane killed in the middle of a runbook resumes it on restart, and no step acts twice.

`controlplane serve` runs as a real process on its own SQLite database, against a fake region
admin API that answers a repeated Idempotency-Key from memory, as the real aggregator does
(aggregator.httpapi's cache). A manual run of isolate -> wait -> restore is started over HTTP;
the process is killed (SIGKILL, or SIGTERM for a graceful stop) while the run is inside the wait,
or while the isolate call is still in flight; a second process on the same database must finish
the run: each action acted on once, every resend under the same key, `resumed` in the audit,
and the audit chain intact.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server

from aggregator.httpapi import IdempotencyCache, admin_endpoint, install_error_handlers
from tests.conftest import Proc, free_port, wait_http
from tests.controlplane.api.fakes import wait_for

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "killresume_data"
RUNBOOK = "isolate-wait-restore"  # killresume_data/runbooks/: isolate, wait 6s, restore
API_TOKEN = "cp-test-token"
AGGREGATOR_TOKEN = "agg-test-token"
PROVIDERS = tuple(f"pv{i}" for i in range(1, 9))
ISOLATE = "/admin/providers/pv3/isolate"
RESTORE = "/admin/providers/pv3/restore"


@dataclass
class FakeRegion:
    """Region `eu`'s admin API: every call recorded with its key; `acted` only the first of
    each key. `hold_isolate()` makes the isolate call act and then not answer until
    `release()`, which is what a process killed mid-call leaves behind."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (path, Idempotency-Key)
    acted: list[tuple[str, str]] = field(default_factory=list)
    isolated: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def __post_init__(self) -> None:
        self.released.set()

    def hold_isolate(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def app(self) -> Flask:
        app = Flask("fake-region")
        install_error_handlers(app)
        admin = admin_endpoint(AGGREGATOR_TOKEN, IdempotencyCache())

        @app.before_request
        def record() -> None:
            if request.method == "POST":
                self.calls.append((request.path, request.headers.get("Idempotency-Key", "")))

        @app.get("/admin/state")
        @admin
        def state() -> dict[str, Any]:
            return {"providers": [{"id": p, "isolated": p in self.isolated} for p in PROVIDERS]}

        @app.post("/admin/providers/<provider>/isolate")
        @admin
        def isolate(provider: str) -> dict[str, Any]:
            self.acted.append((request.path, request.headers["Idempotency-Key"]))
            self.isolated.add(provider)
            self.released.wait(timeout=30)  # bounded: a forgotten release cannot hang the test
            return {"provider": provider, "isolated": True}

        @app.post("/admin/providers/<provider>/restore")
        @admin
        def restore(provider: str) -> dict[str, Any]:
            self.acted.append((request.path, request.headers["Idempotency-Key"]))
            self.isolated.discard(provider)
            return {"provider": provider, "isolated": False, "canary_percent": 100}

        return app

    def keys(self, path: str) -> list[str]:
        return [key for p, key in self.calls if p == path]

    def acted_on(self, path: str) -> list[str]:
        return [key for p, key in self.acted if p == path]


@pytest.fixture
def region() -> Iterator[FakeRegion]:
    fake = FakeRegion()
    server = make_server("127.0.0.1", free_port(), fake.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
    fake.release()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass
class Plane:
    """`controlplane serve` processes, one after another, on one database and one port."""

    env: dict[str, str]
    log_dir: Path
    procs: list[Proc]
    url: str
    started: int = 0

    def start(self) -> Proc:
        self.started += 1
        proc = Proc(
            f"controlplane-{self.started}", ["controlplane", "serve"], self.env, self.log_dir
        )
        self.procs.append(proc.start())
        wait_http(f"{self.url}/readyz", timeout=60, proc=proc)
        return proc

    def run_manual(self) -> str:
        resp = requests.post(
            f"{self.url}/api/v1/runbooks/{RUNBOOK}/executions",
            json={"labels": {"region": "eu", "provider": "pv3"}},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["state"] == "running", body
        return str(body["id"])

    def execution(self, execution_id: str) -> dict[str, Any]:
        resp = requests.get(f"{self.url}/api/v1/executions/{execution_id}", timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def steps(self, execution_id: str) -> dict[str, str]:
        return {s["step_id"]: s["state"] for s in self.execution(execution_id)["steps"]}

    def finished(self, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            # the state is committed a moment before its audit event: wait for both
            ex = self.execution(execution_id)
            if ex["state"] in ("running", "verifying"):
                return None
            return ex if ex["state"] in {e["kind"] for e in ex["audit"]} else None

        return wait_for(final, f"final state of execution {execution_id}", timeout)


@pytest.fixture
def plane(tmp_path: Path, base_env: dict[str, str], procs: list[Proc], region: FakeRegion) -> Plane:
    port = free_port()
    rules = tmp_path / "rules"
    rules.mkdir()  # no rules: nothing fires on its own, only the manual run acts
    env = {k: v for k, v in base_env.items() if not k.startswith("CONTROLPLANE_")}
    env.update(
        CONTROLPLANE_PORT=str(port),
        CONTROLPLANE_API_TOKEN=API_TOKEN,
        CONTROLPLANE_DATABASE_URL=f"sqlite:///{tmp_path / 'controlplane.db'}",
        CONTROLPLANE_CHECKPOINT_PATH=str(tmp_path / "store"),
        CONTROLPLANE_RUNBOOKS_DIR=str(DATA / "runbooks"),
        CONTROLPLANE_RULES_DIR=str(rules),
        CONTROLPLANE_REGION_URLS=f"eu={region.url}",
        CONTROLPLANE_AGGREGATOR_TOKEN=AGGREGATOR_TOKEN,
        CONTROLPLANE_EXTERNAL_URL=f"http://127.0.0.1:{port}",
    )
    return Plane(env=env, log_dir=tmp_path, procs=procs, url=f"http://127.0.0.1:{port}")


def assert_finished_once(plane: Plane, region: FakeRegion, ex: dict[str, Any]) -> None:
    """Succeeded after a resume; each step acted on once, each resend under the first key."""
    logs = "\n".join(p.log()[-3000:] for p in plane.procs)
    assert ex["state"] == "succeeded", (ex, logs)
    assert {s["step_id"]: s["state"] for s in ex["steps"]} == {
        "isolate": "done",
        "hold": "done",
        "restore": "done",
    }
    isolate_key, restore_key = f"{ex['id']}:steps:isolate", f"{ex['id']}:steps:restore"
    assert region.acted_on(ISOLATE) == [isolate_key]
    assert region.acted_on(RESTORE) == [restore_key]
    assert set(region.keys(ISOLATE)) == {isolate_key}
    assert set(region.keys(RESTORE)) == {restore_key}
    assert region.isolated == set()
    kinds = [e["kind"] for e in ex["audit"]]
    assert kinds.count("resumed") == 1, kinds
    assert kinds.index("resumed") < kinds.index("succeeded")
    recorded = [e["data"]["step"] for e in ex["audit"] if e["kind"] == "step"]
    assert recorded == ["isolate", "hold", "restore"], recorded
    verify = requests.get(f"{plane.url}/api/v1/audit/verify", timeout=10)
    assert verify.status_code == 200, verify.text
    assert verify.json()["ok"] is True, verify.json()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_stopped_inside_the_wait_step_resumes_and_acts_once(
    plane: Plane, region: FakeRegion, sig: signal.Signals
) -> None:
    first = plane.start()
    ex_id = plane.run_manual()
    wait_for(
        lambda: plane.steps(ex_id) == {"isolate": "done", "hold": "started"},
        "the run inside its wait step",
    )
    assert region.acted_on(ISOLATE) == [f"{ex_id}:steps:isolate"]
    first.kill(sig)
    assert first.popen is not None
    if sig is signal.SIGTERM:
        # graceful: the wait is cut short, the run is left running in the database, exit 0
        assert first.popen.returncode == 0, first.log()
        assert "execution paused for shutdown" in first.log()
    else:
        assert first.popen.returncode == -signal.SIGKILL
    assert region.acted_on(RESTORE) == []  # nothing ran past the wait

    plane.start()
    assert_finished_once(plane, region, plane.finished(ex_id))
    assert region.keys(ISOLATE) == [f"{ex_id}:steps:isolate"]  # done before the kill: not resent


def test_killed_while_the_isolate_call_is_in_flight_resends_it_under_the_same_key(
    plane: Plane, region: FakeRegion
) -> None:
    region.hold_isolate()
    first = plane.start()
    ex_id = plane.run_manual()
    # the aggregator acted, but its answer never reached the control plane
    wait_for(lambda: region.acted_on(ISOLATE), "the isolate call at the region")
    assert plane.steps(ex_id) == {"isolate": "started"}
    first.kill(signal.SIGKILL)
    region.release()

    plane.start()
    ex = plane.finished(ex_id)
    assert_finished_once(plane, region, ex)
    # resent after the restart (the first process may have retried too, under the same key),
    # and answered from the region's memory of the first call
    assert len(region.keys(ISOLATE)) >= 2
    [isolate] = [s for s in ex["steps"] if s["step_id"] == "isolate"]
    assert isolate["result"] == {"status": 200, "response": {"provider": "pv3", "isolated": True}}
