from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from controlplane.demo import bundle as demo
from controlplane.demo import runner
from controlplane.notify.routing import load_routing
from tests.conftest import ROOT, free_port

TOKEN = "demo-test-token"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.configure(parser)
    return parser.parse_args(argv)


def test_plan_ports_secrets_and_start_order(tmp_path: Path) -> None:
    args = parse(["--base-port", "9100", "--latam-port", "9999", "--data-dir", str(tmp_path)])
    plan = demo.make_plan(args, {"AGGREGATOR_ADMIN_TOKEN": "given"})
    assert plan.urls == {
        "wallet": "http://127.0.0.1:9200",
        "eu": "http://127.0.0.1:9101",
        "latam": "http://127.0.0.1:9999",
        "slack": "http://127.0.0.1:9400",
        "frontdoor": "http://127.0.0.1:9100",
        "controlplane": "http://127.0.0.1:9000",
        "loadgen": "http://127.0.0.1:9300",
    }
    assert plan.admin_token == "given" == plan.env["AGGREGATOR_ADMIN_TOKEN"]
    assert len(plan.env["AGGREGATOR_SESSION_SECRET"]) >= 20
    assert [[r.name for r in stage] for stage in plan.stages()] == [
        ["wallet", "eu", "latam", "slack"],
        ["frontdoor"],
        ["controlplane", "loadgen"],
    ]
    # the control plane scrapes every role and itself, and may act on the regions and the front door
    targets = plan.env["CONTROLPLANE_SCRAPE_TARGETS"].split(",")
    assert len(targets) == 5 and all(t.endswith("/metrics") for t in targets)
    assert "controlplane=http://127.0.0.1:9000/metrics" in targets
    assert plan.env["CONTROLPLANE_AGGREGATOR_TOKEN"] == "given"
    loadgen = next(r for r in plan.roles if r.name == "loadgen")
    assert "--report-port" in loadgen.args and "9300" in loadgen.args
    assert all(str(tmp_path) in a for r in plan.roles for a in r.args if a.startswith("sqlite"))
    quiet = demo.make_plan(parse(["--no-loadgen"]), {})
    assert "loadgen" not in quiet.urls and quiet.admin_token


def test_the_control_plane_posts_to_the_slack_stand_in_which_presses_back(tmp_path: Path) -> None:
    args = parse(["--base-port", "9100", "--data-dir", str(tmp_path)])
    real = {"CONTROLPLANE_SLACK_BOT_TOKEN": "xoxb-real", "CONTROLPLANE_SLACK_SIGNING_SECRET": "s"}
    plan = demo.make_plan(args, real)
    env = plan.env
    assert env["CONTROLPLANE_SLACK_API_URL"] == "http://127.0.0.1:9400/api/"
    # fresh every run, shared by both processes: a real token is never sent to the stand-in
    assert env["CONTROLPLANE_SLACK_BOT_TOKEN"].startswith("xoxb-demo-")
    assert len(env["CONTROLPLANE_SLACK_SIGNING_SECRET"]) >= 32
    assert env["CONTROLPLANE_ROUTING_FILE"] == str(tmp_path / "routing.yml")
    slack = next(r for r in plan.roles if r.name == "slack")
    assert slack.args[:3] == ("controlplane.slack.standin", "--port", "9400")
    request_url = slack.args[slack.args.index("--request-url") + 1]
    assert request_url == "http://127.0.0.1:9000/slack/actions"
    assert [slack.args[i + 1] for i, a in enumerate(slack.args) if a == "--channel"] == [
        "casino-oncall",
        "casino-tickets",
    ]
    assert (
        demo.make_plan(args, {}).env["CONTROLPLANE_SLACK_BOT_TOKEN"]
        != env["CONTROLPLANE_SLACK_BOT_TOKEN"]
    )


def test_the_demo_routing_adds_slack_to_pages_and_tickets_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    source = ROOT / "config" / "routing.yml"
    written = tmp_path / "routing.yml"
    runner.write_routing(source, written)
    demo_routing, shipped = load_routing(written), load_routing(source)
    assert (
        demo_routing.route == shipped.route and demo_routing.inhibit_rules == shipped.inhibit_rules
    )
    kinds = {
        name: sorted(type(i).__name__ for i in receiver.integrations)
        for name, receiver in demo_routing.receivers.items()
    }
    assert kinds["oncall"] == ["LogConfig", "SlackConfig"]
    assert kinds["tickets"] == ["LogConfig", "SlackConfig"]
    assert "SlackConfig" not in kinds["deadmansswitch"] + kinds["log"]
    channels = {
        name: [i.channel for i in r.integrations if hasattr(i, "channel")]
        for name, r in demo_routing.receivers.items()
    }
    assert (channels["oncall"], channels["tickets"]) == (["#casino-oncall"], ["#casino-tickets"])
    with pytest.raises(SystemExit, match="cannot read the routing file"):
        runner.write_routing(tmp_path / "nope.yml", written)


def test_data_dir_is_fresh_but_foreign_dirs_are_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / "demo"
    demo.fresh_data_dir(mine)
    (mine / "wallet.db").write_text("old")
    demo.fresh_data_dir(mine)
    assert not (mine / "wallet.db").exists()
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep")
    with pytest.raises(SystemExit):
        demo.fresh_data_dir(foreign)
    assert (foreign / "thesis.tex").exists()


def _wait_for_text(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no file)"
    raise AssertionError(f"{text!r} not in {path} after {timeout:g}s:\n{tail}")


def _lines(stream: object, sink: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.put(line)


def _read_until(sink: queue.Queue[str], text: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = sink.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} not printed within {timeout}s:\n{''.join(seen)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _second_demo_is_refused_and_wipes_nothing(
    cmd: list[str], env: dict[str, str], tmp_path: Path, ports: dict[str, int]
) -> None:
    same_data = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert same_data.returncode == 1
    assert "a demo is already running (pid" in same_data.stderr, same_data.stderr
    assert (tmp_path / "demo" / "wallet.db").exists()
    other = [*cmd[: cmd.index("--data-dir")], "--data-dir", str(tmp_path / "other")]
    same_ports = subprocess.run(
        other, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert same_ports.returncode == 1
    assert f"{ports['frontdoor']} (frontdoor): pid " in same_ports.stderr, same_ports.stderr
    assert "aggregator frontdoor" in same_ports.stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.slow
def test_demo_runs_every_role_and_leaves_no_orphans(tmp_path: Path) -> None:
    roles = ("frontdoor", "eu", "latam", "wallet", "loadgen", "controlplane", "slack")
    ports = {role: free_port() for role in roles}
    argv = [f"--{role}-port={port}" for role, port in ports.items()]
    env = {**os.environ, "AGGREGATOR_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "controlplane", "demo", *argv, "--rate", "20", "--players", "8"]
    cmd += ["--data-dir", str(tmp_path / "demo"), "--duration", "150"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    sink: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(proc.stdout, sink), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        _read_until(sink, "Press Ctrl-C to stop", 120, seen)
        pids = {
            m[1]: int(m[2])
            for m in re.finditer(r"^\s+(\w+)\s+http\S+\s+pid (\d+)", "".join(seen), re.M)
        }
        assert set(pids) == set(ports)
        banner = "".join(seen)
        assert TOKEN in banner
        assert re.search(r"CONTROLPLANE_API_TOKEN\s+\S{20,}", banner)
        assert f"log {tmp_path / 'demo' / 'eu.log'}" in banner
        assert f"http://127.0.0.1:{ports['controlplane']}/dash/chat" in banner
        _second_demo_is_refused_and_wipes_nothing(cmd, env, tmp_path, ports)
        for port in ports.values():
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        state = requests.get(
            f"http://127.0.0.1:{ports['frontdoor']}/admin/state",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        ).json()
        assert {r["id"] for r in state["regions"]} == {"eu", "latam"}
        # the Slack stand-in runs, and presses buttons back to the control plane's /slack/actions
        slack = requests.get(f"http://127.0.0.1:{ports['slack']}/stand-in/info", timeout=5).json()
        cp_actions = f"http://127.0.0.1:{ports['controlplane']}/slack/actions"
        assert (slack["interactive"], slack["request_url"]) == (True, cp_actions)
        # what the control plane sees is shown as it happens
        requests.post(
            f"http://127.0.0.1:{ports['eu']}/admin/faults",
            json={"kind": "provider_down", "target": "evolution", "duration_s": 3},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        ).raise_for_status()
        _read_until(sink, "fault injected: provider_down on evolution", 30, seen)
        _read_until(sink, "fault cleared: provider_down on evolution", 30, seen)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            report = requests.get(f"http://127.0.0.1:{ports['loadgen']}/report", timeout=5).json()
            if report["rounds"]["settled"] >= 5:
                break
            time.sleep(0.3)
        assert report["rounds"]["settled"] >= 5
        # the control plane scrapes the bundle and itself, and serves its rules
        cp = f"http://127.0.0.1:{ports['controlplane']}"
        up = requests.get(f"{cp}/api/v1/query", params={"query": "sum(up)"}, timeout=5).json()
        assert up["data"]["result"] and float(up["data"]["result"][0]["value"][1]) == 5
        rules = requests.get(f"{cp}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert {"casino-providers-alerts", "controlplane-alerts"} <= {g["name"] for g in rules}
        # the Watchdog fires and reaches the dead man's switch (a log line until one is set)
        _wait_for_text(tmp_path / "demo" / "controlplane.log", "receiver=deadmansswitch", 30)
        proc.send_signal(signal.SIGINT)
        _read_until(sink, "all stopped", 120, seen)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    output = "".join(seen)
    assert "money: reconciled" in output, output
    assert "stopping (SIGINT)" in output
    assert [role for role, pid in pids.items() if _alive(pid)] == []
