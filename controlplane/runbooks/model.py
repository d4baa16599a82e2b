"""Runbooks as typed values, parsed once from YAML (see load.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Mode(StrEnum):
    AUTO = "auto"  # runs when triggered, if the guards pass
    APPROVAL = "approval"  # waits for a human (API or Slack) before the first step
    SHADOW = "shadow"  # planned, guarded and recorded as "would have done"; nothing is called
    MANUAL = "manual"  # never triggered by alerts; run by hand only


@dataclass(frozen=True, kw_only=True)
class Step:
    id: str
    action: str
    params: Mapping[str, object]  # values may hold templates, rendered at run time


@dataclass(frozen=True, kw_only=True)
class Trigger:
    alert: str
    matchers: Mapping[str, str] = field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if labels.get("alertname") != self.alert:
            return False
        return all(labels.get(k, "") == v for k, v in self.matchers.items())


@dataclass(frozen=True, kw_only=True)
class Throttle:
    max_runs: int
    window_s: float


@dataclass(frozen=True, kw_only=True)
class BlastRadius:
    """Business limits, checked against the aggregator's live state before acting."""

    max_isolated_providers: int | None = None  # per region, counting the one about to go
    max_isolated_fraction: float | None = None  # of the region's providers
    min_healthy_regions: int | None = None  # undrained and up, after the action


@dataclass(frozen=True, kw_only=True)
class Precondition:
    """A PromQL condition that must hold (return a non-empty result) for the runbook to act."""

    expr: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Guards:
    cooldown_s: float = 0.0  # per target
    max_concurrent: int = 1
    throttle: Throttle | None = None
    blast_radius: BlastRadius | None = None
    require: tuple[Precondition, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Verify:
    expr: str
    within_s: float


@dataclass(frozen=True, kw_only=True)
class Param:
    name: str
    type: str  # string | int | duration
    default: object = None
    required: bool = False


@dataclass(frozen=True, kw_only=True)
class Runbook:
    name: str
    description: str
    path: str
    mode: Mode
    trigger: Trigger | None
    guards: Guards
    steps: tuple[Step, ...]
    verify: Verify | None = None
    rollback: tuple[Step, ...] = ()
    on_resolved: tuple[Step, ...] = ()
    params: tuple[Param, ...] = ()
    approvers: int = 1  # distinct humans who must approve (approval mode)
    approval_timeout_s: float = 900.0
