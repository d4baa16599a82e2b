"""The remediator: from an alert (or a person) to a guarded, recorded execution.

firing alert -> matching runbooks -> target -> guards -> refused | shadowed | pending approval
| running (handed to the Executor on a worker) ; resolved alert -> on_resolved steps.
Every decision is an audit event; humans are told through `notify`. An alert-triggered
execution stays its alert's one execution until the alert resolves (store.Resolution), also
across a restart; resuming and following up after one is recovery.py's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from controlplane.audit import AuditLog
from controlplane.errors import ControlPlaneError
from controlplane.runbooks import guards, situation, templates
from controlplane.runbooks.act import ActionRunner, Notify
from controlplane.runbooks.crashpoint import CrashHook, no_crash
from controlplane.runbooks.execute import Executor, context, render_params
from controlplane.runbooks.model import Mode, Runbook
from controlplane.runbooks.recovery import Recheck, Recovery
from controlplane.runbooks.store import Execution, ExecutionStore, Resolution, State
from controlplane.runbooks.switches import Switches
from controlplane.runbooks.targets import default_params, target_of

# A refused trigger is tried again this often while its alert still fires: a refusal (the
# wallet still failing, a cooldown) is often over in seconds.
RETRY_REFUSED_S = 5.0


class RemediationError(ControlPlaneError):
    """A request the remediator cannot honour (unknown runbook, bad params, wrong state)."""


@dataclass(frozen=True, kw_only=True)
class AlertEvent:
    labels: Mapping[str, str]
    fingerprint: str
    firing: bool
    active_at: float
    value: float | None = None
    # "rules" for the control plane's own rules, whose absence after a restart means resolved
    # (Recovery.reconcile); anything else (external alerts) ends only with a resolved event
    source: str | None = None


class Remediator:
    def __init__(
        self,
        runbooks: Sequence[Runbook],
        store: ExecutionStore,
        switches: Switches,
        audit: AuditLog,
        runner: ActionRunner,
        *,
        fleet: Callable[[], guards.Fleet] = guards.Fleet,
        notify: Notify | None = None,
        clock: Callable[[], float] = time.time,
        submit: Callable[[Callable[[], Any]], Any] = lambda fn: fn(),
        budget_max_actions: int = 20,
        budget_window_s: float = 600.0,
        retry_refused_s: float = RETRY_REFUSED_S,
        crash: CrashHook = no_crash,  # tests only: crashpoint.py
    ) -> None:
        self.runbooks = {rb.name: rb for rb in runbooks}
        self._store, self._switches, self._audit, self._runner = store, switches, audit, runner
        self._fleet, self._clock, self._submit = fleet, clock, submit
        self._notify: Notify = notify or (lambda _s, _m, _c: None)
        self._budget = (budget_max_actions, budget_window_s)
        self._retry_refused_s = retry_refused_s
        self._crash = crash
        self._executor = Executor(
            store,
            audit,
            runner,
            notify=self._notify,
            clock=clock,
            recheck=Recheck(switches, audit, clock),
            crash=crash,
        )
        self._recovery = Recovery(self.runbooks, store, audit, self._executor, submit=submit)

    def replace_runbooks(self, runbooks: Sequence[Runbook]) -> None:
        """A reload. The dict is shared (recovery reads it) and read by other threads: it is
        changed in place, one atomic operation at a time; executions in flight keep the
        Runbook they started with."""
        fresh = {rb.name: rb for rb in runbooks}
        self.runbooks.update(fresh)
        for name in set(self.runbooks) - set(fresh):
            self.runbooks.pop(name, None)

    @property
    def budget(self) -> tuple[int, float]:
        """(max automated actions, window in seconds) across all runbooks."""
        return self._budget

    # entry points

    def on_alert(self, alert: AlertEvent) -> list[Execution]:
        if not alert.firing:
            self._recovery.alert_resolved(alert.fingerprint)
            return []
        started = []
        for rb in tuple(self.runbooks.values()):  # a snapshot: a reload may swap them
            if rb.mode is Mode.MANUAL or rb.trigger is None or not rb.trigger.matches(alert.labels):
                continue
            if self._already_handled(rb, alert):
                continue
            started.append(
                self._start(
                    rb,
                    labels=alert.labels,
                    value=alert.value,
                    fingerprint=alert.fingerprint,
                    source=alert.source,
                    params=default_params(rb),
                    user="controlplane",
                    automated=True,
                    dry_run=False,
                )
            )
        return started

    def run_manual(
        self,
        name: str,
        *,
        labels: Mapping[str, str],
        params: Mapping[str, Any],
        user: str,
        dry_run: bool = False,
    ) -> Execution:
        rb = self.runbooks.get(name)
        if rb is None:
            raise RemediationError(f"unknown runbook {name!r}")
        merged = {**default_params(rb), **params}
        missing = [p.name for p in rb.params if p.required and p.name not in merged]
        unknown = sorted(set(params) - {p.name for p in rb.params})
        if missing or unknown:
            raise RemediationError(f"runbook {name!r}: missing params {missing}, unknown {unknown}")
        return self._start(
            rb,
            labels=labels,
            value=None,
            fingerprint=None,
            source=None,
            params=merged,
            user=user,
            automated=False,
            dry_run=dry_run,
        )

    def approve(self, execution_id: str, user: str) -> Execution:
        ex, rb = self._pending(execution_id)
        self._crash("approval", str(len(ex.approvals) + 1), "before")
        accepted, count = self._store.add_approval(ex.id, user, rb.approvers)
        if not accepted and count < rb.approvers:
            raise RemediationError(
                f"{user!r} cannot approve {execution_id!r} (already approved by "
                "them, or no longer pending)"
            )
        if accepted:  # else a repeat of a call that failed after its approval was recorded
            self._audit.append(
                "approved", {"count": count, "needed": rb.approvers}, actor=user, execution_id=ex.id
            )
            self._crash("approval", str(count), "after")
            self._notify(
                "info",
                f"runbook {rb.name} on {ex.target_key}: approved by {user}"
                f" ({count}/{rb.approvers})",
                {"execution_id": ex.id, "approved_by": user},
            )
        if count >= rb.approvers:
            self._launch_approved(rb, ex)
        return self._store.get(ex.id) or ex

    def reject(self, execution_id: str, user: str, reason: str = "") -> Execution:
        ex, _rb = self._pending(execution_id)
        if not self._store.transition(
            ex.id, [State.PENDING_APPROVAL], State.REJECTED, reason=f"rejected by {user}: {reason}"
        ):
            raise RemediationError(f"execution {execution_id!r} is no longer pending")
        self._audit.append("rejected", {"reason": reason}, actor=user, execution_id=ex.id)
        self._notify(
            "info",
            f"runbook {ex.runbook} on {ex.target_key}: rejected by {user} {reason}".strip(),
            {"execution_id": ex.id, "rejected_by": user},
        )
        return self._store.get(ex.id) or ex

    def tick(self) -> None:
        """Expire approvals that waited too long."""
        now = self._clock()
        for ex in self._store.find(states=[State.PENDING_APPROVAL]):
            if (
                ex.deadline is not None
                and now >= ex.deadline
                and self._store.transition(
                    ex.id, [State.PENDING_APPROVAL], State.EXPIRED, reason="approval expired"
                )
            ):
                self._audit.append("expired", {"deadline": ex.deadline}, execution_id=ex.id)
                self._notify(
                    "warning",
                    f"approval for {ex.runbook} on {ex.target_key} expired",
                    {"execution_id": ex.id},
                )

    def resume(self) -> list[str]:
        """After a restart: carry on every execution and follow-up that was under way, and
        launch what had all its approvals when the process died before launching it."""
        resumed = self._recovery.resume()
        now = self._clock()
        for ex in self._store.find(states=[State.PENDING_APPROVAL], limit=10_000):
            rb = self.runbooks.get(ex.runbook)
            if rb is None or len(ex.approvals) < rb.approvers:
                continue  # still waiting for people
            if ex.deadline is not None and now >= ex.deadline:
                continue  # a stale decision: tick() expires it and tells people
            self._audit.append("resumed", {"state": ex.state.value}, execution_id=ex.id)
            self._submit(partial(self._launch_resumed, rb, ex))  # its guards may query
            resumed.append(ex.id)
        return resumed

    def reconcile(self, firing: Collection[str], alertnames: Collection[str]) -> list[str]:
        """End the episodes of rule alerts no longer firing or pending (see Recovery)."""
        return self._recovery.reconcile(firing, alertnames)

    # internals

    def _start(
        self,
        rb: Runbook,
        *,
        labels: Mapping[str, str],
        value: float | None,
        fingerprint: str | None,
        source: str | None,
        params: Mapping[str, Any],
        user: str,
        automated: bool,
        dry_run: bool,
    ) -> Execution:
        ctx = templates.Context(labels=labels, value=value, params=params)
        target = target_of(rb, ctx, labels)
        decisions = guards.evaluate(
            rb,
            target,
            self._situation(),
            automated=automated,
            holds=lambda e: self._runner.holds(templates.render(e, ctx)),
        )
        common: dict[str, Any] = dict(
            runbook=rb.name,
            mode=rb.mode.value,
            target_key=target.key,
            trigger="alert" if automated else "manual",
            labels=labels,
            value=value,
            params=params,
            alert_fingerprint=fingerprint,
            alert_source=source,
            requested_by=user,
            dry_run=dry_run,
        )
        ex = self._create(rb, ctx, decisions, common, dry_run=dry_run)
        self._record_start(rb, ex, decisions, user)
        if ex.state is State.RUNNING:
            self._submit(lambda: self._executor.execute(rb, ex.id))
        return ex

    def _create(
        self,
        rb: Runbook,
        ctx: templates.Context,
        decisions: list[guards.GuardDecision],
        common: Mapping[str, Any],
        *,
        dry_run: bool,
    ) -> Execution:
        """The execution, in the state the guards and the mode give it. An alert's execution
        holds the alert's episode until it resolves; a refusal does not: it is retried."""
        refusals = [d for d in decisions if d.verdict is guards.Verdict.REFUSE]
        if refusals:
            why = "; ".join(f"{d.guard}: {d.reason}" for d in refusals)
            return self._store.create(state=State.REFUSED, reason=why, **common)
        episode = Resolution.AWAITING if common["alert_fingerprint"] else None
        if dry_run or rb.mode is Mode.SHADOW:
            plan = [f"{s.action} {render_params(s, ctx)}" for s in rb.steps]
            return self._store.create(
                state=State.SHADOWED,
                reason="would have done: " + "; ".join(plan),
                resolution=episode,
                **common,
            )
        if rb.mode is Mode.APPROVAL:
            return self._store.create(
                state=State.PENDING_APPROVAL,
                deadline=self._clock() + rb.approval_timeout_s,
                resolution=episode,
                **common,
            )
        return self._store.create(state=State.RUNNING, resolution=episode, **common)

    def _record_start(
        self, rb: Runbook, ex: Execution, decisions: list[guards.GuardDecision], user: str
    ) -> None:
        self._audit.append(
            "triggered",
            {
                "runbook": rb.name,
                "target": ex.target_key,
                "labels": dict(ex.labels),
                "trigger": ex.trigger,
            },
            actor=user,
            execution_id=ex.id,
        )
        for d in decisions:
            self._audit.append(
                "guard",
                {"guard": d.guard, "verdict": d.verdict.value, "reason": d.reason},
                execution_id=ex.id,
            )
        if any(d.guard == "budget" and d.verdict is guards.Verdict.REFUSE for d in decisions):
            self._switches.set_automation(
                paused=True, reason="automation budget exceeded", by="controlplane"
            )
            self._audit.append(
                "automation_paused", {"reason": "budget exceeded"}, execution_id=ex.id
            )
            self._notify("critical", "automation paused: action budget exceeded", {})
        self._audit.append(ex.state.value, {"reason": ex.reason}, execution_id=ex.id)
        # every start is told, a running one too: its alert's Slack thread follows it from here
        self._notify(
            "info" if ex.state in (State.SHADOWED, State.RUNNING) else "warning",
            f"runbook {rb.name} on {ex.target_key}: {ex.state.value} {ex.reason}".strip(),
            {"execution_id": ex.id, "state": ex.state.value},
        )

    def _situation(self, exclude: str | None = None) -> guards.Situation:
        return situation.build(
            tuple(self.runbooks.values()),
            self._store,
            self._switches,
            self._fleet,
            now=self._clock(),
            budget=self._budget,
            exclude=exclude,
        )

    def _already_handled(self, rb: Runbook, alert: AlertEvent) -> bool:
        """One execution per runbook per firing episode of an alert: one since the alert's
        activeAt, or one still awaiting its resolution (a restarted rule manager starts the
        alert afresh, with a new activeAt: the episode is the same). A refused one is retried
        after `retry_refused_s`: a refusal (wallet still failing, a cooldown) is often
        temporary."""
        if self._store.find(
            runbook=rb.name,
            fingerprint=alert.fingerprint,
            resolutions=[Resolution.AWAITING],
            limit=1,
        ):
            return True
        now = self._clock()
        return any(
            e.state is not State.REFUSED or now - e.created_at < self._retry_refused_s
            for e in self._store.find(
                runbook=rb.name, fingerprint=alert.fingerprint, since=alert.active_at
            )
        )

    def _pending(self, execution_id: str) -> tuple[Execution, Runbook]:
        ex = self._store.get(execution_id)
        if ex is None:
            raise RemediationError(f"unknown execution {execution_id!r}")
        rb = self.runbooks.get(ex.runbook)
        if ex.state is not State.PENDING_APPROVAL or rb is None:
            raise RemediationError(
                f"execution {execution_id!r} is {ex.state.value}, not pending approval"
            )
        return ex, rb

    def _launch_resumed(self, rb: Runbook, ex: Execution) -> None:
        with contextlib.suppress(RemediationError):  # expired meanwhile: tick() told people
            self._launch_approved(rb, ex)

    def _launch_approved(self, rb: Runbook, ex: Execution) -> None:
        if ex.deadline is not None and self._clock() >= ex.deadline:
            self.tick()
            raise RemediationError(f"approval for {ex.id!r} expired")
        target = target_of(rb, context(ex), ex.labels)
        decisions = guards.evaluate(
            rb,
            target,
            self._situation(exclude=ex.id),
            automated=False,
            holds=lambda e: self._runner.holds(templates.render(e, context(ex))),
        )
        if not guards.allowed(decisions):
            why = "; ".join(
                f"{d.guard}: {d.reason}" for d in decisions if d.verdict is guards.Verdict.REFUSE
            )
            # a refusal, retried later in the episode as any other: it holds no episode
            if self._store.transition(
                ex.id, [State.PENDING_APPROVAL], State.REFUSED, reason=why, resolution=None
            ):
                self._audit.append(
                    "refused", {"reason": why, "after": "approval"}, execution_id=ex.id
                )
            return
        self._crash("state", State.RUNNING.value, "before")
        if self._store.transition(ex.id, [State.PENDING_APPROVAL], State.RUNNING):
            self._audit.append("running", {"approved": True}, execution_id=ex.id)
            self._crash("state", State.RUNNING.value, "after")
            self._submit(lambda: self._executor.execute(rb, ex.id))
