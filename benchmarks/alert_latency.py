"""Alert latency: from an injected `provider_down` fault to the alert firing and to the
notification, for the control plane and for Prometheus + Alertmanager, side by side in one run.

Starts the bundled aggregator as processes (operator wallet, region eu, front door, load
generator) and two pipelines watching it with the same scrape interval (1 s), evaluation
interval (1 s), shipped rule files (`rules/*.yml`) and notification timing (group_wait 1s,
group_interval 1s, group_by all labels, a webhook to a local receiver that timestamps
arrivals): `controlplane serve` (with no runbooks, so nothing acts on the aggregator), and the
real `prometheus` with `prometheus-alertmanager` (Debian packages).

Each run injects `provider_down` on one provider of eu, waits until both pipelines have
notified every measured alert (or a timeout), clears the fault and waits until neither holds an
alert of the provider. Per alert it reports median and p95 of fault -> firing (the `startsAt`
each pipeline puts in its webhook: the evaluation time at which the alert fired) and fault ->
webhook arrival, against the floor scrape interval + `for` + one evaluation interval, and writes
a section "Alert latency" into BENCHMARKS.md (other sections are left alone).

    .venv/bin/python benchmarks/alert_latency.py                 # 5 runs, writes BENCHMARKS.md
    .venv/bin/python benchmarks/alert_latency.py --runs 2 --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml
from benchmd import write_section

from controlplane.demo.bundle import Supervisor, secrets_env, wait_ready
from controlplane.rules.load import load_files, rule_files
from controlplane.rules.model import AlertingRule

ROOT = Path(__file__).resolve().parent.parent
INTERVAL_S = 1.0
TIMEOUT = "900ms"  # scrape timeout, as the demo's
# the alerts a provider_down should raise, if the shipped rules have them
ALERTS = ("ProviderFailing", "ProviderLaunchFailing", "ProviderBreakerOpen")
BEGIN, END = "<!-- alert-latency:begin -->", "<!-- alert-latency:end -->"
PHASES = random.Random(20261121)  # the fault's phase within the second, per run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the webhook receiver: one URL path per pipeline ------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Arrival:
    pipeline: str  # "ours" or "prometheus"
    alertname: str
    provider: str
    status: str
    starts_at: float  # unix seconds, from the payload
    arrived: float  # unix seconds, when the request came in


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.record(self.path.strip("/"), body, arrived)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, pipeline: str, body: dict[str, Any], arrived: float) -> None:
        with self.lock:
            for a in body.get("alerts", []):
                self.arrivals.append(
                    Arrival(
                        pipeline=pipeline,
                        alertname=a["labels"].get("alertname", ""),
                        provider=a["labels"].get("provider", ""),
                        status=a["status"],
                        starts_at=parse_rfc3339(a["startsAt"]),
                        arrived=arrived,
                    )
                )

    def first(self, pipeline: str, alertname: str, provider: str, after: float) -> Arrival | None:
        with self.lock:
            found = [
                a
                for a in self.arrivals
                if (a.pipeline, a.alertname, a.provider, a.status)
                == (pipeline, alertname, provider, "firing")
                and a.arrived >= after
            ]
        return min(found, key=lambda a: a.arrived, default=None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def parse_rfc3339(text: str) -> float:
    """Alertmanager writes up to nanoseconds; Python reads up to microseconds."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


# -- the aggregator ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Aggregator:
    supervisor: Supervisor
    urls: dict[str, str]
    env: dict[str, str]
    token: str

    def targets(self) -> list[tuple[str, str]]:
        """(job, /metrics URL) of the roles both pipelines scrape, with the demo's job names."""
        jobs = (("region", "eu"), ("frontdoor", "frontdoor"), ("wallet", "wallet"))
        return [(job, f"{self.urls[role]}/metrics") for job, role in jobs]


def start_aggregator(data: Path, rate: float, stop: threading.Event) -> Aggregator:
    port = {r: free_port() for r in ("wallet", "eu", "frontdoor", "loadgen")}
    url = {r: f"http://127.0.0.1:{p}" for r, p in port.items()}
    env = secrets_env(os.environ)
    supervisor = Supervisor(env=env, log_dir=data, python=sys.executable)
    roles = [
        ("wallet", f"wallet --port {port['wallet']} --database sqlite:///{data}/wallet.db"),
        ("eu", f"serve --region eu --port {port['eu']} --wallet-url {url['wallet']}"
               f" --database sqlite:///{data}/region-eu.db"),
        ("frontdoor", f"frontdoor --port {port['frontdoor']} --region eu={url['eu']}"),
        ("loadgen", f"loadgen --target {url['frontdoor']} --wallet-url {url['wallet']}"
                    f" --rate {rate} --players 100 --report-port {port['loadgen']} --quiet"),
    ]  # fmt: skip
    for name, args in roles:
        supervisor.start(name, ["aggregator", *args.split()])
        wait_ready(supervisor, name, f"{url[name]}/readyz", stop=stop)
    return Aggregator(supervisor=supervisor, urls=url, env=env, token=env["AGGREGATOR_ADMIN_TOKEN"])


# -- ours: `controlplane serve` ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Ours:
    supervisor: Supervisor
    url: str
    pid: int

    def stop(self) -> None:
        self.supervisor.stop("controlplane", signal.SIGTERM, grace_s=15)
        self.supervisor.kill_group()

    def active(self, provider: str) -> bool:
        body = requests.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        return any(a["labels"].get("provider") == provider for a in body["data"]["alerts"])

    def missed(self) -> int:
        return _counter_sum(self.url, "controlplane_rule_group_iterations_missed_total")


def _counter_sum(url: str, name: str) -> int:
    """The sum of a counter's samples on a /metrics page."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    lines = (line for line in text.splitlines() if line.startswith(name))
    return sum(int(float(line.split()[-1])) for line in lines)


def _routing(url: str) -> dict[str, Any]:
    """The same notification timing for both pipelines (Alertmanager's YAML shape)."""
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["..."],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": url, "send_resolved": False}]}],
    }


def start_ours(data: Path, agg: Aggregator, hook_url: str, stop: threading.Event) -> Ours:
    """The control plane as `controlplane serve` runs it, with no runbooks (nothing acts on
    the aggregator, which both pipelines watch) and the benchmark's notification routing."""
    (data / "routing.yml").write_text(yaml.safe_dump(_routing(hook_url)))
    (data / "no-runbooks").mkdir()
    port = free_port()
    env = {
        **agg.env,
        "CONTROLPLANE_SCRAPE_TARGETS": ",".join(f"{job}={url}" for job, url in agg.targets()),
        "CONTROLPLANE_SCRAPE_INTERVAL": f"{INTERVAL_S:g}s",
        "CONTROLPLANE_SCRAPE_TIMEOUT": TIMEOUT,
        "CONTROLPLANE_RULES_DIR": str(ROOT / "rules"),
        "CONTROLPLANE_RUNBOOKS_DIR": str(data / "no-runbooks"),
        "CONTROLPLANE_ROUTING_FILE": str(data / "routing.yml"),
        "CONTROLPLANE_DATABASE_URL": f"sqlite:///{data / 'controlplane.db'}",
        "CONTROLPLANE_CHECKPOINT_PATH": str(data / "controlplane-store"),
        "CONTROLPLANE_API_TOKEN": uuid.uuid4().hex,
    }
    supervisor = Supervisor(env=env, log_dir=data, python=sys.executable)
    supervisor.start("controlplane", ["controlplane", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_ready(supervisor, "controlplane", f"{url}/readyz", stop=stop)
    return Ours(supervisor=supervisor, url=url, pid=supervisor.pid("controlplane"))


# -- Prometheus and Alertmanager --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Peer:
    prometheus: subprocess.Popen[bytes]
    alertmanager: subprocess.Popen[bytes]
    url: str  # Prometheus

    def active(self, provider: str) -> bool:
        body = requests.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        return any(a["labels"].get("provider") == provider for a in body["data"]["alerts"])

    def missed(self) -> int:
        return _counter_sum(self.url, "prometheus_rule_group_iterations_missed_total")

    def stop(self) -> None:
        for proc in (self.prometheus, self.alertmanager):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def start_peer(data: Path, agg: Aggregator, hook_url: str) -> Peer:
    am_port, prom_port = free_port(), free_port()
    (data / "alertmanager.yml").write_text(yaml.safe_dump(_routing(hook_url)))
    scrape = [
        {"job_name": job, "static_configs": [{"targets": [url.split("/")[2]]}]}
        for job, url in agg.targets()
    ]
    interval = f"{INTERVAL_S:g}s"
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": TIMEOUT,
            "evaluation_interval": interval,
        },
        "rule_files": [str(ROOT / "rules" / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": scrape,
    }
    (data / "prometheus.yml").write_text(yaml.safe_dump(config))
    alertmanager = _spawn(data, "alertmanager", [
        "prometheus-alertmanager", f"--config.file={data / 'alertmanager.yml'}",
        f"--storage.path={data / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",
    ])  # fmt: skip
    prometheus = _spawn(data, "prometheus", [
        "prometheus", f"--config.file={data / 'prometheus.yml'}",
        f"--storage.tsdb.path={data / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
    ])  # fmt: skip
    peer = Peer(
        prometheus=prometheus, alertmanager=alertmanager, url=f"http://127.0.0.1:{prom_port}"
    )
    for url in (f"http://127.0.0.1:{am_port}", peer.url):
        _wait_http(f"{url}/-/ready", 30.0)
    return peer


def _spawn(data: Path, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    with (data / f"{name}.log").open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {timeout_s:g}s")


# -- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sample:
    """Seconds from the fault's injection; None: did not happen within the run's timeout."""

    run: int
    alert: str
    ours_firing: float | None
    ours_webhook: float | None
    prom_firing: float | None
    prom_webhook: float | None
    breaker_open: float | None = None  # the region's breaker seen open (polled every 0.1 s)
    missed: tuple[int, int] = (0, 0)  # group evaluations skipped in the run: ours, Prometheus


def admin(agg: Aggregator, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {agg.token}", "Idempotency-Key": str(uuid.uuid4())}
    response = requests.request(
        method, f"{agg.urls['eu']}{path}", json=body, headers=headers, timeout=10
    )
    response.raise_for_status()
    return response.json()


def one_run(
    n: int,
    agg: Aggregator,
    ours: Ours,
    peer: Peer,
    hook: Receiver,
    args: argparse.Namespace,
    alerts: Sequence[str],
) -> list[Sample]:
    provider, timeout_s = args.provider, args.timeout
    fault = {"kind": "provider_down", "target": provider, "duration_s": timeout_s + 60}
    missed_before = (ours.missed(), peer.missed())
    # Each pipeline scrapes and evaluates at its own fixed phase of the second, and runs
    # follow each other by whole evaluation cycles: injected at the same phase every time,
    # one pipeline would be lucky in every run. A uniformly random phase averages that out.
    time.sleep(PHASES.uniform(0.0, 1.0))
    injected = time.time()
    fault_id = admin(agg, "POST", "/admin/faults", fault)["id"]
    opened = wait_fired(agg, ours, hook, provider, injected, timeout_s, alerts)
    admin(agg, "DELETE", f"/admin/faults/{fault_id}")
    missed = (ours.missed() - missed_before[0], peer.missed() - missed_before[1])
    samples = []
    for alert in alerts:
        mine = hook.first("ours", alert, provider, injected)
        theirs = hook.first("prometheus", alert, provider, injected)
        samples.append(Sample(
            run=n, alert=alert,
            ours_firing=mine.starts_at - injected if mine else None,
            ours_webhook=mine.arrived - injected if mine else None,
            prom_firing=theirs.starts_at - injected if theirs else None,
            prom_webhook=theirs.arrived - injected if theirs else None,
            breaker_open=opened - injected if opened and alert == "ProviderBreakerOpen" else None,
            missed=missed,
        ))  # fmt: skip
    return samples


def wait_fired(
    agg: Aggregator,
    ours: Ours,
    hook: Receiver,
    provider: str,
    injected: float,
    timeout_s: float,
    alerts: Sequence[str],
) -> float | None:
    """Wait until both pipelines fired and notified every alert (or the timeout); meanwhile
    poll the region for when the provider's breaker opened (returned, unix seconds)."""
    deadline = time.monotonic() + timeout_s
    opened = None
    while time.monotonic() < deadline:
        if opened is None:
            state = admin(agg, "GET", "/admin/state")
            if state["breakers"].get(provider) == "open":
                opened = time.time()
        if all(
            hook.first("prometheus", a, provider, injected)
            and hook.first("ours", a, provider, injected)
            for a in alerts
        ):
            break
        time.sleep(0.1)
    return opened


def wait_recovered(ours: Ours, peer: Peer, provider: str, timeout_s: float) -> float:
    """Seconds until neither pipeline holds a pending or firing alert of the provider."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not ours.active(provider) and not peer.active(provider):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"alerts of {provider!r} did not resolve within {timeout_s:g}s")


# -- figures ---------------------------------------------------------------------------------


COLUMNS = (
    ("ours_firing", "ours: firing"),
    ("ours_webhook", "ours: webhook"),
    ("prom_firing", "Prometheus: firing"),
    ("prom_webhook", "Prometheus + Alertmanager: webhook"),
)


def percentile(values: Sequence[float], q: int) -> float:
    """Nearest rank: with 5 runs, p95 is the slowest run."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def cell(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "did not fire"
    text = f"{statistics.median(got):.2f} / {percentile(got, 95):.2f}"
    return text + (f" ({len(values) - len(got)} missed)" if len(got) < len(values) else "")


def verdicts(samples: Sequence[Sample], alerts: dict[str, float]) -> list[str]:
    return [_verdict(a, f, [s for s in samples if s.alert == a]) for a, f in alerts.items()]


def _verdict(alert: str, for_s: float, rows: Sequence[Sample]) -> str:
    floor = 2 * INTERVAL_S + for_s
    ours = [s.ours_firing for s in rows if s.ours_firing is not None]
    ours_hook = [s.ours_webhook for s in rows if s.ours_webhook is not None]
    theirs = [s.prom_webhook for s in rows if s.prom_webhook is not None]
    fired = f"fired in {len(ours)} of {len(rows)} runs"
    if not ours or not ours_hook or not theirs:
        return f"- {alert}: {fired}; too few to compare"
    near = statistics.median(ours) <= floor + INTERVAL_S
    faster = statistics.median(ours_hook) <= statistics.median(theirs)
    line = (
        f"- {alert} ({fired}): median fault -> firing {statistics.median(ours):.2f} s against"
        f" a floor of {floor:g} s: {'within' if near else 'NOT within'} one scrape interval;"
        f" median fault -> webhook {statistics.median(ours_hook):.2f} s against"
        f" {statistics.median(theirs):.2f} s for Prometheus + Alertmanager:"
        f" {'no slower' if faster else 'SLOWER'}"
    )
    paths = [
        (s.ours_webhook - s.ours_firing, s.prom_webhook - s.prom_firing)
        for s in rows
        if s.ours_webhook is not None
        and s.ours_firing is not None
        and s.prom_webhook is not None
        and s.prom_firing is not None
    ]
    if paths:
        line += (
            f"; firing -> webhook: median {statistics.median(p[0] for p in paths):.2f} s"
            f" ours, {statistics.median(p[1] for p in paths):.2f} s Alertmanager"
        )
    opened = [
        s.ours_firing - s.breaker_open
        for s in rows
        if s.ours_firing is not None and s.breaker_open is not None
    ]
    if opened:
        line += (
            f"; from the breaker opening (when the condition became true) to firing:"
            f" median {statistics.median(opened):.2f} s"
        )
    return line


def markdown(samples: Sequence[Sample], settings: str, alerts: dict[str, float]) -> str:
    """`alerts`: alert name -> its `for` in seconds."""
    head = "| alert | floor (s) | " + " | ".join(t for _, t in COLUMNS) + " |"
    caption = (
        "Seconds from the fault's injection, median / p95 (nearest rank: with fewer than 20"
        " runs, the slowest run):"
    )
    lines = [settings, "", caption, "", head]
    lines.append("|" + "---|" * (len(COLUMNS) + 2))
    for alert, for_s in alerts.items():
        rows = [s for s in samples if s.alert == alert]
        cells = [cell([getattr(s, key) for s in rows]) for key, _ in COLUMNS]
        lines.append(
            f"| {alert} (for {for_s:g}s) | {2 * INTERVAL_S + for_s:g} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        *verdicts(samples, alerts),
        "",
        "Per run (s; -: did not fire within the run):",
        "",
    ]
    titles = [t for _, t in COLUMNS] + ["breaker seen open", "evaluations missed (ours / Prom.)"]
    lines.append("| run | alert | " + " | ".join(titles) + " |")
    lines.append("|" + "---|" * (len(COLUMNS) + 4))
    for s in samples:
        values = [getattr(s, key) for key, _ in COLUMNS] + [s.breaker_open]
        shown = ["-" if v is None else f"{v:.2f}" for v in values] + [
            f"{s.missed[0]} / {s.missed[1]}"
        ]
        lines.append(f"| {s.run} | {s.alert} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"version (\S+)", done.stdout + done.stderr)
    return match.group(1) if match else "?"


def settings_text(args: argparse.Namespace, runs: int) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    busy = ": other work shared the machine" if os.getloadavg()[0] > (os.cpu_count() or 1) else ""
    return (
        f"Measured {now} on {platform.machine()} ({os.cpu_count()} cores, {platform.system()},"
        f" load average {load} at the end{busy}),"
        f" Python {platform.python_version()}, prometheus {version('prometheus')} and"
        f" alertmanager {version('prometheus-alertmanager')} (Debian packages), by"
        f" `benchmarks/alert_latency.py`. Both pipelines: scrape and evaluation every"
        f" {INTERVAL_S:g}s, the shipped `rules/*.yml`, group_wait 1s, group_interval 1s,"
        f" group_by all labels, a webhook to a local receiver. Ours is `controlplane serve`"
        f" (scrape manager, store, engine, rule manager, notification dispatcher) with no"
        f" runbooks, so that nothing acts on the aggregator both pipelines watch."
        f" Aggregator: wallet, region eu, front door, load generator at {args.rate:g} rounds/s;"
        f" `provider_down` on {args.provider} in eu, {runs} runs, each cleared and recovered"
        f" (no alert of the provider left in either pipeline) before the next. The floor is"
        f" scrape interval + `for` + one evaluation interval; firing times are the evaluation"
        f" timestamps of the firing alert (Prometheus's as the `startsAt` it sends). The two"
        f" pipelines scrape and evaluate at different phases of the second (group offsets"
        f" are hashed), which alone shifts firing by up to one interval either way."
    )


# -- main ------------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, data: Path, stack: contextlib.ExitStack, alerts: Sequence[str]
) -> tuple[list[Sample], str]:
    """The samples of every run, and the CPU each pipeline used meanwhile."""
    stop = threading.Event()
    hook = Receiver()
    stack.callback(hook.close)
    agg = start_aggregator(data, args.rate, stop)
    stack.callback(stop_aggregator, agg)
    ours = start_ours(data, agg, f"{hook.url}/ours", stop)
    stack.callback(ours.stop)
    peer = start_peer(data, agg, f"{hook.url}/prometheus")
    stack.callback(peer.stop)
    print(f"warming up {args.warmup:g}s (rate windows fill) ...", flush=True)
    time.sleep(args.warmup)
    pids = (ours.pid, peer.prometheus.pid, peer.alertmanager.pid)
    cpu_before, wall_before = [cpu_seconds(pid) for pid in pids], time.monotonic()
    samples = runs(args, agg, ours, peer, hook, alerts)
    wall = time.monotonic() - wall_before
    used = [
        (cpu_seconds(pid) - before) / wall * 100
        for pid, before in zip(pids, cpu_before, strict=True)
    ]
    cpu = (
        f"CPU during the runs, in % of one core: `controlplane serve` {used[0]:.0f}%,"
        f" prometheus {used[1]:.0f}%, alertmanager {used[2]:.0f}%."
    )
    return samples, cpu


def runs(
    args: argparse.Namespace,
    agg: Aggregator,
    ours: Ours,
    peer: Peer,
    hook: Receiver,
    alerts: Sequence[str],
) -> list[Sample]:
    samples: list[Sample] = []
    budget = time.monotonic() + args.max_minutes * 60
    for n in range(1, args.runs + 1):
        if time.monotonic() > budget:
            print(f"time budget of {args.max_minutes:g} min used up after {n - 1} runs")
            break
        found = one_run(n, agg, ours, peer, hook, args, alerts)
        samples += found
        for s in found:
            shown = ["-" if v is None else f"{v:.2f}" for v in (getattr(s, k) for k, _ in COLUMNS)]
            print(f"run {n} {s.alert}: ours firing {shown[0]} s, webhook {shown[1]} s;"
                  f" prometheus firing {shown[2]} s, webhook {shown[3]} s;"
                  f" evaluations missed {s.missed}", flush=True)  # fmt: skip
        print(f"  recovered in {wait_recovered(ours, peer, args.provider, 180):.1f}s", flush=True)
    return samples


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def alert_fors(names: Sequence[str]) -> dict[str, float]:
    """`for` (s) of each named alert of the shipped rules, in the order given."""
    rules = {
        r.name: r.for_ms / 1000
        for g in load_files(rule_files([ROOT / "rules"])[0])
        for r in g.rules
        if isinstance(r, AlertingRule)
    }
    return {name: rules[name] for name in names if name in rules}


def stop_aggregator(agg: Aggregator) -> None:
    agg.supervisor.stop("loadgen", signal.SIGINT, grace_s=15)
    for name in ("frontdoor", "eu", "wallet"):
        agg.supervisor.stop(name, signal.SIGTERM, grace_s=10)
    agg.supervisor.kill_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--provider", default="pragmatic-play", help="a provider of region eu")
    parser.add_argument("--rate", type=float, default=25.0, help="load generator rounds/s")
    parser.add_argument("--warmup", type=float, default=65.0, help="s before the first fault")
    parser.add_argument("--timeout", type=float, default=60.0, help="s to wait per run")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="no new run after")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args()
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            print(f"{binary} is not installed (Debian package)", file=sys.stderr)
            return 1
    alerts = alert_fors(ALERTS)
    print(f"measuring {', '.join(alerts)}", flush=True)
    data = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, data, True)
        samples, cpu = measure(args, data, stack, list(alerts))
    settings = settings_text(args, len({s.run for s in samples})) + " " + cpu
    text = markdown(samples, settings, alerts)
    print("\n" + text)
    if not args.no_write:
        write_section(Path(args.output), (BEGIN, END), text, "## Alert latency")
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
