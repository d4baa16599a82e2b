"""MTTR: from an injected fault to the alert firing, to the first remediation step done and to
verification passed, and what players saw meanwhile, with and without the control plane.

Runs the whole bundle of `controlplane demo` (wallet, regions eu and latam, front door, load
generator, and in mode "with" the control plane with the shipped rules and runbooks, scraping
and evaluating every second). Each scenario of `controlplane.demo.scenarios` is injected repeatedly,
round-robin across scenarios; `Follower` follows each incident until its alert resolved (the
fault is cleared `--clear-after` s after verification), then the benchmark waits until the
aggregator is back to normal (no fault, every provider out of isolation at 100%, breakers
closed, regions up and undrained, retry queues empty, no alert or execution active).

The runbooks' guards are real: each provider-outage run takes another provider of eu, region
outages alternate eu and latam, and a run that a cooldown, throttle or the automation budget
would refuse for more than `--max-wait` s gets a fresh bundle instead. Mode "without" repeats the
same faults on a bundle without the control plane, each active as long as in mode "with" and
watched over the same window, so player impact compares like with like. At the end of every
bundle the load generator stops and the money is reconciled against the wallet's ledger.

    .venv/bin/python benchmarks/mttr.py                # 5/3/3 runs per mode, writes BENCHMARKS.md
    .venv/bin/python benchmarks/mttr.py --quick --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

# benchmarks/aggregator.py is named like the package: keep this directory off the import path,
# or `import aggregator` would import that script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from aggregator.reconcile import ReconcileError, drain_queues, fetch_ledger, reconcile  # noqa: E402
from controlplane import demo  # noqa: E402
from controlplane.demo.scenarios import SCENARIOS, Event, Follower  # noqa: E402
from controlplane.runbooks.actions import ACTIONS  # noqa: E402
from controlplane.runbooks.load import load_runbook  # noqa: E402
from controlplane.runbooks.model import Runbook  # noqa: E402

# the packages are imported: this directory's own modules may come back on the path
sys.path.append(str(Path(__file__).resolve().parent))
from benchmd import write_section  # noqa: E402
from mttr_report import (  # noqa: E402
    ORDER,
    Impact,
    Mode,
    Money,
    RunResult,
    RunSpec,
    markdown,
    run_line,
)

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- mttr:begin -->", "<!-- mttr:end -->"
ROLES = ("frontdoor", "eu", "latam", "wallet", "loadgen", "controlplane")
REGIONS = ("eu", "latam")
MUTATING = frozenset(name for name, spec in ACTIONS.items() if spec.mutating)
ACTIVE = frozenset({"running", "verifying", "pending_approval"})
IDLE = frozenset({"refused", "shadowed"})  # executions the guards do not count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bundle:
    """One copy of the bundled aggregator as processes, with or without the control plane."""

    def __init__(self, args: argparse.Namespace, data: Path, *, with_cp: bool) -> None:
        parser = argparse.ArgumentParser()
        demo.configure(parser)
        ports = [f"--{role}-port={free_port()}" for role in ROLES]
        load = ["--rate", str(args.rate), "--players", str(args.players)]
        dargs = parser.parse_args([*ports, *load, "--data-dir", str(data)])
        environ = {
            **os.environ,
            "CONTROLPLANE_RULES_DIR": str(ROOT / "rules"),
            "CONTROLPLANE_RUNBOOKS_DIR": str(ROOT / "runbooks"),
        }
        plan = demo.make_plan(dargs, environ)
        if not with_cp:
            roles = tuple(r for r in plan.roles if r.name != "controlplane")
            plan = replace(plan, roles=roles, urls={r.name: r.url for r in roles})
        self.plan, self.with_cp = plan, with_cp
        self.http = requests.Session()
        self.supervisor = demo.Supervisor(env=plan.env, log_dir=data, python=sys.executable)

    def start(self, warmup_s: float) -> None:
        demo.fresh_data_dir(self.plan.data_dir)
        never = threading.Event()
        for stage in self.plan.stages():
            for role in stage:
                self.supervisor.start(role.name, role.args)
            for role in stage:
                demo.wait_ready(self.supervisor, role.name, f"{role.url}/readyz", stop=never)
        print(f"bundle up ({self.plan.data_dir.name}); warming up {warmup_s:g}s", flush=True)
        time.sleep(warmup_s)  # players settle in, the control plane's rate windows fill

    def stop(self, mode: Mode) -> Money:
        money = Money(mode=mode, problems=("the load generator did not stop",))
        try:
            self.supervisor.stop("loadgen", signal.SIGINT, grace_s=45)
            money = self.reconcile(mode)
        finally:
            for name in reversed(self.supervisor.names()):
                self.supervisor.stop(name, signal.SIGTERM, grace_s=10)
            self.supervisor.kill_group()
            self.http.close()
        return money

    def reconcile(self, mode: Mode) -> Money:
        token, urls = self.plan.admin_token, self.plan.urls
        try:
            report = json.loads(self.plan.report_file.read_text())
            left = drain_queues([urls[r] for r in REGIONS], token, timeout_s=30)
            ledger = fetch_ledger(urls["wallet"], token, report.get("players", {}))
        except (OSError, ValueError, ReconcileError) as exc:
            return Money(mode=mode, problems=(f"reconciliation did not run: {exc}",))
        result = reconcile(report, ledger)
        problems = [f"{m.problem.value} {m.subject}: {m.detail}" for m in result.mismatches]
        problems += [f"retry queue of {u} not drained: {n}" for u, n in left.items() if n != 0]
        return Money(
            mode=mode,
            transactions=result.transactions,
            players=result.players_checked,
            problems=tuple(problems),
        )

    def follower(self) -> Follower:
        return Follower(
            controlplane_url=self.plan.urls["controlplane"],
            admin_urls={k: self.plan.urls[k] for k in (*REGIONS, "wallet")},
            admin_token=self.plan.admin_token,
            loadgen_url=self.plan.urls["loadgen"],
            session=self.http,
        )

    def get(self, role: str, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.plan.admin_token}"}
        resp = self.http.get(f"{self.plan.urls[role]}{path}", headers=headers, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def send(self, method: str, role: str, path: str, body: Mapping[str, Any] | None) -> Any:
        headers = {
            "Authorization": f"Bearer {self.plan.admin_token}",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        url = f"{self.plan.urls[role]}{path}"
        return self.http.request(method, url, json=body, headers=headers, timeout=10).json()

    def report(self) -> dict[str, Any]:
        with contextlib.suppress(requests.RequestException, ValueError):
            return dict(self.get("loadgen", "/report"))
        return {}


# -- the runs ----------------------------------------------------------------------------------


def plan_runs(
    counts: Mapping[str, int], providers: Sequence[str], faults: Mapping[str, float]
) -> list[RunSpec]:
    """Round-robin over the scenarios, so that one scenario's cooldown passes during the
    others' runs; every provider-outage run takes another provider, region outages alternate."""
    specs: list[RunSpec] = []
    for i in range(max(counts.values(), default=0)):
        specs += [aim(name, i, providers, faults[name]) for name in ORDER if i < counts[name]]
    return specs


def aim(name: str, i: int, providers: Sequence[str], fault_s: float) -> RunSpec:
    base = SCENARIOS[name]
    fault = {**base.fault, "duration_s": fault_s}
    if name == "provider-outage":
        target = providers[i % len(providers)]
        labels = {"region": base.role, "provider": target}
        desc = f"provider {target} in {base.role} stops answering (every call times out)"
    elif name == "region-outage":
        target = REGIONS[i % len(REGIONS)]
        labels = {"region": target}
        desc = f"region {target} stops serving players (its health checks fail)"
    else:
        target, labels, desc = str(base.fault["target"]), {}, base.description
    role = target if name == "region-outage" else base.role
    fault = {**fault, "target": target}
    scenario = replace(base, role=role, fault=fault, description=desc)
    return RunSpec(n=i + 1, scenario=scenario, target=target, labels=labels)


def run_with(bundle: Bundle, spec: RunSpec, args: argparse.Namespace) -> RunResult:
    cleared: list[float] = []

    def on_event(event: Event) -> None:
        if event.text == "fault cleared":
            cleared.append(event.at_s)
        if args.verbose:
            print(f"  {event.at_s:7.1f}s  {event.text}", flush=True)

    before, t0 = bundle.report(), time.monotonic()
    out = bundle.follower().run(
        spec.scenario,
        until="resolved",
        timeout_s=args.timeout,
        clear_after_verified_s=args.clear_after,
        on_event=on_event,
    )
    window = time.monotonic() - t0
    impact = Impact.between(before, bundle.report())
    # the fault ends when the follower deletes it, or earlier when its duration runs out
    fault_s = min(float(spec.scenario.fault["duration_s"]), cleared[0] if cleared else window)
    normal_s, note = Recovery(bundle, t0).wait(args.normal_timeout)
    if out.resolved_s is None:
        note = f"alert did not resolve within {args.timeout:g}s; {note}".strip("; ")
    return RunResult(
        mode=Mode.WITH, spec=spec, fault_s=fault_s, window_s=window, impact=impact,
        firing_s=out.alert_firing_s, first_step_s=out.first_step_s, verified_s=out.verified_s,
        resolved_s=out.resolved_s, normal_s=normal_s, state=out.execution_state, note=note,
    )  # fmt: skip


def run_without(
    bundle: Bundle, spec: RunSpec, fault_s: float, window_s: float, normal_timeout: float
) -> RunResult:
    """The same fault for as long as with the control plane, watched over the same window."""
    fault = {**spec.scenario.fault, "duration_s": round(fault_s, 3)}
    before, t0 = bundle.report(), time.monotonic()
    made = bundle.send("POST", spec.scenario.role, "/admin/faults", fault)
    recovery, end = Recovery(bundle, t0), t0 + window_s
    while (now := time.monotonic()) < end:  # the aggregator may recover within the window
        recovery.poll()
        time.sleep(min(0.5, end - now))
    impact = Impact.between(before, bundle.report())
    bundle.send("DELETE", spec.scenario.role, f"/admin/faults/{made['id']}", None)
    normal_s, note = recovery.wait(normal_timeout)
    return RunResult(
        mode=Mode.WITHOUT, spec=spec, fault_s=fault_s, window_s=window_s, impact=impact,
        normal_s=normal_s, note=note,
    )  # fmt: skip


def abnormal(bundle: Bundle) -> list[str]:
    """What is not back to normal yet; empty when the bundle is ready for the next fault."""
    found: list[str] = []
    for region in REGIONS:
        state = bundle.get(region, "/admin/state")
        found += [
            f"{region}/{p['id']} isolated={p['isolated']} canary={p['canary_percent']:g}%"
            f" breaker={p['breaker']}"
            for p in state["providers"]
            if p["isolated"] or p["canary_percent"] < 100 or p["breaker"] != "closed"
        ]
        found += [f"{region} queue depth {state['queue']['depth']}"] * bool(state["queue"]["depth"])
        found += [f"{region} fault {f['kind']}" for f in state["faults"]]
    found += [f"wallet fault {f['kind']}" for f in bundle.get("wallet", "/admin/state")["faults"]]
    found += [
        f"region {r['id']} up={r['up']} drained={r['drained']}"
        for r in bundle.get("frontdoor", "/admin/state")["regions"]
        if not r["up"] or r["drained"]
    ]
    if bundle.with_cp:
        found += controlplane_busy(bundle)
    return found


def controlplane_busy(bundle: Bundle) -> list[str]:
    base = bundle.plan.urls["controlplane"]
    triggers = {s.alert for s in SCENARIOS.values()}
    alerts = bundle.http.get(f"{base}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    listed = bundle.http.get(f"{base}/api/v1/executions?limit=50", timeout=10).json()
    return [
        f"alert {a['labels']['alertname']} {a['state']}"
        for a in alerts
        if a["labels"].get("alertname") in triggers
    ] + [f"{e['runbook']} {e['state']}" for e in listed["executions"] if e["state"] in ACTIVE]


class Recovery:
    """When the bundle is back to normal after a fault injected at `t0` (monotonic)."""

    def __init__(self, bundle: Bundle, t0: float) -> None:
        self.bundle, self.t0 = bundle, t0
        self.normal_s: float | None = None
        self.left: list[str] = []  # what was still abnormal at the last look

    def poll(self) -> None:
        if self.normal_s is not None:
            return
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            found = abnormal(self.bundle)
            if found:
                self.left = found
            else:
                self.normal_s = time.monotonic() - self.t0

    def wait(self, timeout_s: float) -> tuple[float | None, str]:
        """Seconds from the fault to normal, and what recovered last; on timeout, put things
        right by hand (the next run must start from a healthy aggregator)."""
        while self.normal_s is None and time.monotonic() - self.t0 < timeout_s:
            self.poll()
            time.sleep(0.0 if self.normal_s is not None else 0.5)
        last = ", ".join(self.left[:3])
        if self.normal_s is not None:
            return self.normal_s, f"last to recover: {last}" if last else ""
        for region in REGIONS:
            for p in self.bundle.get(region, "/admin/state")["providers"]:
                if p["isolated"] or p["canary_percent"] < 100:
                    path = f"/admin/providers/{p['id']}/restore"
                    self.bundle.send("POST", region, path, {"canary_percent": 100})
            self.bundle.send("POST", "frontdoor", f"/admin/regions/{region}/undrain", {})
        return None, f"not normal within {timeout_s:g}s: {last}; restored by hand"


# -- guards: does the next run fit in this bundle? ----------------------------------------------


def guard_wait(
    spec: RunSpec,
    rb: Runbook,
    executions: Sequence[Mapping[str, Any]],
    action_times: Sequence[float],
    budget: tuple[int, float],
    now: float,
) -> float:
    """Seconds until the runbook's cooldown, throttle and the automation budget would let this
    run act (0: now). `executions` are the control plane's, `action_times` when automated
    mutating steps started."""
    counted = [e for e in executions if e["runbook"] == rb.name and e["state"] not in IDLE]
    waits = [0.0]
    mine = [
        e["created_at"]
        for e in counted
        if all(e["labels"].get(k) == v for k, v in spec.labels.items())
    ]
    if mine:
        waits.append(max(mine) + rb.guards.cooldown_s - now)
    t = rb.guards.throttle
    if t is not None:
        recent = sorted(e["created_at"] for e in counted if now - e["created_at"] < t.window_s)
        if len(recent) >= t.max_runs:
            waits.append(recent[len(recent) - t.max_runs] + t.window_s - now)
    limit, window_s = budget
    used = sorted(x for x in action_times if now - x < window_s)
    over = len(used) + expected_actions(rb, spec) - limit
    if over > 0:  # the `over` oldest actions must leave the window first
        waits.append(used[over - 1] + window_s - now if over <= len(used) else math.inf)
    return max(waits)


def expected_actions(rb: Runbook, spec: RunSpec) -> int:
    steps = sum(1 for s in (*rb.steps, *rb.on_resolved) if s.action in MUTATING)
    return steps * (len(REGIONS) if spec.scenario.role == "wallet" else 1)


def bundle_wait(bundle: Bundle, spec: RunSpec, rb: Runbook) -> float:
    base = bundle.plan.urls["controlplane"]
    get = lambda path: bundle.http.get(f"{base}{path}", timeout=10).json()  # noqa: E731
    executions = get("/api/v1/executions?limit=500")["executions"]
    budget = get("/api/v1/automation")["budget"]
    now = time.time()  # the control plane stamps executions and steps with wall time
    times = [
        s["started_at"]
        for e in executions
        if e["trigger"] == "alert" and e["state"] not in IDLE
        and now - e["created_at"] < budget["window_s"] + 600
        for s in get(f"/api/v1/executions/{e['id']}")["steps"]
        if s["action"] in MUTATING
    ]  # fmt: skip
    limits = (int(budget["max_actions"]), float(budget["window_s"]))
    return guard_wait(spec, rb, executions, times, limits, now)


# -- the modes ----------------------------------------------------------------------------------


def run_mode(
    mode: Mode,
    args: argparse.Namespace,
    data: Path,
    deadline: float,
    specs_of: Callable[[Bundle], Sequence[RunSpec]],
    earlier: Sequence[RunResult],
) -> tuple[list[RunResult], list[Money]]:
    """Every run of one mode; a fresh bundle whenever the guards would refuse the next run.
    `earlier` (mode "with") gives each run of mode "without" its fault duration and window."""
    results: list[RunResult] = []
    money: list[Money] = []
    bundles = iter(
        Bundle(args, data / f"{mode}-{i}", with_cp=mode is Mode.WITH) for i in range(1, 99)
    )
    bundle, broken = next(bundles), False
    try:
        bundle.start(args.warmup)
        for spec in specs_of(bundle):
            if time.monotonic() > deadline:
                print(f"--max-minutes {args.max_minutes:g} used up: no more runs", flush=True)
                break
            if broken or (mode is Mode.WITH and too_busy(bundle, spec, args.max_wait)):
                money.append(bundle.stop(mode))
                bundle = next(bundles)
                bundle.start(args.warmup)
            try:
                result = one_run(mode, bundle, spec, args, earlier)
            except (requests.RequestException, ValueError, KeyError) as exc:
                # a role that died or hangs: record it, and give the next run a fresh bundle
                dead = bundle.supervisor.exited()
                why = f"run failed: {exc!r}" + (f"; {dead} exited" if dead else "")
                result = RunResult(
                    mode=mode, spec=spec, fault_s=0.0, window_s=0.0, impact=Impact(), note=why
                )
            broken = result.note.startswith("run failed")
            results.append(result)
            print(run_line(result), flush=True)
    finally:
        money.append(bundle.stop(mode))
    return results, money


def one_run(
    mode: Mode,
    bundle: Bundle,
    spec: RunSpec,
    args: argparse.Namespace,
    earlier: Sequence[RunResult],
) -> RunResult:
    if mode is Mode.WITH:
        return run_with(bundle, spec, args)
    fault_s, window_s = window_of(spec, earlier)
    return run_without(bundle, spec, fault_s, window_s, args.normal_timeout)


def too_busy(bundle: Bundle, spec: RunSpec, max_wait: float) -> bool:
    """Wait for the guards if that is short; True if this bundle should make way."""
    rb = load_runbook(ROOT / "runbooks" / f"{spec.scenario.runbook}.yaml")
    wait = bundle_wait(bundle, spec, rb)
    if wait > max_wait:
        print(f"{rb.name} on {spec.target}: guards refuse {wait:.0f}s: fresh bundle", flush=True)
        return True
    if wait > 0:
        print(f"{rb.name} on {spec.target}: waiting {wait:.0f}s for its guards", flush=True)
        time.sleep(wait + 1.0)
    return False


def window_of(spec: RunSpec, earlier: Sequence[RunResult]) -> tuple[float, float]:
    twin = next(
        (r for r in earlier if r.spec.scenario.name == spec.scenario.name and r.spec.n == spec.n),
        None,
    )
    if twin is not None and twin.window_s > 0:
        return twin.fault_s, twin.window_s
    duration = float(spec.scenario.fault["duration_s"])
    return duration, duration + 15.0


def eu_providers(bundle: Bundle) -> list[str]:
    """The providers of eu, the scenario's own target first."""
    ids = [str(p["id"]) for p in bundle.get("eu", "/admin/state")["providers"]]
    first = SCENARIOS["provider-outage"].fault["target"]
    return sorted(ids, key=lambda p: p != first)


# -- the report ---------------------------------------------------------------------------------


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--provider-runs", type=int, default=5)
    p.add_argument("--wallet-runs", type=int, default=3)
    p.add_argument("--region-runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one run per scenario (a smoke test)")
    p.add_argument("--scenarios", default=",".join(ORDER), help="comma-separated subset")
    p.add_argument("--modes", default="with,without", help="with, without or both")
    p.add_argument("--rate", type=float, default=50.0, help="load generator rounds/s")
    p.add_argument("--players", type=int, default=100)
    p.add_argument("--warmup", type=float, default=20.0, help="s after a bundle starts")
    p.add_argument("--provider-fault-s", type=float, default=45.0)
    p.add_argument("--wallet-fault-s", type=float, default=40.0)
    p.add_argument("--region-fault-s", type=float, default=30.0)
    p.add_argument("--clear-after", type=float, default=2.0, help="s after verification")
    p.add_argument("--timeout", type=float, default=150.0, help="s to follow one incident")
    p.add_argument("--normal-timeout", type=float, default=150.0, help="s from the fault")
    p.add_argument("--max-wait", type=float, default=90.0, help="s to wait for guards")
    p.add_argument("--max-minutes", type=float, default=30.0, help="no new run after")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true", help="print, do not write")
    p.add_argument("--keep-data", action="store_true", help="keep logs and databases")
    p.add_argument("--verbose", action="store_true", help="print every incident's timeline")
    args = p.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(ORDER)
    if unknown or not set(args.modes.split(",")) <= set(Mode):
        p.error(f"unknown scenario or mode: {sorted(unknown) or args.modes!r}")
    return args


def run_counts(args: argparse.Namespace) -> dict[str, int]:
    asked = {
        "provider-outage": args.provider_runs,
        "wallet-outage": args.wallet_runs,
        "region-outage": args.region_runs,
    }
    chosen = args.scenarios.split(",")
    return {n: (min(1, k) if args.quick else k) if n in chosen else 0 for n, k in asked.items()}


def measure(
    args: argparse.Namespace, counts: Mapping[str, int], data: Path
) -> Iterator[tuple[list[RunResult], list[Money]]]:
    faults = {
        "provider-outage": args.provider_fault_s,
        "wallet-outage": args.wallet_fault_s,
        "region-outage": args.region_fault_s,
    }
    specs: list[RunSpec] = []

    def specs_of(bundle: Bundle) -> list[RunSpec]:
        if not specs:  # the same targets in both modes
            specs.extend(plan_runs(counts, eu_providers(bundle), faults))
        return specs

    deadline = time.monotonic() + args.max_minutes * 60
    earlier: list[RunResult] = []
    for mode in Mode:
        if mode in args.modes.split(","):
            print(f"\n== {mode.value} the control plane", flush=True)
            results, money = run_mode(mode, args, data, deadline, specs_of, earlier)
            earlier += results
            yield results, money


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = run_counts(args)
    data = Path(tempfile.mkdtemp(prefix="mttr-"))
    started, load = time.monotonic(), os.getloadavg()[0]
    results: list[RunResult] = []
    money: list[Money] = []
    try:
        for found, paid in measure(args, counts, data):
            results += found
            money += paid
    finally:
        if args.keep_data:
            print(f"logs and databases in {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": f"{load:.1f} / {os.getloadavg()[0]:.1f}",
        "wall": f"the whole benchmark took {(time.monotonic() - started) / 60:.1f} min",
    }
    text = markdown(results, money, args, counts, meta)
    print("\n" + text)
    if not args.no_write:
        write_section(Path(args.output), (BEGIN, END), text, "## Remediation (MTTR)")
        print(f"\nwritten to {args.output}")
    return 0 if all(not m.problems for m in money) else 1


if __name__ == "__main__":
    raise SystemExit(main())
