"""run the bundled aggregator on this machine: wallet, regions eu and latam, front door, load

Every role is a child process in one process group; Ctrl-C or SIGTERM stops them in order (the
load generator first, so its rounds in flight finish and its report is complete), checks the
money (the wallet ledger reconciled against what the players saw), and leaves no process behind.
The control plane reaches the aggregator only over HTTP and the command line, never by import.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from controlplane.demo import console
from controlplane.demo.preflight import DemoBusy, DemoLock, check_ports
from controlplane.demo.runner import (
    DEMO_USERS,
    ROUTING_SOURCE,
    controlplane_env,
    run_scenario,
    slack_env,
    standin_args,
    write_routing,
)
from controlplane.demo.scenarios import SCENARIOS
from controlplane.demo.supervisor import Supervisor, wait_ready

MARKER = ".controlplane-demo"
STATUS_EVERY_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Role:
    name: str
    args: tuple[str, ...]  # after `python -m`
    url: str  # where it listens; /readyz there says it can serve
    stage: int = 0  # start order: a stage starts once every earlier stage answers /readyz
    stop_grace_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    roles: tuple[Role, ...]
    env: Mapping[str, str]
    data_dir: Path
    admin_token: str
    report_file: Path
    urls: Mapping[str, str] = field(default_factory=dict)
    routing_source: Path = Path(ROUTING_SOURCE)  # the demo's routing file is made from it

    def stages(self) -> list[list[Role]]:
        """Roles grouped by start order; roles within a stage start together."""
        stages: dict[int, list[Role]] = {}
        for role in self.roles:
            stages.setdefault(role.stage, []).append(role)
        return [stages[k] for k in sorted(stages)]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-port",
        type=int,
        default=8100,
        help="front door port; regions +1 and +2, wallet +100, load report +200, "
        "Slack stand-in +300, control plane -100",
    )
    for role in ("frontdoor", "eu", "latam", "wallet", "loadgen", "controlplane", "slack"):
        parser.add_argument(f"--{role}-port", type=int, default=None, help=f"{role} port")
    parser.add_argument("--rate", type=float, default=50.0, help="rounds per second")
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--no-loadgen", action="store_true", help="start no simulated players")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after N s (0: Ctrl-C)")
    parser.add_argument("--data-dir", default="var/demo", help="wiped and recreated every run")
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default=None,
        help="inject this incident after --warmup, print its timeline, stop",
    )
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before the fault")


def ports(args: argparse.Namespace) -> dict[str, int]:
    base = args.base_port
    defaults = {
        "frontdoor": base,
        "eu": base + 1,
        "latam": base + 2,
        "wallet": base + 100,
        "loadgen": base + 200,
        "controlplane": base - 100,
        "slack": base + 300,
    }
    return {role: getattr(args, f"{role}_port") or port for role, port in defaults.items()}


def secrets_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The tokens and secrets every role needs: from the environment, or fresh ones."""
    env = dict(environ)
    for name in ("AGGREGATOR_ADMIN_TOKEN", "AGGREGATOR_SESSION_SECRET", "WALLET_TOKEN_SECRET"):
        env[name] = environ.get(name) or secrets.token_urlsafe(24)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_plan(args: argparse.Namespace, environ: Mapping[str, str]) -> DemoPlan:
    port = ports(args)
    data = Path(args.data_dir).resolve()
    url = {role: f"http://127.0.0.1:{p}" for role, p in port.items()}
    env = secrets_env(environ)
    report = data / "loadgen-report.json"

    def role(name: str, command: str, *extra: str, stage: int = 0, flag: str = "--port") -> Role:
        argv = ("aggregator", *command.split(), flag, str(port[name]), *extra)
        # the load generator's rounds in flight may retry for ~35 s before it reports
        grace = 45.0 if name == "loadgen" else 10.0
        return Role(name=name, args=argv, url=url[name], stage=stage, stop_grace_s=grace)

    def region(rid: str) -> Role:
        db = f"sqlite:///{data / f'region-{rid}.db'}"
        return role(rid, f"serve --region {rid}", "--wallet-url", url["wallet"], "--database", db)

    regions = [arg for rid in ("eu", "latam") for arg in ("--region", f"{rid}={url[rid]}")]
    roles = [
        role("wallet", "wallet", "--database", f"sqlite:///{data / 'wallet.db'}"),
        region("eu"),
        region("latam"),
        role("frontdoor", "frontdoor", "--threads", "64", *regions, stage=1),
    ]
    env.update(controlplane_env(url, data, environ, env["AGGREGATOR_ADMIN_TOKEN"]))
    env.update(slack_env(url, data))
    # Slack as the control plane sees it: messages kept in memory, buttons pressed from
    # /dash/chat sent back signed, as Slack would
    standin = standin_args(port["slack"], url["controlplane"])
    roles.append(Role(name="slack", args=standin, url=url["slack"]))
    roles.append(
        Role(
            name="controlplane",
            args=("controlplane", "serve", "--port", str(port["controlplane"])),
            url=url["controlplane"],
            stage=2,
        )
    )
    if not args.no_loadgen:
        load = ("--rate", str(args.rate), "--players", str(args.players))
        target = ("--target", url["frontdoor"], "--wallet-url", url["wallet"])
        # it listens only for its live report; its progress lines go to loadgen.log
        roles.append(
            role("loadgen", "loadgen", *target, *load, "--report-file", str(report),
                 stage=2, flag="--report-port")
        )  # fmt: skip
    return DemoPlan(
        roles=tuple(roles),
        env=env,
        data_dir=data,
        admin_token=env["AGGREGATOR_ADMIN_TOKEN"],
        report_file=report,
        urls={r.name: r.url for r in roles},
        routing_source=Path(environ.get("CONTROLPLANE_ROUTING_FILE") or ROUTING_SOURCE),
    )


def fresh_data_dir(path: Path) -> None:
    """Wipe the demo's own data dir; refuse to wipe a non-empty directory it did not make."""
    if path.exists() and any(path.iterdir()) and not (path / MARKER).exists():
        raise SystemExit(f"controlplane demo: {str(path)!r} is not a demo data dir; not wiping it")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / MARKER).write_text("created by `controlplane demo`; wiped at every run\n")


def run(args: argparse.Namespace) -> int:
    plan = make_plan(args, os.environ)
    lock = DemoLock(plan.data_dir)
    try:
        lock.acquire()  # before anything is wiped: a running demo's data stays
        check_ports(ports(args))
    except DemoBusy as exc:
        print(f"controlplane demo: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        return _run(args, plan)
    finally:
        lock.release()


def prepare(plan: DemoPlan) -> None:
    """A fresh data folder holding the files the roles read (the demo's routing)."""
    fresh_data_dir(plan.data_dir)
    write_routing(plan.routing_source, Path(plan.env["CONTROLPLANE_ROUTING_FILE"]))


def _run(args: argparse.Namespace, plan: DemoPlan) -> int:
    prepare(plan)
    supervisor = Supervisor(env=plan.env, log_dir=plan.data_dir, python=sys.executable)
    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: no more patience
            supervisor.kill_group(wait=False)
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        _start_all(plan, supervisor, stop)
        print(_banner(plan, supervisor), flush=True)
        if getattr(args, "scenario", None):
            run_scenario(
                args.scenario,
                urls=plan.urls,
                admin_token=plan.admin_token,
                stop=stop,
                warmup_s=args.warmup,
            )
            reason.append(f"scenario {args.scenario} done")
        else:
            code = _serve_until_stopped(plan, supervisor, stop, reason, args.duration)
    except (RuntimeError, TimeoutError) as exc:
        print(f"\ncontrolplane demo: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        _shutdown(plan, supervisor)
    return code


def _start_all(plan: DemoPlan, supervisor: Supervisor, stop: threading.Event) -> None:
    for stage in plan.stages():
        for role in stage:
            supervisor.start(role.name, role.args)
        for role in stage:
            wait_ready(supervisor, role.name, f"{role.url}/readyz", stop=stop)


def _banner(plan: DemoPlan, supervisor: Supervisor) -> str:
    roles = [
        console.RoleLine(
            name=r.name, url=r.url, pid=supervisor.pid(r.name), log=plan.data_dir / f"{r.name}.log"
        )
        for r in plan.roles
    ]
    names = ("AGGREGATOR_ADMIN_TOKEN", "CONTROLPLANE_API_TOKEN", *DEMO_USERS)
    return console.banner(roles, {n: plan.env[n] for n in names if n in plan.env}, plan.urls)


def _serve_until_stopped(
    plan: DemoPlan,
    supervisor: Supervisor,
    stop: threading.Event,
    reason: list[str],
    duration: float,
) -> int:
    started = time.monotonic()
    next_status = started + STATUS_EVERY_S
    live = console.LiveEvents(
        controlplane_url=plan.urls["controlplane"],
        admin_urls={k: plan.urls[k] for k in ("frontdoor", "eu", "latam", "wallet")},
        admin_token=plan.admin_token,
    )
    while not stop.wait(1.0):
        dead = supervisor.exited()
        if dead:
            tail = supervisor.log_tail(dead)
            print(f"\ncontrolplane demo: {dead} exited unexpectedly:\n{tail}", file=sys.stderr)
            return 1
        for line in live.poll():
            print(line, flush=True)
        now = time.monotonic()
        if duration > 0 and now - started >= duration:
            reason.append(f"--duration {duration:g}s")
            break
        if now >= next_status and "loadgen" in plan.urls:
            next_status = now + STATUS_EVERY_S
            print(_status(plan.urls["loadgen"]), flush=True)
    print(f"\nstopping ({reason[0] if reason else 'stop'}) ...", flush=True)
    return 0


def _status(loadgen_url: str) -> str:
    try:
        return console.status_line(requests.get(f"{loadgen_url}/report", timeout=2).json())
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"[status] load generator report unavailable: {exc}"


def _shutdown(plan: DemoPlan, supervisor: Supervisor) -> None:
    for role in plan.roles:
        if role.name == "loadgen" and role.name in supervisor.names():
            # first, so its rounds in flight finish while the regions are still up
            supervisor.stop(role.name, signal.SIGINT, grace_s=role.stop_grace_s)
            print_summary(plan)
    for role in reversed(plan.roles):
        if role.name != "loadgen":
            supervisor.stop(role.name, signal.SIGTERM, grace_s=role.stop_grace_s)
    supervisor.kill_group()
    print(f"all stopped; logs and data in {console.shown_path(plan.data_dir)}/", flush=True)


def print_summary(plan: DemoPlan) -> None:
    """The load generator's final report in a few lines, then the money check."""
    try:
        report = json.loads(plan.report_file.read_text())
    except (OSError, ValueError) as exc:
        print(f"no load generator report ({exc})", flush=True)
        return
    print(console.summary_line(report), flush=True)
    print(reconcile_line(plan), flush=True)


def reconcile_line(plan: DemoPlan) -> str:
    regions = [
        arg for r in plan.roles if r.name in ("eu", "latam") for arg in ("--region-url", r.url)
    ]
    command = [
        sys.executable, "-m", "aggregator.reconcile", "--report", str(plan.report_file),
        "--wallet-url", plan.urls["wallet"], *regions, "--drain-timeout", "15",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=dict(plan.env), capture_output=True, text=True, timeout=90
        )
        result = json.loads(done.stdout)
    except (subprocess.TimeoutExpired, ValueError) as exc:
        return f"money: reconciliation did not run ({exc})"
    return console.money_line(result)
