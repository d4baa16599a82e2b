"""Guards: whether a planned execution may act now. Pure: every input is a snapshot.

Each guard yields a decision with its reason, passed or refused, and every one is audited. Some
limits hold whatever a runbook says: never drain the last healthy region, never act on a target
in a maintenance window, never act automatically while automation is paused or over budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from controlplane.runbooks.actions import ACTIONS, TargetKind
from controlplane.runbooks.model import Runbook


class Verdict(StrEnum):
    PASS = "pass"
    REFUSE = "refuse"


@dataclass(frozen=True, kw_only=True)
class GuardDecision:
    guard: str
    verdict: Verdict
    reason: str


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a step acts on; the key scopes cooldowns, concurrency and maintenance windows."""

    kind: TargetKind
    region: str = ""
    provider: str = ""

    @property
    def key(self) -> str:
        return "/".join(p for p in (self.kind.value, self.region, self.provider) if p)

    def labels(self) -> dict[str, str]:
        return {k: v for k, v in (("region", self.region), ("provider", self.provider)) if v}


@dataclass(frozen=True, kw_only=True)
class PastRun:
    runbook: str
    target_key: str
    started_at: float
    active: bool  # not yet in a final state


@dataclass(frozen=True, kw_only=True)
class Fleet:
    """The aggregator's live state, from the admin APIs."""

    providers: Mapping[str, frozenset[str]] = field(default_factory=dict)  # region -> all
    isolated: Mapping[str, frozenset[str]] = field(default_factory=dict)  # region -> isolated
    healthy_regions: frozenset[str] = frozenset()  # up and not drained


@dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    id: str
    matchers: Mapping[str, str]  # on target labels (region, provider); empty matches all
    starts_at: float
    ends_at: float
    reason: str = ""

    def covers(self, target: Target, now: float) -> bool:
        labels = target.labels()
        in_time = self.starts_at <= now < self.ends_at
        return in_time and all(labels.get(k) == v for k, v in self.matchers.items())


@dataclass(frozen=True, kw_only=True)
class Automation:
    paused: bool = False
    paused_reason: str = ""
    budget_max_actions: int = 20
    budget_window_s: float = 600.0


@dataclass(frozen=True, kw_only=True)
class Situation:
    now: float
    history: Sequence[PastRun] = ()
    automated_action_times: Sequence[float] = ()  # across all runbooks
    fleet: Fleet = field(default_factory=Fleet)
    automation: Automation = field(default_factory=Automation)
    maintenance: Sequence[MaintenanceWindow] = ()


def evaluate(
    runbook: Runbook,
    target: Target,
    situation: Situation,
    *,
    automated: bool,
    holds: Callable[[str], bool] = lambda _expr: True,
) -> list[GuardDecision]:
    """All guard decisions for running `runbook` on `target`; it may act only if none refuses.

    `holds(expr)` evaluates a rendered precondition (non-empty result); it is called only when
    every cheaper guard passed, so a refused run does not query.
    """
    checks: list[Callable[[], GuardDecision]] = [
        lambda: _kill_switch(situation, automated),
        lambda: _maintenance(target, situation),
        lambda: _budget(runbook, situation, automated),
        lambda: _cooldown(runbook, target, situation),
        lambda: _concurrency(runbook, situation),
        lambda: _throttle(runbook, situation),
        *(
            lambda a=action: _blast_radius(runbook, a, target, situation.fleet)
            for action in {s.action for s in runbook.steps}
        ),
    ]
    decisions = [check() for check in checks]
    if all(d.verdict is Verdict.PASS for d in decisions):
        for pre in runbook.guards.require:
            ok = holds(pre.expr)
            decisions.append(
                _decide("require", ok, f"{'holds' if ok else 'refused'}: {pre.reason}")
            )
    return decisions


def recheck(target: Target, situation: Situation, *, automated: bool) -> list[GuardDecision]:
    """The guards a resumed execution meets again before each mutating step: the switches a
    person may have set while the control plane was down. Cooldown, concurrency, throttle,
    budget and blast radius were decided when it started, and would now count it against
    itself."""
    return [_kill_switch(situation, automated), _maintenance(target, situation)]


def allowed(decisions: Sequence[GuardDecision]) -> bool:
    return all(d.verdict is Verdict.PASS for d in decisions)


def _decide(guard: str, ok: bool, reason: str) -> GuardDecision:
    return GuardDecision(guard=guard, verdict=Verdict.PASS if ok else Verdict.REFUSE, reason=reason)


def _kill_switch(s: Situation, automated: bool) -> GuardDecision:
    if automated and s.automation.paused:
        return _decide("kill_switch", False, f"automation is paused: {s.automation.paused_reason}")
    return _decide("kill_switch", True, "automation is running" if automated else "manual run")


def _maintenance(target: Target, s: Situation) -> GuardDecision:
    hit = next((w for w in s.maintenance if w.covers(target, s.now)), None)
    if hit is not None:
        return _decide(
            "maintenance",
            False,
            f"{target.key} is in maintenance window {hit.id} until {hit.ends_at:.0f}: {hit.reason}",
        )
    return _decide("maintenance", True, "no maintenance window covers the target")


def _budget(runbook: Runbook, s: Situation, automated: bool) -> GuardDecision:
    a = s.automation
    used = sum(1 for t in s.automated_action_times if s.now - t < a.budget_window_s)
    needed = sum(1 for step in runbook.steps if ACTIONS[step.action].mutating)
    if automated and used + needed > a.budget_max_actions:
        return _decide(
            "budget",
            False,
            f"automation budget exhausted: {used} actions in the last "
            f"{a.budget_window_s:.0f}s, limit {a.budget_max_actions}",
        )
    return _decide("budget", True, f"{used}/{a.budget_max_actions} automated actions in window")


def _cooldown(runbook: Runbook, target: Target, s: Situation) -> GuardDecision:
    last = max(
        (
            r.started_at
            for r in s.history
            if r.runbook == runbook.name and r.target_key == target.key
        ),
        default=None,
    )
    cooldown = runbook.guards.cooldown_s
    if last is not None and s.now - last < cooldown:
        return _decide(
            "cooldown",
            False,
            f"{target.key} last ran {s.now - last:.0f}s ago, cooldown {cooldown:.0f}s",
        )
    return _decide("cooldown", True, f"no run on {target.key} within {cooldown:.0f}s")


def _concurrency(runbook: Runbook, s: Situation) -> GuardDecision:
    active = sum(1 for r in s.history if r.runbook == runbook.name and r.active)
    limit = runbook.guards.max_concurrent
    return _decide("max_concurrent", active < limit, f"{active} running, limit {limit}")


def _throttle(runbook: Runbook, s: Situation) -> GuardDecision:
    t = runbook.guards.throttle
    if t is None:
        return _decide("throttle", True, "no throttle")
    runs = sum(
        1 for r in s.history if r.runbook == runbook.name and s.now - r.started_at < t.window_s
    )
    return _decide(
        "throttle",
        runs < t.max_runs,
        f"{runs} runs in the last {t.window_s:.0f}s, limit {t.max_runs}",
    )


def _blast_radius(runbook: Runbook, action: str, target: Target, fleet: Fleet) -> GuardDecision:
    limits = runbook.guards.blast_radius
    if action == "provider.isolate":
        return _isolation_radius(
            limits.max_isolated_providers if limits else None,
            limits.max_isolated_fraction if limits else None,
            target,
            fleet,
        )
    if action == "region.drain":
        # draining the last healthy region would turn a partial outage into a total one
        minimum = max(1, (limits.min_healthy_regions or 1) if limits else 1)
        left = len(fleet.healthy_regions - {target.region})
        return _decide(
            "blast_radius",
            left >= minimum,
            f"{left} healthy regions would remain, at least {minimum} required",
        )
    return _decide("blast_radius", True, f"{action} has no blast radius")


def _isolation_radius(
    max_n: int | None, max_fraction: float | None, target: Target, fleet: Fleet
) -> GuardDecision:
    isolated = set(fleet.isolated.get(target.region, frozenset())) | {target.provider}
    total = len(fleet.providers.get(target.region, frozenset())) or 1
    if max_n is not None and len(isolated) > max_n:
        return _decide(
            "blast_radius",
            False,
            f"{len(isolated)} providers would be isolated in {target.region}, limit {max_n}",
        )
    if max_fraction is not None and len(isolated) / total > max_fraction:
        return _decide(
            "blast_radius",
            False,
            f"{len(isolated)}/{total} providers would be isolated "
            f"in {target.region}, limit {max_fraction:.0%}",
        )
    return _decide(
        "blast_radius",
        True,
        f"{len(isolated)}/{total} providers isolated in {target.region} after the action",
    )
