from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from loadgen_fakes import FakeTarget
from prometheus_client import CollectorRegistry

from aggregator.loadgen import LoadgenConfig, create_app
from aggregator.loadgen.client import HttpTarget, Reply
from aggregator.loadgen.players import PlayConfig
from aggregator.loadgen.runner import LoadConfig, Runner
from tests.aggregator.served import Served
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
REPORT_KEYS = {"launches", "rounds", "latency_ms", "players", "unknown_rounds"}


def small_load(**overrides: object) -> LoadConfig:
    values: dict[str, object] = {
        "rate": 400.0,
        "players": 6,
        "concurrency": 4,
        "duration_s": 0.25,
        "run_id": "t",
        "play": PlayConfig(categories=("slots",), rounds_per_session=(2, 4)),
    }
    values.update(overrides)
    return LoadConfig(**values)  # type: ignore[arg-type]


def check_shape(report: dict[str, object]) -> None:
    assert set(report) >= REPORT_KEYS
    assert set(report["launches"]) == {"attempted", "ok", "failover", "failed"}  # type: ignore[arg-type]
    assert set(report["rounds"]) == {"attempted", "settled", "failed", "unknown"}  # type: ignore[arg-type]
    for kind in ("launch", "round"):
        assert {"p50", "p90", "p99"} <= set(report["latency_ms"][kind])  # type: ignore[index]


def test_runner_plays_until_the_duration_and_balances_match(fake: FakeTarget) -> None:
    runner = Runner(fake, small_load(), rng=random.Random(3))
    assert runner.join_players() == 6
    runner.run()
    report = runner.report()
    check_shape(report)
    assert report["finished"] is True and report["in_flight"] == 0
    rounds = report["rounds"]
    assert rounds["attempted"] == rounds["settled"] > 0
    assert report["schedule"]["ticks"] >= rounds["attempted"]
    for user, entry in report["players"].items():
        assert entry["expected_balance"] == fake.balances[user]
    assert len(fake.round_calls) == len(set(fake.round_calls))


def test_stop_lets_rounds_in_flight_finish_and_abort_cuts_retries(fake: FakeTarget) -> None:
    runner = Runner(fake, small_load(duration_s=0.0), rng=random.Random(3))
    runner.join_players()
    fake.script = {f"t-p{i}-1": [Reply(status=None, error="reset")] * 50 for i in range(6)}
    thread = threading.Thread(target=runner.run)
    thread.start()
    deadline = time.monotonic() + 5
    while runner.stats.counts()["retries"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    assert not runner.wait(0.2)  # graceful: the retrying rounds are still going
    runner.abort()
    assert runner.wait(5)
    thread.join(timeout=5)
    report = runner.report()
    assert report["in_flight"] == 0
    assert report["rounds"]["unknown"] >= 1
    assert report["rounds"]["attempted"] == sum(
        report["rounds"][k] for k in ("settled", "failed", "unknown")
    )


def test_report_endpoint_and_metrics(fake: FakeTarget) -> None:
    app = create_app(
        LoadgenConfig(load=small_load()),
        target=fake,
        rng=random.Random(1),
        registry=CollectorRegistry(),
    )
    runner: Runner = app.extensions["loadgen"]
    runner.join_players()
    runner.run()
    client = app.test_client()
    report = client.get("/report").get_json()
    check_shape(report)
    assert report["rounds"]["settled"] == runner.stats.counts()["rounds_settled"]
    text = client.get("/metrics").get_data(as_text=True)
    settled = report["rounds"]["settled"]
    assert f'casino_loadgen_rounds_total{{outcome="settled"}} {float(settled)}' in text
    assert client.get("/readyz").status_code == 200


def test_http_target_talks_to_a_real_server(fake: FakeTarget, served: Served) -> None:
    target = HttpTarget(served.url, served.url, pool_size=2, timeout_s=5)
    try:
        token = target.token("p9")
        assert token.status == 200 and token.body["token"] == "t-p9"
        launch = target.launch({"user": "p9", "token": "t-p9", "currency": "EUR"})
        session = launch.body["session"]
        fake.script["r1"] = [Reply(status=None)]  # the fake server answers 500: unknown
        assert target.round({"session": session, "round": "r1", "bet": 10}).status == 500
        settled = target.round({"session": session, "round": "r1", "bet": 10})
        assert settled.body["status"] == "settled"
    finally:
        target.close()
    nobody = f"http://127.0.0.1:{free_port()}"
    dead = HttpTarget(nobody, nobody, connect_timeout_s=0.5)
    try:
        refused = dead.round({"session": "x", "round": "r", "bet": 1})
        assert refused.status is None and refused.error.startswith("connection_error")
    finally:
        dead.close()


def loadgen_cmd(url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "aggregator", "loadgen", "--target", url, "--wallet-url", url,
        "--rate", "100", "--players", "5", "--concurrency", "4", "--seed", "5", *extra,
    ]  # fmt: skip


def test_cli_runs_for_the_duration_and_prints_the_report(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        loadgen_cmd(served.url, "--duration", "0.5", "--report-file", str(out)),
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    check_shape(report)
    assert report["rounds"]["settled"] > 0
    assert json.loads(out.read_text()) == report
    assert b"loadgen t=" in done.stderr  # progress lines


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_stops_cleanly_on_a_signal(served: Served, sig: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen(
        loadgen_cmd(served.url, "--report-port", str(port), "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        live: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                live = requests.get(f"http://127.0.0.1:{port}/report", timeout=1).json()
                if live["rounds"]["settled"] > 0:  # type: ignore[index]
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        assert live.get("finished") is False
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    check_shape(report)
    assert report["finished"] is True and report["in_flight"] == 0
    assert report["rounds"]["settled"] >= live["rounds"]["settled"]  # type: ignore[index]
    assert b"loadgen t=" not in stderr  # --quiet
