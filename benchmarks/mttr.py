"""MTTR: from an injected fault to the alert firing, to the first remediation step done and to
verification passed, and what players saw meanwhile, with and without the control plane.

Runs the whole bundle of `controlplane demo` (wallet, regions eu and latam, front door, load
generator, and in mode "with" the control plane with the shipped rules and runbooks, scraping
and evaluating every second). Each scenario of `controlplane.scenarios` is injected repeatedly,
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
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import requests

# benchmarks/aggregator.py is named like the package: keep this directory off the import path,
# or `import aggregator` would import that script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from aggregator.reconcile import ReconcileError, drain_queues, fetch_ledger, reconcile  # noqa: E402
from controlplane import demo  # noqa: E402
from controlplane.runbooks.actions import ACTIONS  # noqa: E402
from controlplane.runbooks.load import load_runbook  # noqa: E402
from controlplane.runbooks.model import Runbook  # noqa: E402
from controlplane.scenarios import SCENARIOS, Event, Follower, Scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- mttr:begin -->", "<!-- mttr:end -->"
ROLES = ("frontdoor", "eu", "latam", "wallet", "loadgen", "controlplane")
REGIONS = ("eu", "latam")
ORDER = ("provider-outage", "wallet-outage", "region-outage")
MUTATING = frozenset(name for name, spec in ACTIONS.items() if spec.mutating)
ACTIVE = frozenset({"running", "verifying", "pending_approval"})
IDLE = frozenset({"refused", "shadowed"})  # executions the guards do not count
TIMES = ("firing_s", "first_step_s", "verified_s", "resolved_s", "normal_s")


class Mode(StrEnum):
    WITH = "with"  # the control plane watches and remediates
    WITHOUT = "without"  # the aggregator alone: breakers, failover, its own retries


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    n: int  # 1-based, per scenario
    scenario: Scenario  # aimed at this run's target, with its fault duration
    target: str
    labels: Mapping[str, str]  # executions with these labels put this run in cooldown


@dataclass(frozen=True, kw_only=True)
class Impact:
    """What players saw in a window: launches, and rounds with a final answer."""

    launches: int = 0
    launches_ok: int = 0
    rounds: int = 0
    rounds_settled: int = 0

    @classmethod
    def between(cls, before: Mapping[str, Any], after: Mapping[str, Any]) -> Impact:
        if not before or not after:
            return cls()

        def delta(section: str, *keys: str) -> int:
            return sum(int(after[section][k]) - int(before[section][k]) for k in keys)

        return cls(
            launches=delta("launches", "attempted"),
            launches_ok=delta("launches", "ok", "failover"),
            rounds=delta("rounds", "settled", "failed", "unknown"),
            rounds_settled=delta("rounds", "settled"),
        )

    def __add__(self, other: Impact) -> Impact:
        return Impact(
            launches=self.launches + other.launches,
            launches_ok=self.launches_ok + other.launches_ok,
            rounds=self.rounds + other.rounds,
            rounds_settled=self.rounds_settled + other.rounds_settled,
        )


@dataclass(frozen=True, kw_only=True)
class RunResult:
    mode: Mode
    spec: RunSpec
    fault_s: float  # how long the fault was active
    window_s: float  # the player-impact window, from the fault
    impact: Impact
    firing_s: float | None = None
    first_step_s: float | None = None
    verified_s: float | None = None
    resolved_s: float | None = None
    normal_s: float | None = None  # everything back to normal
    state: str | None = None  # the runbook execution's final state
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Money:
    mode: Mode
    transactions: int = 0
    players: int = 0
    problems: tuple[str, ...] = ()


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


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def spread(values: Sequence[float | None]) -> str:
    """'median / p95' (nearest rank), and how many runs had a value if not all did."""
    found = [v for v in values if v is not None]
    if not found:
        return "-"
    text = f"{statistics.median(found):.1f} / {nearest_rank(found, 95):.1f}"
    return text if len(found) == len(values) else f"{text} ({len(found)} of {len(values)})"


def share(ok: int, total: int) -> str:
    return f"{ok / total:.2%} ({ok}/{total})" if total else "-"


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def run_line(r: RunResult) -> str:
    s, i = r.spec, r.impact
    times = ", ".join(f"{k.removesuffix('_s')} {fmt(getattr(r, k))}" for k in TIMES)
    return (
        f"[{r.mode}] {s.scenario.name} #{s.n} ({s.target}): {times} s; runbook {r.state or '-'};"
        f" fault {r.fault_s:.1f}s, window {r.window_s:.1f}s; launches"
        f" {share(i.launches_ok, i.launches)}, rounds {share(i.rounds_settled, i.rounds)}"
        + (f"; {r.note}" if r.note else "")
    )


def summary_rows(results: Sequence[RunResult]) -> list[str]:
    rows = []
    for name in ORDER:
        with_cp = [r for r in results if r.mode is Mode.WITH and r.spec.scenario.name == name]
        without = [r for r in results if r.mode is Mode.WITHOUT and r.spec.scenario.name == name]
        if not with_cp and not without:
            continue
        a = sum((r.impact for r in with_cp), Impact())
        b = sum((r.impact for r in without), Impact())
        times = " | ".join(spread([getattr(r, k) for r in with_cp]) for k in TIMES)
        rows.append(
            f"| {name} | {len(with_cp)} / {len(without)} | {times}"
            f" | {spread([r.normal_s for r in without])}"
            f" | {share(a.launches_ok, a.launches)} | {share(b.launches_ok, b.launches)}"
            f" | {share(a.rounds_settled, a.rounds)} | {share(b.rounds_settled, b.rounds)} |"
        )
    return rows


def run_rows(results: Sequence[RunResult]) -> list[str]:
    rows = []
    for r in results:
        i = r.impact
        times = " | ".join(fmt(getattr(r, k)) for k in TIMES)
        rows.append(
            f"| {r.mode} | {r.spec.scenario.name} #{r.spec.n} | {r.spec.target}"
            f" | {r.fault_s:.1f} | {r.window_s:.1f} | {times} | {r.state or '-'}"
            f" | {share(i.launches_ok, i.launches)} | {share(i.rounds_settled, i.rounds)}"
            f" | {r.note or ''} |"
        )
    return rows


def money_rows(money: Sequence[Money]) -> list[str]:
    rows = []
    for mode in Mode:
        mine = [m for m in money if m.mode is mode]
        if mine:
            problems = [p for m in mine for p in m.problems]
            verdict = (
                "0 mismatches"
                if not problems
                else f"**{len(problems)} problems**: " + ("; ".join(problems[:5]))
            )
            tx, players = sum(m.transactions for m in mine), sum(m.players for m in mine)
            rows.append(f"| {mode} | {len(mine)} | {tx} | {players} | {verdict} |")
    return rows


def targets(results: Sequence[RunResult], money: Sequence[Money]) -> list[str]:
    def met(ok: bool) -> str:
        return "met" if ok else "**MISSED**"

    lines = []
    with_cp = [r for r in results if r.mode is Mode.WITH]
    outage = [r.verified_s for r in with_cp if r.spec.scenario.name == ORDER[0]]
    done = [v for v in outage if v is not None]
    if outage:
        med = statistics.median(done) if done else math.inf
        lines.append(
            f"- Provider outage isolated and verified, median from the fault under 10 s:"
            f" {med:.1f} s ({len(done)} of {len(outage)} runs verified): {met(med < 10)}"
        )
    for name in ORDER:
        total = sum((r.impact for r in with_cp if r.spec.scenario.name == name), Impact())
        if total.launches:
            rate = total.launches_ok / total.launches
            lines.append(
                f"- {name}: launch success over the incident with the control plane at least"
                f" 99.5%: {share(total.launches_ok, total.launches)}: {met(rate >= 0.995)}"
            )
    wallet = [r for r in with_cp if r.spec.scenario.name == "wallet-outage"]
    after = [r.verified_s - r.fault_s for r in wallet if r.verified_s is not None]
    if wallet:
        lines.append(
            f"- wallet-outage (context, no target): the replay may act only once the wallet"
            f" answers again; from the fault's end to verified {spread(after)} s (median / p95);"
            f" {len(after)} of {len(wallet)} runs replayed"
            + ("" if len(after) == len(wallet) else ", in the others the regions' own retries"
               " emptied the queue first")
        )  # fmt: skip
    bad = sum(len(m.problems) for m in money)
    lines.append(
        f"- Money: zero lost or duplicated wallet transactions over {len(money)} bundles:"
        f" {bad} problems: {met(bad == 0)}"
    )
    return lines


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    return (
        f"{os.cpu_count()} cores (`nproc`), {cpu}, Python {platform.python_version()},"
        f" {platform.system()} {platform.release()}"
    )


def settings(args: argparse.Namespace, counts: Mapping[str, int]) -> str:
    runs = ", ".join(f"{counts[n]} {n}" for n in ORDER if counts[n])
    return (
        f"Settings: the `controlplane demo` bundle as processes (wallet, regions eu and latam on"
        f" SQLite, front door, load generator at {args.rate:g} rounds/s over {args.players}"
        f" players; the control plane scrapes every role every 1 s and evaluates the shipped"
        f" `rules/*.yml` (every group at `interval: 1s`) and runs the shipped `runbooks/`),"
        f" {args.warmup:g} s warm-up per bundle. Runs per mode: {runs}, round-robin across"
        f" scenarios; provider-outage takes another provider of eu each run, region-outage"
        f" alternates eu and latam. Fault durations: provider {args.provider_fault_s:g} s,"
        f" wallet (every win answers 500) {args.wallet_fault_s:g} s, region"
        f" {args.region_fault_s:g} s; with the control plane the fault is deleted"
        f" {args.clear_after:g} s after verification, and each run is followed until its alert"
        f" resolved, then until the aggregator is back to normal (no fault, no provider isolated"
        f" or in canary, breakers closed, regions up and undrained, retry queues empty, no alert"
        f" or execution active). A run the runbook's guards (cooldown, throttle, automation"
        f" budget) would refuse for more than {args.max_wait:g} s gets a fresh bundle. Without"
        f" the control plane: the same runs on a bundle without it, each fault active as long"
        f" as in the same run with it, player impact over the same window."
    )


def markdown(
    results: Sequence[RunResult],
    money: Sequence[Money],
    args: argparse.Namespace,
    counts: Mapping[str, int],
    meta: Mapping[str, str],
) -> str:
    return "\n".join([
        f"Measured {meta['date']} by `benchmarks/mttr.py` on {machine()}; load average"
        f" {meta['load']} (start / end; other work shared the machine); {meta['wall']}.",
        "",
        settings(args, counts),
        "",
        "Seconds from the fault's injection, median / p95 (nearest rank) over the runs with"
        " the control plane (back to normal: also without it); players' launch and round"
        " success over the incident window (fault to alert resolved), pooled over the runs,"
        " with the control plane and without:",
        "",
        "| scenario | runs (with / without) | alert firing | first step done | verified"
        " | alert resolved | back to normal | back to normal, without | launches ok, with"
        " | launches ok, without | rounds ok, with | rounds ok, without |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *summary_rows(results),
        "",
        "Targets (issue 5, 1 s scrape interval):",
        "",
        *targets(results, money),
        "",
        "Money, reconciled at the end of every bundle (load generator stopped, retry queues"
        " drained, every player's balance and every round in the wallet's ledger checked):",
        "",
        "| mode | bundles | wallet transactions | players | result |",
        "|---|---|---|---|---|",
        *money_rows(money),
        "",
        "Per run (s from the fault; window: the player-impact window):",
        "",
        "| mode | run | target | fault active | window | firing | first step | verified"
        " | resolved | normal | runbook | launches ok | rounds ok | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *run_rows(results),
    ])  # fmt: skip


def write_section(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip("\n") + f"\n\n## Remediation (MTTR)\n\n{block}\n"
    path.write_text(text)


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
        write_section(Path(args.output), text)
        print(f"\nwritten to {args.output}")
    return 0 if all(not m.problems for m in money) else 1


if __name__ == "__main__":
    raise SystemExit(main())
