"""The closed loop on the real processes: the whole bundle (wallet, two regions, front door,
load generator, control plane with the shipped rules and runbooks) runs on 127.0.0.1, and three
incidents are injected one after the other. For each: the right runbook ran and was verified,
the aggregator recovered, and players mostly did not notice. At the end, money reconciles."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from controlplane.demo import bundle as demo
from controlplane.demo.scenarios import SCENARIOS, Follower, Outcome
from tests.conftest import free_port

TOKEN = "e2e-admin-token"
ROLES = ("frontdoor", "eu", "latam", "wallet", "loadgen", "controlplane", "slack")


class Bundle:
    def __init__(self, plan: demo.DemoPlan, supervisor: demo.Supervisor) -> None:
        self.plan, self.supervisor = plan, supervisor
        self.http = requests.Session()
        self.follower = Follower(
            controlplane_url=plan.urls["controlplane"],
            admin_token=TOKEN,
            admin_urls={k: plan.urls[k] for k in ("eu", "latam", "wallet")},
            loadgen_url=plan.urls["loadgen"],
            session=self.http,
        )

    def admin(self, role: str, path: str) -> Any:
        return self.http.get(
            f"{self.plan.urls[role]}{path}", timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()

    def until(self, what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(f"{what}: not within {timeout_s:g}s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {n}\n{self.supervisor.log_tail(n, 1500)}" for n in ("controlplane", "eu")
        )


@pytest.fixture
def bundle(tmp_path: Path) -> Iterator[Bundle]:
    parser = argparse.ArgumentParser()
    demo.configure(parser)
    ports = [f"--{role}-port={free_port()}" for role in ROLES]
    args = parser.parse_args(
        [*ports, "--rate", "30", "--players", "60", "--data-dir", str(tmp_path / "bundle")]
    )
    plan = demo.make_plan(args, {"AGGREGATOR_ADMIN_TOKEN": TOKEN})
    demo.prepare(plan)
    supervisor = demo.Supervisor(env=plan.env, log_dir=plan.data_dir, python=sys.executable)
    never = threading.Event()
    try:
        for stage in plan.stages():
            for role in stage:
                supervisor.start(role.name, role.args)
            for role in stage:
                demo.wait_ready(supervisor, role.name, f"{role.url}/readyz", stop=never)
        yield Bundle(plan, supervisor)
    finally:
        for name in reversed(supervisor.names()):
            supervisor.stop(name, signal.SIGTERM, grace_s=15)
        supervisor.kill_group()


def check_outcome(out: Outcome, *, launches: float, rounds: float) -> None:
    timeline = "\n".join(f"{e.at_s:7.1f}s {e.text}" for e in out.events)
    assert out.execution_state == "succeeded", timeline
    assert out.alert_firing_s is not None and out.verified_s is not None, timeline
    assert out.resolved_s is not None, timeline
    assert out.impact["launch_success"] >= launches, out.impact
    assert out.impact["round_success"] >= rounds, out.impact


@pytest.mark.slow
def test_three_incidents_are_remediated_and_money_reconciles(bundle: Bundle) -> None:
    time.sleep(15)  # warm-up: the control plane's windows fill, players settle in

    # a provider goes down: isolated in seconds, restored through the canary once it answers
    provider = bundle.follower.run(
        SCENARIOS["provider-outage"], until="resolved", timeout_s=120, clear_after_verified_s=2
    )
    check_outcome(provider, launches=0.995, rounds=0.97)
    state = lambda: {p["id"]: p for p in bundle.admin("eu", "/admin/state")["providers"]}  # noqa: E731
    bundle.until("canary restore of evolution", lambda: not state()["evolution"]["isolated"])

    # the wallet's payout path fails: wins are owed and queued; replayed once it answers again
    wallet = replace(
        SCENARIOS["wallet-outage"], fault={**SCENARIOS["wallet-outage"].fault, "duration_s": 40}
    )
    owed = bundle.follower.run(wallet, until="resolved", timeout_s=150)
    check_outcome(owed, launches=0.99, rounds=0.99)
    assert any("refused" in e.text for e in owed.events), "never replays while the wallet fails"
    bundle.until(
        "retry queues empty",
        lambda: all(bundle.admin(r, "/admin/wallet/queue")["depth"] == 0 for r in ("eu", "latam")),
    )

    # a region stops serving: the front door fails over, the runbook drains it, undrains later
    region = replace(
        SCENARIOS["region-outage"], fault={**SCENARIOS["region-outage"].fault, "duration_s": 15}
    )
    drained = bundle.follower.run(region, until="resolved", timeout_s=150)
    check_outcome(drained, launches=0.98, rounds=0.95)
    regions = lambda: {r["id"]: r for r in bundle.admin("frontdoor", "/admin/state")["regions"]}  # noqa: E731
    bundle.until(
        "eu undrained and up", lambda: not regions()["eu"]["drained"] and regions()["eu"]["up"]
    )

    # money: every owed win paid, nothing lost or applied twice
    bundle.supervisor.stop("loadgen", signal.SIGINT, grace_s=60)
    plan = bundle.plan
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator.reconcile",
            "--report",
            str(plan.report_file),
            "--wallet-url",
            plan.urls["wallet"],
            "--region-url",
            plan.urls["eu"],
            "--region-url",
            plan.urls["latam"],
            "--drain-timeout",
            "30",
        ],
        env=dict(plan.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = json.loads(done.stdout)
    assert result["ok"] and result["mismatches"] == [], result
    audit = bundle.http.get(f"{plan.urls['controlplane']}/api/v1/audit/verify", timeout=10).json()
    assert audit["ok"], audit
