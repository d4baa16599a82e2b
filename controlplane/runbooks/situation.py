"""The guards' snapshot of the world, read from the database, the clock and the fleet: shared
by a new execution's guards (engine.py) and a resumed one's re-check (recovery.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from controlplane.runbooks import guards
from controlplane.runbooks.actions import ACTIONS
from controlplane.runbooks.model import Runbook
from controlplane.runbooks.store import ACTIVE, ExecutionStore, State
from controlplane.runbooks.switches import Switches

MUTATING = tuple(name for name, spec in ACTIONS.items() if spec.mutating)


def maintenance(switches: Switches, now: float) -> list[guards.MaintenanceWindow]:
    return [
        guards.MaintenanceWindow(
            id=w["id"],
            matchers=w["matchers"],
            starts_at=w["starts_at"],
            ends_at=w["ends_at"],
            reason=w["reason"],
        )
        for w in switches.maintenance_windows(active_at=now)
    ]


def automation(switches: Switches, budget: tuple[int, float]) -> guards.Automation:
    paused, reason, _by, _at = switches.automation()
    max_actions, window_s = budget
    return guards.Automation(
        paused=paused,
        paused_reason=reason,
        budget_max_actions=max_actions,
        budget_window_s=window_s,
    )


def build(
    runbooks: Iterable[Runbook],
    store: ExecutionStore,
    switches: Switches,
    fleet: Callable[[], guards.Fleet],
    *,
    now: float,
    budget: tuple[int, float],
    exclude: str | None = None,
) -> guards.Situation:
    """Everything the guards read; `exclude` leaves out the execution being decided itself."""
    runbooks = list(runbooks)
    horizon = max(
        [
            3600.0,
            *(rb.guards.cooldown_s for rb in runbooks),
            *(rb.guards.throttle.window_s for rb in runbooks if rb.guards.throttle),
        ]
    )
    history = [
        guards.PastRun(
            runbook=e.runbook,
            target_key=e.target_key,
            started_at=e.created_at,
            active=e.state in ACTIVE,
        )
        for e in store.find(since=now - horizon, limit=10_000)
        if e.state not in (State.REFUSED, State.SHADOWED) and e.id != exclude
    ]
    return guards.Situation(
        now=now,
        history=history,
        fleet=fleet(),
        maintenance=maintenance(switches, now),
        automated_action_times=store.mutating_step_times(now - budget[1], MUTATING),
        automation=automation(switches, budget),
    )
