"""What a run of a runbook acts on, and its parameters' defaults: shared by the live engine and
the backtest planner, so both derive the same target (and the same guard history)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controlplane.runbooks import guards, templates
from controlplane.runbooks.actions import ACTIONS, TargetKind
from controlplane.runbooks.execute import render_params
from controlplane.runbooks.model import Runbook


def default_params(rb: Runbook) -> dict[str, Any]:
    return {p.name: p.default for p in rb.params if p.default is not None}


def target_of(rb: Runbook, ctx: templates.Context, labels: Mapping[str, str]) -> guards.Target:
    """What the runbook acts on: the first mutating step's region/provider, else the labels."""
    for step in rb.steps:
        spec = ACTIONS[step.action]
        if spec.mutating:
            p = render_params(step, ctx)
            return guards.Target(
                kind=spec.target,
                region=str(p.get("region", "")),
                provider=str(p.get("provider", "")),
            )
    return guards.Target(
        kind=TargetKind.NONE, region=labels.get("region", ""), provider=labels.get("provider", "")
    )
