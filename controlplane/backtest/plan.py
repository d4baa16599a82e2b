"""What the runbooks would have done with a backtest's alerts: a time-ordered plan. Pure.

    runs = plan(fired_episodes(report), runbooks, end_ms=report.end_ms)

Each firing episode goes through what the live Remediator does with a firing alert: every
runbook whose trigger matches (manual ones never), the target it derives, the guards, then the
mode (auto -> would_run, approval -> needs_approval, shadow -> shadow_only), with one run per
runbook per episode. Time is simulated: earlier planned runs feed the guards' history (a run is
active from its start until its episode resolves, or the end of the window), their mutating
steps the automation budget, and a budget refusal pauses automation for the rest of the
replay, as the engine does. A refused run is tried again every RETRY_REFUSED_S while its
alert still fires, as the engine retries refusals; the plan keeps its final outcome.

Not known from telemetry, so never guessed: the aggregator's fleet (blast_radius), the
`require` preconditions (live queries), the kill switch and maintenance windows before the
replay (taken as running and none), and when a human would approve. `{{ $value }}` renders the
alert's value when it fired. on_resolved steps assume the run succeeded (the engine runs them
only then).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from controlplane.backtest.replay import BacktestReport
from controlplane.config import AutomationConfig
from controlplane.errors import ConfigError
from controlplane.runbooks import guards, templates
from controlplane.runbooks.actions import ACTIONS
from controlplane.runbooks.engine import RETRY_REFUSED_S
from controlplane.runbooks.execute import render_params
from controlplane.runbooks.model import Mode, Runbook, Step
from controlplane.runbooks.targets import default_params, target_of

NOT_EVALUATED = "not evaluated (needs live state)"
_CONFIG = AutomationConfig()


class Decision(StrEnum):
    WOULD_RUN = "would_run"
    NEEDS_APPROVAL = "needs_approval"
    SHADOW_ONLY = "shadow_only"
    REFUSED = "refused"


_BY_MODE = {
    Mode.AUTO: Decision.WOULD_RUN,
    Mode.APPROVAL: Decision.NEEDS_APPROVAL,
    Mode.SHADOW: Decision.SHADOW_ONLY,
}
# what the engine's guard history holds: neither refused nor shadowed executions
_IN_HISTORY = (Decision.WOULD_RUN, Decision.NEEDS_APPROVAL)


@dataclass(frozen=True, kw_only=True)
class FiredEpisode:
    labels: Mapping[str, str]  # the alert's, alertname included
    fired_at_ms: int
    resolved_at_ms: int | None = None  # None: still firing at the end of the window
    value: float | None = None


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    id: str
    action: str
    params: Mapping[str, object]  # rendered; as written when `error` says why it could not be
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class PlannedRun:
    runbook: str
    mode: Mode
    labels: Mapping[str, str]
    target: str  # the engine's target key, e.g. provider/eu/alpha
    fired_at_ms: int
    at_ms: int  # when it went ahead (the fire time, or the retry that got through); refused: fired
    resolved_at_ms: int | None
    decision: Decision
    refusals: tuple[guards.GuardDecision, ...] = ()  # of the first refused attempt
    attempts: int = 1
    not_evaluated: tuple[str, ...] = ()  # guards that would need live state
    steps: tuple[PlannedStep, ...] = ()
    on_resolved: tuple[PlannedStep, ...] = ()  # at resolved_at_ms, if the run went ahead

    @property
    def alert(self) -> str:
        return self.labels.get("alertname", "")


def fired_episodes(report: BacktestReport) -> list[FiredEpisode]:
    """The episodes that fired, by fire time (rule file order, then labels, at one instant)."""
    found = [
        FiredEpisode(
            labels=dict(alert.labels),
            fired_at_ms=episode.firing_at_ms,
            resolved_at_ms=episode.resolved_at_ms,
            value=episode.value,
        )
        for history in report.rules
        for alert in history.alerts
        for episode in alert.episodes
        if episode.firing_at_ms is not None
    ]
    return sorted(found, key=lambda e: e.fired_at_ms)


@dataclass(frozen=True, kw_only=True)
class _Attempt:
    episode: FiredEpisode
    runbook: Runbook
    number: int = 1
    first_refusals: tuple[guards.GuardDecision, ...] = ()


def plan(
    episodes: Sequence[FiredEpisode],
    runbooks: Sequence[Runbook],
    *,
    end_ms: int,
    budget_max_actions: int = _CONFIG.budget_max_actions,
    budget_window_s: float = _CONFIG.budget_window_s,
    retry_s: float = RETRY_REFUSED_S,
) -> tuple[PlannedRun, ...]:
    """One PlannedRun per firing episode and triggered runbook, by `at_ms`."""
    replay = _Replay(end_ms=end_ms, budget=(budget_max_actions, budget_window_s))
    # (time, sequence, attempt): at one instant, alerts in order and runbooks in load order
    due = [(a.episode.fired_at_ms, seq, a) for seq, a in enumerate(_triggered(episodes, runbooks))]
    heapq.heapify(due)
    seq = len(due)
    while due:
        t_ms, _, attempt = heapq.heappop(due)
        run = replay.decide(attempt, t_ms)
        retry_ms = t_ms + round(retry_s * 1000)
        if run.decision is Decision.REFUSED and replay.still_firing(attempt.episode, retry_ms):
            first = attempt.first_refusals or run.refusals
            again = replace(attempt, number=attempt.number + 1, first_refusals=first)
            heapq.heappush(due, (retry_ms, seq, again))
            seq += 1
            continue
        if run.decision is Decision.REFUSED:
            run = replace(run, at_ms=run.fired_at_ms)
        replay.runs.append(run)
    return tuple(sorted(replay.runs, key=lambda r: r.at_ms))


def _triggered(episodes: Sequence[FiredEpisode], runbooks: Sequence[Runbook]) -> list[_Attempt]:
    """What the engine's on_alert starts: each runbook but manual ones whose trigger matches."""
    return [
        _Attempt(episode=ep, runbook=rb)
        for ep in sorted(episodes, key=lambda e: e.fired_at_ms)
        for rb in runbooks
        if rb.mode is not Mode.MANUAL and rb.trigger is not None and rb.trigger.matches(ep.labels)
    ]


class _Replay:
    """The simulated state the guards see: the runs planned so far, and the kill switch."""

    def __init__(self, *, end_ms: int, budget: tuple[int, float]) -> None:
        self.end_ms, self.budget = end_ms, budget
        self.runs: list[PlannedRun] = []
        self.paused = False

    def still_firing(self, episode: FiredEpisode, t_ms: int) -> bool:
        if episode.resolved_at_ms is None:
            return t_ms <= self.end_ms
        return t_ms < episode.resolved_at_ms

    def decide(self, attempt: _Attempt, t_ms: int) -> PlannedRun:
        rb, ep = attempt.runbook, attempt.episode
        ctx = templates.Context(labels=ep.labels, value=ep.value, params=default_params(rb))
        base = PlannedRun(
            runbook=rb.name,
            mode=rb.mode,
            labels=ep.labels,
            target="",
            fired_at_ms=ep.fired_at_ms,
            at_ms=t_ms,
            resolved_at_ms=ep.resolved_at_ms,
            decision=Decision.REFUSED,
            attempts=attempt.number,
            steps=_render(rb.steps, ctx),
        )
        try:
            target = target_of(rb, ctx, ep.labels)
        except ConfigError as exc:  # the live engine fails to start it, every time
            why = guards.GuardDecision(
                guard="template", verdict=guards.Verdict.REFUSE, reason=str(exc)
            )
            return replace(base, refusals=(why,))
        situation = self.situation(t_ms / 1000)
        unknown = _needs_live_state(rb, target, situation)
        refusals = tuple(
            d
            for d in guards.evaluate(rb, target, situation, automated=True)
            if d.verdict is guards.Verdict.REFUSE and d.guard not in unknown
        )
        if any(d.guard == "budget" for d in refusals):
            self.paused = True  # as the engine does: automation stays paused until a human
        decision = Decision.REFUSED if refusals else _BY_MODE[rb.mode]
        resolved = ep.resolved_at_ms is not None and decision in _IN_HISTORY
        return replace(
            base,
            target=target.key,
            decision=decision,
            refusals=attempt.first_refusals or refusals,
            not_evaluated=unknown,
            on_resolved=_render(rb.on_resolved, ctx) if resolved else (),
        )

    def situation(self, now_s: float) -> guards.Situation:
        history = [
            guards.PastRun(
                runbook=r.runbook,
                target_key=r.target,
                started_at=r.at_ms / 1000,
                active=now_s < (r.resolved_at_ms or self.end_ms) / 1000,
            )
            for r in self.runs
            if r.decision in _IN_HISTORY
        ]
        max_actions, window_s = self.budget
        return guards.Situation(
            now=now_s,
            history=history,
            automated_action_times=[t for t in self._action_times() if t <= now_s],
            automation=guards.Automation(
                paused=self.paused,
                paused_reason="automation budget exceeded" if self.paused else "",
                budget_max_actions=max_actions,
                budget_window_s=window_s,
            ),
        )

    def _action_times(self) -> list[float]:
        """When the mutating steps of the runs that went ahead would have started (approved
        runs are left out: when a human would have approved is not known)."""
        times = []
        for r in self.runs:
            if r.decision is not Decision.WOULD_RUN:
                continue
            times += [r.at_ms / 1000 for s in r.steps if ACTIONS[s.action].mutating]
            if r.resolved_at_ms is not None:
                times += [
                    r.resolved_at_ms / 1000 for s in r.on_resolved if ACTIONS[s.action].mutating
                ]
        return times


def _needs_live_state(
    rb: Runbook, target: guards.Target, situation: guards.Situation
) -> tuple[str, ...]:
    """The guards whose verdict rests on what the telemetry does not hold. Whether a blast
    radius depends on the fleet is asked of guards.py with two different fleets, so that
    which actions have one stays its business."""

    def radius(fleet: guards.Fleet) -> list[tuple[str, str]]:
        s = replace(situation, fleet=fleet)
        return sorted(
            (d.verdict.value, d.reason)
            for d in guards.evaluate(rb, target, s, automated=True)
            if d.guard == "blast_radius"
        )

    probe = guards.Fleet(
        providers={target.region: frozenset({target.provider, "(probe)"})},
        isolated={target.region: frozenset({"(probe)"})},
        healthy_regions=frozenset({target.region, "(probe)"}),
    )
    unknown = ["blast_radius"] if radius(guards.Fleet()) != radius(probe) else []
    return tuple(unknown + (["require"] if rb.guards.require else []))


def _render(steps: Sequence[Step], ctx: templates.Context) -> tuple[PlannedStep, ...]:
    out = []
    for step in steps:
        try:
            out.append(PlannedStep(id=step.id, action=step.action, params=render_params(step, ctx)))
        except ConfigError as exc:  # a label the alert lacks: the live step would fail
            out.append(
                PlannedStep(
                    id=step.id, action=step.action, params=dict(step.params), error=str(exc)
                )
            )
    return tuple(out)
