"""What executions still owe after a restart, and when their alert resolves.

    resume()          at start: executions left running, verifying or rolling back carry on;
                      on_resolved runs that were due or in flight carry on
    alert_resolved()  a resolved event: every execution awaiting that alert moves on
    reconcile()       an alert of our own rules that neither fires nor is pending any more,
                      once the rule manager has evaluated since the start: its resolved event
                      will never come (it resolved while the control plane was down, or while
                      pending again after the restart), so its episode ends here
    Recheck           the kill switch and maintenance windows, before each mutating step of a
                      resumed execution
    settled_alerts()  which rules' alerts reconcile() may judge yet, after a start

The episode's state is in the database (store.Resolution), so none of this depends on the
memory of the process that started the execution.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from typing import Any

from controlplane.audit import AuditLog
from controlplane.rules.group import GroupStatus
from controlplane.rules.model import AlertingRule
from controlplane.runbooks import guards, situation
from controlplane.runbooks.execute import IN_FLIGHT, Executor, context
from controlplane.runbooks.model import Runbook
from controlplane.runbooks.store import FINAL, Execution, ExecutionStore, Resolution, State
from controlplane.runbooks.switches import Switches
from controlplane.runbooks.targets import target_of

RULES = "rules"  # AlertEvent.source of the control plane's own rules: the only ones reconciled
MANY = 10_000


class Recheck:
    """Why a resumed execution must stop before its next mutating step, or None. Each
    decision is audited, as every guard decision is."""

    def __init__(self, switches: Switches, audit: AuditLog, clock: Callable[[], float]) -> None:
        self._switches, self._audit, self._clock = switches, audit, clock

    def __call__(self, runbook: Runbook, ex: Execution) -> str | None:
        now = self._clock()
        snapshot = guards.Situation(
            now=now,
            maintenance=situation.maintenance(self._switches, now),
            automation=situation.automation(self._switches, (0, 0.0)),
        )
        target = target_of(runbook, context(ex), ex.labels)
        decisions = guards.recheck(target, snapshot, automated=ex.trigger == "alert")
        for d in decisions:
            self._audit.append(
                "guard",
                {"guard": d.guard, "verdict": d.verdict.value, "reason": d.reason, "on": "resume"},
                execution_id=ex.id,
            )
        refused = [f"{d.guard}: {d.reason}" for d in decisions if not guards.allowed([d])]
        return "; ".join(refused) or None


class Recovery:
    def __init__(
        self,
        runbooks: Mapping[str, Runbook],
        store: ExecutionStore,
        audit: AuditLog,
        executor: Executor,
        *,
        submit: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self._runbooks, self._store, self._audit = runbooks, store, audit
        self._executor, self._submit = executor, submit

    def resume(self) -> list[str]:
        """After a restart: every execution, and every follow-up, that was under way. The
        follow-ups owed are read before any execution resumes: one resumed here follows up
        itself when it ends, and must not be adopted twice."""
        in_flight = self._store.find(states=IN_FLIGHT, limit=MANY)
        owed = self._store.find(
            states=FINAL, resolutions=[Resolution.RESOLVED, Resolution.ON_RESOLVED], limit=MANY
        )
        resumed = []
        for ex in in_flight:
            rb = self._runbooks.get(ex.runbook)
            if rb is None:
                self._store.transition(
                    ex.id, [ex.state], State.FAILED, reason="runbook no longer loaded after restart"
                )
                self._audit.append(
                    "failed", {"reason": "runbook gone on restart"}, execution_id=ex.id
                )
                continue
            self._audit.append("resumed", {"state": ex.state.value}, execution_id=ex.id)
            self._submit(partial(self._executor.execute, rb, ex.id, resumed=True))
            resumed.append(ex.id)
        for ex in owed:
            assert ex.resolution is not None
            self._audit.append(
                "resumed",
                {"state": ex.state.value, "resolution": ex.resolution.value},
                execution_id=ex.id,
            )
            self._follow(ex.id, adopt=True)
            resumed.append(ex.id)
        return resumed

    def alert_resolved(self, fingerprint: str) -> list[str]:
        """The alert resolved: each execution awaiting it follows up (now, or when it ends)."""
        awaiting = self._store.find(
            fingerprint=fingerprint, resolutions=[Resolution.AWAITING], limit=MANY
        )
        return [ex.id for ex in awaiting if self._resolve(ex, "alert resolved")]

    def reconcile(self, firing: Collection[str], alertnames: Collection[str]) -> list[str]:
        """Executions awaiting an alert of the rules named `alertnames` whose fingerprint is
        not in `firing` (the fingerprints of every firing or pending alert). Call it only once
        every group of those rules has evaluated since the start: before, an alert still
        firing may just not have been seen again yet."""
        resolved = []
        for ex in self._store.find(resolutions=[Resolution.AWAITING], limit=MANY):
            if (
                ex.alert_source == RULES
                and ex.labels.get("alertname") in alertnames
                and ex.alert_fingerprint not in firing
                and self._resolve(ex, "alert neither firing nor pending")
            ):
                resolved.append(ex.id)
        return resolved

    def _resolve(self, ex: Execution, why: str) -> bool:
        if not self._executor.mark_resolved(ex, why):
            return False  # seen by another path already
        self._follow(ex.id)
        return True

    def _follow(self, execution_id: str, *, adopt: bool = False) -> None:
        """Run the follow-up of a final execution; an active one follows up when it ends. The
        state is read after the resolution was written, and the executor reads the resolution
        after writing the final state, so one of the two always sees both."""
        ex = self._store.get(execution_id)
        if ex is None or ex.state not in FINAL:
            return
        rb = self._runbooks.get(ex.runbook)
        if rb is None:
            owed = [Resolution.RESOLVED, Resolution.ON_RESOLVED]
            if self._store.resolve(ex.id, owed, Resolution.FAILED):
                self._audit.append(
                    "on_resolved",
                    {"ok": False, "resolution": "failed", "reason": "runbook no longer loaded"},
                    execution_id=ex.id,
                )
            return
        # adopted after a restart: resumed, so the guards are met again before acting
        follow = partial(self._executor.follow_up, rb, ex.id, resumed=adopt, adopt=adopt)
        self._submit(follow)


def settled_alerts(
    groups: Sequence[GroupStatus], started_ms: int, first_seen: dict[str, int]
) -> set[str]:
    """The alert names of the groups seen evaluated twice since `started_ms` (as the rule
    manager restores `for` state at the second evaluation): an alert of theirs still firing
    is firing or pending again by then, even if the first evaluation lacked fresh samples.
    `first_seen` (group key -> first evaluation seen) is kept by the caller across calls."""
    settled: set[str] = set()
    for g in groups:
        last = g.last_evaluation_ms or 0
        if last > started_ms:
            first = first_seen.setdefault(g.group.key, last)
            if last > first:
                settled.update(r.name for r in g.group.rules if isinstance(r, AlertingRule))
    return settled
