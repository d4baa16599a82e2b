"""Where each SLO stands now: availability and error budget over its window, burn rates, the
error ratio per window, and its burn-rate alerts, read from the series the generated rules
record (one instant query per SLO) and from the rule manager's alerts.

    status = slo_status(slo, querier, alerts, time_ms=now_ms)

One entry per SLI instance (each value of the SLO's `by` labels). An instance with no recorded
series yet (no traffic, or the rules have not run) is simply absent: nothing is invented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import promql_parser

from controlplane.promql.results import Querier, ResultType
from controlplane.rules.alerting import Alert
from controlplane.slo.generate import GUARD_WINDOW, SLI_WINDOWS
from controlplane.slo.spec import SLO

_ERROR_RATIO = "slo:sli_error:ratio_rate"
# recorded series -> InstanceStatus field
_PER_INSTANCE = {
    f"slo:sli_total:rate{GUARD_WINDOW}": "events_per_second",
    "slo:current_burn_rate:ratio": "burn_rate_current",
    "slo:period_burn_rate:ratio": "burn_rate_period",
    "slo:period_error_budget_remaining:ratio": "budget_remaining",
}


@dataclass(frozen=True, kw_only=True)
class AlertState:
    severity: str
    state: str  # pending | firing
    active_at_ms: int


@dataclass(frozen=True, kw_only=True)
class InstanceStatus:
    labels: Mapping[str, str]  # the SLO's `by` labels
    error_ratio: Mapping[str, float] = field(default_factory=dict)  # window -> ratio
    events_per_second: float | None = None  # over the minimum-traffic guard window
    burn_rate_current: float | None = None  # 5m error ratio / budget
    burn_rate_period: float | None = None
    budget_remaining: float | None = None  # share of the period's budget left; < 0: spent
    alerts: tuple[AlertState, ...] = ()

    def as_json(self, slo: SLO) -> dict[str, Any]:
        period = self.error_ratio.get(promql_parser.display_duration(slo.window))
        return {
            "labels": dict(self.labels),
            "availability_percent": _num(None if period is None else 100 * (1 - period)),
            "error_budget_remaining": _num(self.budget_remaining),
            "burn_rate": {
                "current": _num(self.burn_rate_current),
                "period": _num(self.burn_rate_period),
            },
            "error_ratio": {
                w: _num(self.error_ratio[w]) for w in sorted(self.error_ratio, key=window_order)
            },
            "events_per_second": _num(self.events_per_second),
            "alerts": [
                {"severity": a.severity, "state": a.state, "active_at_ms": a.active_at_ms}
                for a in self.alerts
            ],
        }


@dataclass(frozen=True, kw_only=True)
class SLOStatus:
    slo: SLO
    instances: tuple[InstanceStatus, ...]

    def as_json(self) -> dict[str, Any]:
        slo = self.slo
        return {
            "id": slo.id,
            "service": slo.service,
            "name": slo.name,
            "description": slo.description,
            "objective_percent": slo.objective,
            "window": promql_parser.display_duration(slo.window),
            "error_budget": slo.error_budget,
            "by": list(slo.by),
            "labels": dict(slo.labels),
            "alert": slo.alerting.name,
            "instances": [i.as_json(slo) for i in self.instances],
        }


def slo_status(slo: SLO, querier: Querier, alerts: Sequence[Alert], *, time_ms: int) -> SLOStatus:
    """Raises what the querier raises (a bad remote, a timeout): the caller answers for it."""
    result = querier.instant(f'{{__name__=~"slo:.+", slo_id="{slo.id}"}}', time_ms)
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    if result.type is ResultType.VECTOR:
        for sample in result.vector:
            labels = dict(sample.labels)
            name = labels.get("__name__", "")
            if name not in _PER_INSTANCE and not name.startswith(_ERROR_RATIO):
                continue  # the SLO's own metadata (objective, budget, period): no instance
            key = tuple(labels.get(label, "") for label in slo.by)
            _absorb(found.setdefault(key, {"error_ratio": {}}), name, sample.value)
    mine = [a for a in alerts if dict(a.labels).get("slo_id") == slo.id]
    instances = [
        InstanceStatus(
            labels=dict(zip(slo.by, key, strict=True)),
            alerts=_alerts_of(slo, key, mine),
            **values,
        )
        for key, values in sorted(found.items())
    ]
    return SLOStatus(slo=slo, instances=tuple(instances))


def _absorb(values: dict[str, Any], name: str, value: float) -> None:
    if name.startswith(_ERROR_RATIO):
        window = name.removeprefix(_ERROR_RATIO)
        values["error_ratio"] = {**values["error_ratio"], window: value}
    else:
        values[_PER_INSTANCE[name]] = value


def _alerts_of(slo: SLO, key: tuple[str, ...], alerts: Sequence[Alert]) -> tuple[AlertState, ...]:
    states = []
    for alert in alerts:
        labels = dict(alert.labels)
        if tuple(labels.get(name, "") for name in slo.by) == key:
            states.append(
                AlertState(
                    severity=labels.get("severity", ""),
                    state=alert.state.value,
                    active_at_ms=alert.active_at_ms,
                )
            )
    return tuple(sorted(states, key=lambda a: (a.severity, a.active_at_ms)))


def window_order(window: str) -> float:
    """Sort key for error-ratio windows: the generated ones first, in their order."""
    return SLI_WINDOWS.index(window) if window in SLI_WINDOWS else math.inf


def _num(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return value if value is not None and math.isfinite(value) else None
