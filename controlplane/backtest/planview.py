"""The runbook plan of a backtest as text lines and as JSON (see backtestplan.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from controlplane.backtest.plan import NOT_EVALUATED, Decision, PlannedRun, PlannedStep
from controlplane.backtest.replay import BacktestReport
from controlplane.model.times import format_duration, iso
from controlplane.runbooks.model import Runbook


def offset(start_ms: int, t_ms: int) -> str:
    delta = t_ms - start_ms
    return ("-" if delta < 0 else "+") + format_duration(abs(delta) / 1000)


def steps_text(steps: Sequence[PlannedStep]) -> str:
    """`action(param=value, ...)` joined by ` -> `; strings quoted, so commas stay readable."""

    def one(step: PlannedStep) -> str:
        params = ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v}"
            for k, v in step.params.items()
        )
        return f"{step.action}({params})" + (
            f" [cannot render: {step.error}]" if step.error else ""
        )

    return " -> ".join(one(s) for s in steps)


def decision_text(run: PlannedRun, start_ms: int) -> str:
    why = "; ".join(f"{d.guard}: {d.reason}" for d in run.refusals)
    if run.decision is Decision.REFUSED:
        text = f"refused by {why}"
        if run.attempts > 1:
            text += f" (tried {run.attempts} times while it fired)"
    else:
        text = run.decision.value
        if run.attempts > 1:
            fired = offset(start_ms, run.fired_at_ms)
            text += f" after {run.attempts - 1} refused (fired {fired}: {why})"
    if run.not_evaluated:
        text += f" [{', '.join(run.not_evaluated)} {NOT_EVALUATED}]"
    return text


def plan_lines(
    runs: Sequence[PlannedRun],
    runbooks: Sequence[Runbook],
    report: BacktestReport,
    *,
    directory: str,
    budget: tuple[int, float],
) -> list[str]:
    """The "Runbooks" section; none when no runbook's trigger names an alert of these rules."""
    alerts = {h.rule.name for h in report.rules}
    if not runs and not any(rb.trigger and rb.trigger.alert in alerts for rb in runbooks):
        return []
    max_actions, window_s = budget
    lines = [
        "",
        f"Runbooks: what would have acted ({directory}; automation budget {max_actions}"
        f" actions per {format_duration(window_s)}; kill switch and maintenance windows"
        f" {NOT_EVALUATED})",
    ]
    if not runs:
        lines.append("  nothing: no alert fired that a runbook's trigger matches")
    for run in runs:
        line = (
            f"  {offset(report.start_ms, run.at_ms)}  {run.runbook}  {run.target or '-'}  "
            f"{decision_text(run, report.start_ms)}  {steps_text(run.steps)}"
        )
        if run.on_resolved and run.resolved_at_ms is not None:
            line += (
                f"; on resolved {offset(report.start_ms, run.resolved_at_ms)}:"
                f" {steps_text(run.on_resolved)}"
            )
        lines.append(line)
    return lines


def plan_json(runs: Sequence[PlannedRun], start_ms: int) -> list[dict[str, Any]]:
    def at(t_ms: int | None) -> dict[str, Any]:
        return {
            "at": None if t_ms is None else iso(t_ms),
            "offset_s": None if t_ms is None else (t_ms - start_ms) / 1000,
        }

    def steps(planned: Sequence[PlannedStep]) -> list[dict[str, Any]]:
        return [
            {"id": s.id, "action": s.action, "params": dict(s.params), "error": s.error or None}
            for s in planned
        ]

    return [
        {
            "runbook": r.runbook,
            "mode": r.mode.value,
            "alert": r.alert,
            "labels": dict(r.labels),
            "target": r.target,
            "fired": at(r.fired_at_ms),
            "decided": at(r.at_ms),
            "resolved": at(r.resolved_at_ms),
            "decision": r.decision.value,
            "refusals": [{"guard": d.guard, "reason": d.reason} for d in r.refusals],
            "attempts": r.attempts,
            "not_evaluated": [{"guard": g, "reason": NOT_EVALUATED} for g in r.not_evaluated],
            "steps": steps(r.steps),
            "on_resolved": steps(r.on_resolved),
        }
        for r in runs
    ]
