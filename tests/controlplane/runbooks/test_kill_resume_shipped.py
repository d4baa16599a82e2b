"""Each shipped runbook, in a real `controlplane serve` killed by its crash hook, finishes once.

As tests/controlplane/test_kill_resume.py, but triggered the real way: the control plane
scrapes a fake aggregator (region `eu` admin API, front door admin API and /metrics in one
app, answering repeated Idempotency-Keys from aggregator.httpapi's cache), evaluates a rule
file whose alerts are the shipped runbooks' triggers (switched on and off by the test through
a `test_failing` gauge), and runs `runbooks/` as shipped, except that isolate-provider's 30 s
canary watch is cut to 3 s. Each process dies by `CONTROLPLANE_TEST_HOOKS=1
CONTROLPLANE_CRASH_AT=...` (SIGKILL at that exact point); the next one starts without it.

    isolate-provider  killed while verifying, the alert still firing: the resumed execution is
                      the alert's (no second one, no refusal); killed again inside the on_resolved
                      canary watch once the alert resolved: the canary finishes, then full restore
    drain-region      killed with the drain call answered but unrecorded; the region recovers
                      while the control plane is down: resent under its key, then undrained
    replay-wallet-queue  killed with the replay answered but unrecorded, alert still firing
    force-replay-wallet-queue  (approval, two approvers) killed with the second approval
                      recorded but not launched: the restart launches it once, nobody approves
                      again

Approvals go through `approve()`, the one place that knows how the API names a person.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from aggregator.httpapi import IdempotencyCache, admin_endpoint, install_error_handlers
from controlplane.db import create_engine
from controlplane.runbooks.store import Execution, ExecutionStore, State
from tests.conftest import ROOT, Proc, free_port, wait_http
from tests.controlplane.api.fakes import wait_for

pytestmark = pytest.mark.slow

API_TOKEN = "cp-test-token"
AGGREGATOR_TOKEN = "agg-test-token"
PROVIDERS = tuple(f"pv{i}" for i in range(1, 9))
ISOLATE = "/admin/providers/pv3/isolate"
RESTORE = "/admin/providers/pv3/restore"
DRAIN, UNDRAIN = "/admin/regions/eu/drain", "/admin/regions/eu/undrain"
REPLAY = "/admin/wallet/queue/replay"
RULES = """
groups:
  - name: crash-test
    interval: 1s
    rules:
      - alert: ProviderFailing
        expr: test_failing{kind="provider"} == 1
        labels: {severity: page}
      - alert: RegionDown
        expr: test_failing{kind="region"} == 1
        labels: {severity: page}
      - alert: WalletQueueBacklog
        expr: test_failing{kind="wallet"} == 1
      - alert: WalletQueueStale
        expr: test_failing{kind="stale"} == 1
        labels: {severity: page}
"""


@dataclass
class FakeAggregator:
    """Every POST recorded with its key (`calls`); `acted` only the first of each key."""

    failing: set[str] = field(default_factory=set)  # provider | region | wallet | stale
    calls: list[tuple[str, str]] = field(default_factory=list)
    acted: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    isolated: set[str] = field(default_factory=set)
    canary: dict[str, int] = field(default_factory=dict)
    drained: set[str] = field(default_factory=set)
    queue_depth: int = 50
    wallet_ok: int = 0
    url: str = ""

    def app(self) -> Flask:
        app = Flask("fake-aggregator")
        install_error_handlers(app)
        admin = admin_endpoint(AGGREGATOR_TOKEN, IdempotencyCache())

        @app.before_request
        def record() -> None:
            if request.method == "POST":
                self.calls.append((request.path, request.headers.get("Idempotency-Key", "")))

        @app.get("/admin/state")
        @admin
        def state() -> dict[str, Any]:
            regions = [{"id": r, "up": True, "drained": r in self.drained} for r in ("eu", "latam")]
            providers = [{"id": p, "isolated": p in self.isolated} for p in PROVIDERS]
            return {"providers": providers, "regions": regions}

        app.get("/metrics")(self.metrics)
        self._actions(app, admin)
        return app

    def _act(self) -> dict[str, Any]:
        """The request's body; the request recorded as one that acted (not a replay)."""
        body = request.get_json(silent=True) or {}
        self.acted.append((request.path, request.headers["Idempotency-Key"], body))
        return body

    def _actions(self, app: Flask, admin: Callable[[Any], Any]) -> None:
        act = self._act

        @app.post("/admin/providers/<provider>/isolate")
        @admin
        def isolate(provider: str) -> dict[str, Any]:
            act()
            self.isolated.add(provider)
            return {"provider": provider, "isolated": True}

        @app.post("/admin/providers/<provider>/restore")
        @admin
        def restore(provider: str) -> dict[str, Any]:
            self.canary[provider] = int(act()["canary_percent"])
            self.isolated.discard(provider)
            return {"provider": provider, "canary_percent": self.canary[provider]}

        @app.post("/admin/regions/<region>/<verb>")
        @admin
        def drain(region: str, verb: str) -> dict[str, Any]:
            act()
            (self.drained.add if verb == "drain" else self.drained.discard)(region)
            return {"region": region, "drained": region in self.drained}

        @app.post("/admin/wallet/queue/replay")
        @admin
        def replay() -> dict[str, Any]:
            act()
            replayed, self.queue_depth = self.queue_depth, 0
            return {"replayed": replayed, "settled": replayed, "failed": 0, "remaining": 0}

    def metrics(self) -> Response:
        self.wallet_ok += 10  # a wallet answering every call: replay's precondition
        lines = [
            *(
                f'test_failing{{kind="{kind}",region="eu"{extra}}} {int(kind in self.failing)}'
                for kind, extra in (
                    ("provider", ',provider="pv3"'),
                    ("region", ""),
                    ("wallet", ""),
                    ("stale", ""),
                )
            ),
            f'casino_provider_isolated{{region="eu",provider="pv3"}} {int("pv3" in self.isolated)}',
            'casino:launch_success:ratio_rate1m{region="eu"} 1',
            'casino:provider_probe_success:avg10s{region="eu",provider="pv3"} 1',
            'casino:provider_failure:ratio_rate10s{region="eu",provider="pv3"} 0',
            f'casino_region_weight{{region="eu"}} {0 if "eu" in self.drained else 1}',
            f'casino_wallet_queue_depth{{region="eu"}} {self.queue_depth}',
            f'casino_wallet_requests_total{{region="eu",outcome="ok"}} {self.wallet_ok}',
        ]
        return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")

    def keys(self, path: str) -> list[str]:
        return [key for p, key in self.calls if p == path]

    def acted_on(self, path: str) -> list[str]:
        return [key for p, key, _body in self.acted if p == path]


@pytest.fixture
def aggregator() -> Iterator[FakeAggregator]:
    fake = FakeAggregator()
    server = make_server("127.0.0.1", free_port(), fake.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
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

    def start(self, crash_at: str = "", store: str = "store") -> Proc:
        """`store`: the TSDB checkpoint directory; a new one forgets every sample seen."""
        env = {**self.env, "CONTROLPLANE_CHECKPOINT_PATH": str(self.log_dir / store)}
        if crash_at:
            env.update(CONTROLPLANE_TEST_HOOKS="1", CONTROLPLANE_CRASH_AT=crash_at)
        proc = Proc(
            f"controlplane-{len(self.procs) + 1}", ["controlplane", "serve"], env, self.log_dir
        )
        self.procs.append(proc.start())
        wait_http(f"{self.url}/readyz", timeout=60, proc=proc)
        return proc

    def died(self, proc: Proc, timeout: float = 30.0) -> None:
        """The process killed itself at its crash point."""
        assert proc.popen is not None
        proc.popen.wait(timeout=timeout)
        assert proc.popen.returncode == -signal.SIGKILL, proc.log()[-3000:]

    def stored(self, runbook: str) -> tuple[Execution, dict[str, str]]:
        """While no process runs: the one execution of `runbook` and its steps' states."""
        engine = create_engine(self.env["CONTROLPLANE_DATABASE_URL"])
        try:
            store = ExecutionStore(engine)
            [ex] = store.find(runbook=runbook)
            return ex, {s.step_id: s.state for s in store.steps_of(ex.id)}
        finally:
            engine.dispose()

    def get(self, path: str) -> Any:
        resp = requests.get(f"{self.url}{path}", timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def executions(self, runbook: str) -> list[dict[str, Any]]:
        found = self.get(f"/api/v1/executions?runbook={runbook}")["executions"]
        return [self.get(f"/api/v1/executions/{e['id']}") for e in found]

    def only(self, runbook: str) -> dict[str, Any]:
        executions = self.executions(runbook)
        assert len(executions) == 1, [(e["state"], e["reason"]) for e in executions]
        return executions[0]

    def settled(self, runbook: str, timeout: float = 45.0) -> dict[str, Any]:
        """The one execution of `runbook`, once its alert's episode is over."""

        def done() -> dict[str, Any] | None:
            ex = self.only(runbook)
            return ex if ex["resolution"] in ("done", "failed", "aborted") else None

        return wait_for(done, f"the end of {runbook}'s episode", timeout)

    def firing(self, alertname: str) -> bool:
        alerts = self.get("/api/v1/alerts")["data"]["alerts"]
        return any(a["labels"]["alertname"] == alertname for a in alerts)

    def holds(self, expr: str) -> bool:
        body = self.get(f"/api/v1/query?query={quote(expr)}")
        return bool(body["data"]["result"])

    def verify_audit(self) -> None:
        verify = self.get("/api/v1/audit/verify")
        assert verify["ok"] is True, verify


@pytest.fixture
def plane(
    tmp_path: Path, base_env: dict[str, str], procs: list[Proc], aggregator: FakeAggregator
) -> Iterator[Plane]:
    port = free_port()
    rules, runbooks = tmp_path / "rules", tmp_path / "runbooks"
    rules.mkdir()
    (rules / "crash-test.yml").write_text(RULES)
    runbooks.mkdir()
    for shipped in (ROOT / "runbooks").glob("*.yaml"):
        text = shipped.read_text()
        if shipped.name == "isolate-provider.yaml":
            assert "duration: 30s" in text
            text = text.replace("duration: 30s", "duration: 3s")  # the canary watch
        (runbooks / shipped.name).write_text(text)
    env = {k: v for k, v in base_env.items() if not k.startswith("CONTROLPLANE_")}
    env.update(
        CONTROLPLANE_PORT=str(port),
        CONTROLPLANE_API_TOKEN=API_TOKEN,
        # the approvers of the shipped config/access.yml
        CONTROLPLANE_ACCESS_FILE=str(ROOT / "config" / "access.yml"),
        CONTROLPLANE_TOKEN_ALICE=PEOPLE["alice"],
        CONTROLPLANE_TOKEN_BOB=PEOPLE["bob"],
        CONTROLPLANE_DATABASE_URL=f"sqlite:///{tmp_path / 'controlplane.db'}",
        CONTROLPLANE_RUNBOOKS_DIR=str(runbooks),
        CONTROLPLANE_RULES_DIR=str(rules),
        CONTROLPLANE_SCRAPE_TARGETS=f"aggregator={aggregator.url}/metrics",
        CONTROLPLANE_SCRAPE_INTERVAL="1s",
        CONTROLPLANE_REGION_URLS=f"eu={aggregator.url}",
        CONTROLPLANE_FRONTDOOR_URL=aggregator.url,
        CONTROLPLANE_AGGREGATOR_TOKEN=AGGREGATOR_TOKEN,
        CONTROLPLANE_EXTERNAL_URL=f"http://127.0.0.1:{port}",
    )
    yield Plane(env=env, log_dir=tmp_path, procs=procs, url=f"http://127.0.0.1:{port}")
    for proc in procs:  # killed, as every process here: a graceful stop takes seconds
        proc.kill(signal.SIGKILL)


def assert_once(aggregator: FakeAggregator, ex: dict[str, Any], *steps: tuple[str, str]) -> None:
    """Each (path, phase:step) acted on once, under its key; nothing else acted; resends only
    under those keys."""
    expected = [(path, f"{ex['id']}:{step}") for path, step in steps]
    assert [(path, key) for path, key, _body in aggregator.acted] == expected
    assert set(aggregator.calls) == set(expected)
    assert all(s["state"] == "done" for s in ex["steps"]), ex["steps"]


def test_isolate_provider_killed_verifying_then_inside_its_canary_watch(
    plane: Plane, aggregator: FakeAggregator
) -> None:
    first = plane.start(crash_at="verify::before")
    aggregator.failing.add("provider")
    plane.died(first)
    assert plane.stored("isolate-provider")[0].state is State.VERIFYING

    second = plane.start(crash_at="on_resolved:watch:started")
    wait_for(lambda: plane.only("isolate-provider")["state"] == "succeeded", "the resumed verify")
    wait_for(lambda: plane.firing("ProviderFailing"), "the alert firing after the restart")
    wait_for(lambda: plane.holds('ALERTS{alertname="ProviderFailing"}'), "a second evaluation")
    assert plane.only("isolate-provider")["resolution"] == "awaiting"  # no re-trigger, no refusal
    aggregator.failing.discard("provider")
    plane.died(second)
    assert aggregator.canary == {"pv3": 10}

    plane.start()
    ex = plane.settled("isolate-provider")
    assert (ex["state"], ex["resolution"]) == ("succeeded", "done")
    assert aggregator.canary == {"pv3": 100} and aggregator.isolated == set()
    assert_once(
        aggregator,
        ex,
        (ISOLATE, "steps:isolate"),
        (RESTORE, "on_resolved:canary"),
        (RESTORE, "on_resolved:full"),
    )
    watch = next(s for s in ex["steps"] if s["step_id"] == "watch")
    assert watch["result"]["waited_s"] < 3  # counted from its first start, not again
    kinds = [e["kind"] for e in ex["audit"]]
    assert kinds.count("resumed") == 2 and kinds.count("on_resolved") == 1
    plane.verify_audit()


def test_drain_region_killed_in_flight_while_the_region_recovers(
    plane: Plane, aggregator: FakeAggregator
) -> None:
    first = plane.start(crash_at="steps:drain:acted", store="store-1")
    aggregator.failing.add("region")
    plane.died(first)
    assert aggregator.drained == {"eu"}
    assert plane.stored("drain-region")[1] == {"drain": "started"}
    aggregator.failing.discard("region")  # recovered while the control plane was down

    # a new TSDB: the restarted process never sees the alert, so no resolved event comes
    plane.start(store="store-2")
    ex = plane.settled("drain-region")
    assert (ex["state"], ex["resolution"]) == ("succeeded", "done")
    assert aggregator.drained == set()
    assert_once(aggregator, ex, (DRAIN, "steps:drain"), (UNDRAIN, "on_resolved:undrain"))
    assert len(aggregator.keys(DRAIN)) >= 2  # resent after the restart, answered from memory
    resolved = [e["data"] for e in ex["audit"] if e["kind"] == "alert_resolved"]
    assert resolved == [{"reason": "alert neither firing nor pending"}]
    plane.verify_audit()


def test_replay_wallet_queue_killed_in_flight_with_the_alert_still_firing(
    plane: Plane, aggregator: FakeAggregator
) -> None:
    wallet_ok = (
        'sum by (region) (rate(casino_wallet_requests_total{region="eu", outcome=~"ok|declined"}[5s]))'
        ' / sum by (region) (rate(casino_wallet_requests_total{region="eu"}[5s])) > 0.99'
    )
    first = plane.start(crash_at="steps:replay:acted")
    wait_for(lambda: plane.holds(wallet_ok), "the wallet answering again")
    aggregator.failing.add("wallet")
    plane.died(first)

    plane.start()
    wait_for(lambda: plane.only("replay-wallet-queue")["state"] == "succeeded", "the resumed run")
    wait_for(lambda: plane.firing("WalletQueueBacklog"), "the alert firing after the restart")
    wait_for(lambda: plane.holds('ALERTS{alertname="WalletQueueBacklog"}'), "a second evaluation")
    assert plane.only("replay-wallet-queue")["resolution"] == "awaiting"
    aggregator.failing.discard("wallet")
    ex = plane.settled("replay-wallet-queue")
    assert (ex["state"], ex["resolution"]) == ("succeeded", "done")
    assert_once(aggregator, ex, (REPLAY, "steps:replay"))
    assert aggregator.queue_depth == 0
    plane.verify_audit()


PEOPLE = {"alice": "alice-kill-token", "bob": "bob-kill-token"}


def approve(base_url: str, execution_id: str, who: str) -> requests.Response:
    """`who` approves the execution through the API, with their own token."""
    return requests.post(
        f"{base_url}/api/v1/executions/{execution_id}/approve",
        headers={"Authorization": f"Bearer {PEOPLE[who]}"},
        timeout=10,
    )


def test_force_replay_wallet_queue_killed_between_its_second_approval_and_its_launch(
    plane: Plane, aggregator: FakeAggregator
) -> None:
    runbook = "force-replay-wallet-queue"
    first = plane.start(crash_at="approval:2:after")
    aggregator.failing.add("stale")
    pending = wait_for(
        lambda: next(
            (e for e in plane.executions(runbook) if e["state"] == "pending_approval"), None
        ),
        "the request for two approvals",
    )
    assert aggregator.calls == []  # nothing acts before two people said so
    first_approval = approve(plane.url, pending["id"], "alice")
    assert first_approval.status_code == 200, first_approval.text
    assert first_approval.json()["state"] == "pending_approval"
    with pytest.raises(requests.ConnectionError):  # the process dies with bob's approval
        approve(plane.url, pending["id"], "bob")
    plane.died(first)
    stored, steps = plane.stored(runbook)
    assert (stored.state, steps) == (State.PENDING_APPROVAL, {})
    assert [a["user"] for a in stored.approvals] == ["alice", "bob"]

    plane.start()
    wait_for(lambda: plane.only(runbook)["state"] == "succeeded", "the launch after the restart")
    aggregator.failing.discard("stale")
    ex = plane.settled(runbook)
    assert (ex["state"], ex["resolution"]) == ("succeeded", "done")
    assert_once(aggregator, ex, (REPLAY, "steps:replay"))
    assert [a["user"] for a in ex["approvals"]] == ["alice", "bob"]
    kinds = [e["kind"] for e in ex["audit"]]
    assert (kinds.count("approved"), kinds.count("running")) == (2, 1)
    plane.verify_audit()
