"""Aggregator throughput: rounds per second through one region process, and round latency.

Starts the operator wallet, one region and the front door as processes on 127.0.0.1, then for
each mode (`direct`: load generator -> region; `frontdoor`: load generator -> front door ->
region) drives the real load generator at increasing rates for a bounded time, measures CPU
per process, drains the region's retry queue and reconciles the wallet ledger after each step.
Writes the figures into BENCHMARKS.md (section between the aggregator markers).

    .venv/bin/python benchmarks/aggregator.py                     # full sweep, writes BENCHMARKS.md
    .venv/bin/python benchmarks/aggregator.py --rates 100,200 --duration 5 --no-write
    .venv/bin/python benchmarks/aggregator.py --profile           # py-spy profiles at the end
    .venv/bin/python benchmarks/aggregator.py --region-server waitress --wallet-servers granian
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

# This script is named like the package it measures: keep its own directory off the import
# path, or `import aggregator` would import this file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from aggregator.reconcile import drain_queues, fetch_ledger, reconcile  # noqa: E402

# the package is imported: this directory's own modules may come back on the path
sys.path.append(str(Path(__file__).resolve().parent))
from benchmd import machine, write_section  # noqa: E402
from procstat import cpu_seconds, serving_pid  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
BEGIN, END = "<!-- aggregator:begin -->", "<!-- aggregator:end -->"
CORES = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """wallet + region eu + front door, each a process logging into `workdir`."""

    def __init__(
        self, workdir: Path, threads: int, wallet_server: str, region_server: str = "granian"
    ) -> None:
        self.workdir = workdir
        self.wallet_server, self.region_server = wallet_server, region_server
        self.env = {
            **os.environ,
            "AGGREGATOR_ADMIN_TOKEN": TOKEN,
            "AGGREGATOR_SESSION_SECRET": "bench-session",
            "WALLET_TOKEN_SECRET": "bench-wallet",
        }
        self.ports = {name: free_port() for name in ("wallet", "eu", "frontdoor")}
        self.url = {name: f"http://127.0.0.1:{p}" for name, p in self.ports.items()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.threads = threads

    def start(self) -> None:
        t = str(self.threads)
        self._spawn("wallet", "wallet", "--database", f"sqlite:///{self.workdir / 'wallet.db'}",
                    "--threads", t, "--server", self.wallet_server)  # fmt: skip
        region_db = f"sqlite:///{self.workdir / 'eu.db'}"
        self._spawn("eu", "serve", "--region", "eu", "--wallet-url", self.url["wallet"],
                    "--database", region_db, "--threads", t,
                    "--server", self.region_server)  # fmt: skip
        self._spawn("frontdoor", "frontdoor", "--region", f"eu={self.url['eu']}",
                    "--threads", str(2 * self.threads))  # fmt: skip
        for name in self.procs:
            self._wait_ready(name)

    def _spawn(self, name: str, *args: str) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "aggregator", args[0], "--port", str(self.ports[name]),
                 *args[1:]],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip

    def _wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.workdir / (name + '.log')}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url[name]}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready")

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(p.pid) for name, p in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(frozen=True, kw_only=True)
class Step:
    wallet_server: str
    mode: str
    offered: float
    achieved: float
    settled: int
    failed: int
    unknown: int
    dropped: int
    p50: float | None
    p99: float | None
    cpu_ms: dict[str, float]  # CPU milliseconds per round, per process
    cpu_pct: dict[str, float]  # CPU use over the step, per process (100 = one core)
    reconciled: bool
    mismatches: int


def run_step(cluster: Cluster, mode: str, rate: float, args: argparse.Namespace, n: int) -> Step:
    target = cluster.url["eu" if mode == "direct" else "frontdoor"]
    report_file = cluster.workdir / f"report-{n}.json"
    command = [
        sys.executable, "-m", "aggregator", "loadgen", "--target", target,
        "--wallet-url", cluster.url["wallet"], "--rate", str(rate), "--players", str(args.players),
        "--concurrency", str(args.concurrency), "--duration", str(args.duration), "--quiet",
        "--seed", str(n), "--report-file", str(report_file),
    ]  # fmt: skip
    before, children = cluster.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with (cluster.workdir / f"loadgen-{n}.log").open("ab") as log:
        subprocess.run(command, env=cluster.env, stdout=subprocess.DEVNULL, stderr=log, check=True)
    after, children_after = cluster.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(report_file.read_text())
    used = {name: after[name] - before[name] for name in after}
    used["loadgen"] = (children_after.ru_utime + children_after.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    if mode == "direct":
        used.pop("frontdoor")
    rounds = report["rounds"]
    definite = rounds["settled"] + rounds["failed"]
    elapsed = report["elapsed_s"]
    drain_queues([cluster.url["eu"]], TOKEN, timeout_s=60)
    result = reconcile(report, fetch_ledger(cluster.url["wallet"], TOKEN, report["players"]))
    return Step(
        wallet_server=cluster.wallet_server,
        mode=mode,
        offered=rate,
        achieved=definite / elapsed if elapsed else 0.0,
        settled=rounds["settled"],
        failed=rounds["failed"],
        unknown=rounds["unknown"],
        dropped=report["schedule"]["dropped"],
        p50=report["latency_ms"]["round"]["p50"],
        p99=report["latency_ms"]["round"]["p99"],
        cpu_ms={k: 1000 * v / max(definite, 1) for k, v in used.items()},
        cpu_pct={k: 100 * v / elapsed for k, v in used.items()} if elapsed else {},
        reconciled=result.ok,
        mismatches=len(result.mismatches),
    )


def sweep(cluster: Cluster, args: argparse.Namespace) -> Iterator[Step]:
    n = 0
    for mode in args.modes.split(","):
        for rate in (float(r) for r in args.rates.split(",")):
            n += 1
            step = run_step(cluster, mode, rate, args, n)
            print(describe(step), file=sys.stderr, flush=True)
            yield step
            if step.achieved < 0.9 * rate:  # saturated: higher offered rates only queue
                break


def describe(step: Step) -> str:
    cpu = " ".join(f"{k}={v:.0f}%" for k, v in step.cpu_pct.items())
    return (
        f"wallet on {step.wallet_server:8} {step.mode:9} offered {step.offered:5.0f}/s"
        f" achieved {step.achieved:6.1f}/s"
        f" p50 {step.p50} ms p99 {step.p99} ms cpu {cpu} reconciled={step.reconciled}"
    )


def profile(cluster: Cluster, args: argparse.Namespace, rate: float, seconds: float) -> str:
    """Sample each server with py-spy (GIL holders only) while the front door path is loaded."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "py-spy is not installed (`pip install py-spy`); no profile taken.\n"
    command = [
        sys.executable, "-m", "aggregator", "loadgen", "--target", cluster.url["frontdoor"],
        "--wallet-url", cluster.url["wallet"], "--rate", str(rate), "--players",
        str(args.players), "--concurrency", str(args.concurrency), "--duration",
        str(seconds + 4), "--quiet", "--seed", "999",
    ]  # fmt: skip
    load = subprocess.Popen(command, env=cluster.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(2)
    spies = {}
    for name, proc in cluster.procs.items():
        out = cluster.workdir / f"{name}.prof"
        record = ["record", "--gil", "-r", "250", "-d", str(int(seconds)), "-f", "raw", "-o"]
        with (cluster.workdir / f"{name}.py-spy.log").open("ab") as log:
            spies[name] = subprocess.Popen(
                [spy, *record, str(out), "-p", str(serving_pid(proc.pid))], stdout=log, stderr=log
            )
    for spied in spies.values():
        spied.wait(timeout=seconds + 60)
    load.wait(timeout=seconds + 90)
    return "".join(
        summarize_profile(name, cluster.workdir / f"{name}.prof") for name in cluster.procs
    )


def summarize_profile(name: str, path: Path, top: int = 10) -> str:
    """Share of GIL-holding samples per package: `self` where the sample's innermost frame
    is, `inclusive` whenever the package is anywhere on the stack."""
    if not path.exists():
        log = path.with_name(f"{name}.py-spy.log")
        why = log.read_text(errors="replace").strip()[-300:] if log.exists() else "no log"
        return f"\n{name}: no samples (py-spy failed: {why})\n"
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        packages = [_package(frame) for frame in stack.split(";")]
        total += int(count)
        own[packages[-1]] += int(count)
        for package in set(packages):
            inclusive[package] += int(count)
    if not total:
        return f"\n{name}: no samples\n"
    rows = [
        f"| `{package}` | {own[package] / total:.0%} | {inclusive[package] / total:.0%} |"
        for package, _ in own.most_common(top)
    ]
    header = f"\n**{name}** ({total} samples with the GIL held)\n\n"
    return header + "| package | self | inclusive |\n|---|---:|---:|\n" + "\n".join(rows) + "\n"


def _package(frame: str) -> str:
    """`f (…/site-packages/sqlalchemy/engine/base.py:12)` -> `sqlalchemy`; our own code by
    subpackage (`aggregator.wallet`); the standard library by module (`json`, `socket`)."""
    where = frame[frame.rfind("(") + 1 :].rstrip(")")
    where = re.sub(r"^.*?(site-packages|lib/python3\.\d+|/work/main)/", "", where)
    parts = where.split(":")[0].split("/")
    if parts[0] in ("aggregator", "controlplane") and len(parts) > 2:
        return f"{parts[0]}.{parts[1]}"
    return parts[0].removesuffix(".py") or "?"


def render(steps: list[Step], args: argparse.Namespace, profile_md: str, load: float) -> str:
    rows = []
    for s in steps:
        cpu = ", ".join(f"{k} {v:.0f}% ({s.cpu_ms[k]:.1f} ms)" for k, v in s.cpu_pct.items())
        money = "ok" if s.reconciled else f"**{s.mismatches} mismatches**"
        total_ms = sum(s.cpu_ms.values())
        ceiling = CORES * 1000 / total_ms if total_ms else 0.0
        rows.append(
            f"| {s.wallet_server} | {s.mode} | {s.offered:.0f} | {s.achieved:.1f} | {s.p50} |"
            f" {s.p99} |"
            f" {s.settled}/{s.failed}/{s.unknown} | {s.dropped} | {cpu} | {total_ms:.1f} ms"
            f" = {ceiling:.0f}/s | {money} |"
        )
    servers = list(dict.fromkeys(s.wallet_server for s in steps))
    best = [
        f"wallet on {server}: {_best(steps, server, 'direct'):.0f} rounds/s direct to the"
        f" region, {_best(steps, server, 'frontdoor'):.0f} through the front door"
        for server in servers
    ]
    return "\n".join([
        "## Aggregator throughput (`benchmarks/aggregator.py`)",
        "",
        f"Machine: {machine(dated=True)}; 1-minute load average {load:.1f} when the run started"
        " (other work on the machine takes cores from the figures below).",
        f"Settings: wallet (SQLite) + one region (SQLite retry queue) + front door as processes,"
        f" {args.threads} server threads each (front door {2 * args.threads}); the region on"
        f" {args.region_server}, the front door on waitress, the wallet on each server of the"
        " first column (a fresh set of processes per wallet server); the load generator"
        f" on the same machine, {args.players} players, {args.concurrency} worker threads,"
        f" {args.duration:g} s per step, open loop; the sweep stops at the first step below"
        f" 90% of the offered rate. `direct`: load generator -> region; `frontdoor`: load"
        f" generator -> front door -> region.",
        "",
        f"**Best achieved (target: 500): {'; '.join(best)}.**",
        "",
        "Achieved = rounds with a definite answer per second. CPU: share of one core over the"
        " step, and in brackets CPU milliseconds per round. Rounds: settled/failed/unknown."
        " Dropped: ticks the open-loop schedule could not start because every worker was busy."
        f" Ceiling: the rate at which all {CORES} cores would be busy at that CPU cost per"
        " round (every process of the path included, the load generator too).",
        "",
        "| wallet | mode | offered /s | achieved /s | p50 ms | p99 ms | rounds | dropped"
        " | CPU per process | CPU per round = ceiling | ledger |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|---|",
        *rows,
        "",
        profile_md.strip(),
    ])  # fmt: skip


def _best(steps: list[Step], server: str, mode: str) -> float:
    return max((s.achieved for s in steps if (s.wallet_server, s.mode) == (server, mode)),
               default=0.0)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,300,400,500,600,700,800,900,1000")
    parser.add_argument("--modes", default="direct,frontdoor")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--region-server", default="granian", choices=("waitress", "granian"))
    parser.add_argument("--wallet-servers", default="granian,waitress",
                        help="a fresh cluster per wallet server, in this order")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="py-spy each server at the end")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    steps: list[Step] = []
    profile_md = ""
    for server in args.wallet_servers.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-aggregator-") as tmp:
            cluster = Cluster(Path(tmp), args.threads, server, args.region_server)
            try:
                cluster.start()
                ran = list(sweep(cluster, args))
                steps += ran
                if args.profile and not profile_md:
                    top = max(ran, key=lambda s: s.achieved)
                    profile_md = (
                        f"### Where the time goes (py-spy, front door path, wallet on {server})\n"
                        + profile(cluster, args, top.offered, 8.0)
                    )
            finally:
                cluster.stop()
    section = render(steps, args, profile_md, load)
    print(section)
    if not args.no_write:
        write_section(Path(args.output), (BEGIN, END), section, heading="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
