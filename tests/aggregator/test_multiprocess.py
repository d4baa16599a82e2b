"""The real thing: wallet, two regions, front door and load generator as processes on
127.0.0.1. A region is SIGKILLed under load and restarted on its database; players keep playing
through the other region, and afterwards the wallet ledger reconciles to the cent."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from aggregator.reconcile import drain_queues, fetch_ledger, reconcile
from tests.conftest import Proc, free_port, wait_http

TOKEN = "test-admin-token"  # base_env's
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def get(url: str, **kwargs: Any) -> Any:
    reply = requests.get(url, timeout=10, **kwargs)
    reply.raise_for_status()
    return reply.json()


def post(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(url, json=body, timeout=15)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def region_state(frontdoor: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in get(f"{frontdoor}/admin/state", headers=AUTH)["regions"]}


def play_as_new_player(frontdoor: str, wallet: str, user: str) -> tuple[str, dict[str, Any]]:
    """Our own player, outside the load generator: launch, then one round."""
    token = post(f"{wallet}/operator/token", {"user": user}).json()
    launch = post(
        f"{frontdoor}/player/launch",
        {"user": user, "token": token["token"], "currency": token["currency"], "category": "slots"},
    )
    assert launch.status_code == 200, launch.text
    played = post(
        f"{frontdoor}/player/round",
        {"session": launch.json()["session"], "round": f"probe-{uuid.uuid4()}", "bet": 100},
    )
    assert played.status_code == 200, played.text
    return launch.json()["region"], played.json()


@pytest.mark.slow
def test_region_killed_under_load_loses_no_money(
    procs: list[Proc], base_env: dict[str, str], tmp_path: Path
) -> None:
    port = {name: free_port() for name in ("wallet", "eu", "latam", "frontdoor", "report")}
    url = {name: f"http://127.0.0.1:{p}" for name, p in port.items()}

    def start(name: str, *args: str) -> Proc:
        proc = Proc(name, ["aggregator", *args], base_env, tmp_path).start()
        procs.append(proc)
        return proc

    def region(rid: str, name: str) -> Proc:
        db = f"sqlite:///{tmp_path / f'region-{rid}.db'}"
        return start(
            name, "serve", "--region", rid, "--port", str(port[rid]),
            "--wallet-url", url["wallet"], "--database", db,
        )  # fmt: skip

    wallet = start(
        "wallet", "wallet", "--port", str(port["wallet"]),
        "--database", f"sqlite:///{tmp_path / 'wallet.db'}",
    )  # fmt: skip
    eu, latam = region("eu", "eu"), region("latam", "latam")
    for proc, name in ((wallet, "wallet"), (eu, "eu"), (latam, "latam")):
        wait_http(f"{url[name]}/readyz", timeout=60, proc=proc)
    front = start(
        "frontdoor", "frontdoor", "--port", str(port["frontdoor"]), "--health-interval", "0.3",
        "--region", f"eu={url['eu']}", "--region", f"latam={url['latam']}",
    )  # fmt: skip
    wait_http(f"{url['frontdoor']}/readyz", timeout=60, proc=front)
    report_file = tmp_path / "report.json"
    loadgen = start(
        "loadgen", "loadgen", "--target", url["frontdoor"], "--wallet-url", url["wallet"],
        "--rate", "40", "--players", "16", "--concurrency", "16", "--seed", "7",
        "--report-port", str(port["report"]), "--report-file", str(report_file),
    )  # fmt: skip
    wait_http(f"{url['report']}/readyz", timeout=60, proc=loadgen)

    def settled() -> int:
        return int(get(f"{url['report']}/report")["rounds"]["settled"])

    wait_until(lambda: settled() >= 60, 30, "rounds before the kill")

    eu.kill(9)  # mid-load, no goodbye
    killed_at = settled()
    wait_until(lambda: not region_state(url["frontdoor"])["eu"]["up"], 10, "eu marked down")
    homes = {play_as_new_player(url["frontdoor"], url["wallet"], f"probe{i}")[0] for i in range(6)}
    assert homes == {"latam"}  # new sessions go to the surviving region
    wait_until(lambda: settled() >= killed_at + 60, 30, "rounds after the kill")
    metrics = requests.get(f"{url['frontdoor']}/metrics", timeout=10).text
    failovers = 'casino_failover_events_total{kind="region_failover",region="eu"} '
    assert float(metrics.split(failovers, 1)[1].split()[0]) > 0  # eu's sessions moved on

    restarted = region("eu", "eu-restarted")  # same database: its retry queue survives
    wait_http(f"{url['eu']}/readyz", timeout=60, proc=restarted)
    wait_until(lambda: region_state(url["frontdoor"])["eu"]["up"], 10, "eu back up")
    left = drain_queues([url["eu"], url["latam"]], TOKEN, timeout_s=30)
    assert left == {url["eu"]: 0, url["latam"]: 0}

    loadgen.kill(2)  # SIGINT: rounds in flight finish, then the report
    report = json.loads(report_file.read_text())
    assert report["finished"] and report["in_flight"] == 0
    assert report["rounds"]["unknown"] == 0, report["unknown_rounds"]
    assert report["rounds"]["settled"] >= killed_at + 60
    assert drain_queues([url["eu"], url["latam"]], TOKEN, timeout_s=30) == left
    result = reconcile(report, fetch_ledger(url["wallet"], TOKEN, report["players"]))
    assert result.ok, [m.as_json() for m in result.mismatches]
    assert result.players_checked == 16
    assert result.rounds_checked >= report["rounds"]["settled"]
