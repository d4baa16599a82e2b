"""What benchmarks/mttr.py measures, and how it reads in BENCHMARKS.md: the runs' results, the
players' impact and the money check, as tables and target verdicts."""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from benchmd import machine

from controlplane.demo.scenarios import Scenario

ORDER = ("provider-outage", "wallet-outage", "region-outage")
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
