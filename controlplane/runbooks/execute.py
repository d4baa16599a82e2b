"""Running one execution: steps, verification, rollback, on_resolved. Resumable at any point.

    running -> verifying -> succeeded ; running | verifying -> rolling_back -> rolled_back
    alert episode (Resolution): awaiting -> resolved -> on_resolved -> done | failed

A step is recorded before it acts (ExecutionStore.begin_step); on resume, done steps are
skipped and the step that was in flight is re-sent with the same Idempotency-Key, so the
aggregator answers from its memory of the first call rather than acting twice. Every state,
rolling back and on_resolved included, is in the database, so a restart resumes each of them.
A resumed execution meets the kill switch and maintenance windows again before each mutating
step (`recheck`): what a person set while the control plane was down stops it (`aborted`).
The crash hook (crashpoint.py) is called at every boundary, so tests can die exactly there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from controlplane.audit import AuditLog
from controlplane.errors import ConfigError, ControlPlaneError
from controlplane.runbooks import templates
from controlplane.runbooks.act import ActionResult, ActionRunner, Notify, ShutdownRequested
from controlplane.runbooks.actions import ACTIONS
from controlplane.runbooks.crashpoint import CrashHook, no_crash
from controlplane.runbooks.model import Runbook, Step
from controlplane.runbooks.store import (
    FINAL,
    Execution,
    ExecutionStore,
    Resolution,
    State,
    StepRecord,
)

# an execution in one of these has an executor working on it, or needs one after a restart
IN_FLIGHT = (State.RUNNING, State.VERIFYING, State.ROLLING_BACK)

# why a resumed execution must stop before its next mutating step, or None to go on
Recheck = Callable[[Runbook, Execution], str | None]


class Aborted(ControlPlaneError):
    """A resumed execution met a kill switch or a maintenance window: it stops, not acting."""


def context(ex: Execution) -> templates.Context:
    return templates.Context(labels=ex.labels, value=ex.value, params=ex.params)


def render_params(step: Step, ctx: templates.Context) -> dict[str, Any]:
    return {
        k: templates.render(v, ctx) if isinstance(v, str) else v for k, v in step.params.items()
    }


class Executor:
    def __init__(
        self,
        store: ExecutionStore,
        audit: AuditLog,
        runner: ActionRunner,
        *,
        notify: Notify,
        clock: Callable[[], float],
        recheck: Recheck | None = None,
        crash: CrashHook = no_crash,
    ) -> None:
        self._store, self._audit, self._runner = store, audit, runner
        self._notify, self._clock = notify, clock
        self._recheck, self._crash = recheck, crash

    def execute(self, runbook: Runbook, execution_id: str, *, resumed: bool = False) -> State:
        """Carry the execution from wherever it is to a final state, then follow up on its
        alert if that resolved meanwhile. `resumed`: after a restart (guards re-checked)."""
        ex = self._store.get(execution_id)
        if ex is None or ex.state not in IN_FLIGHT:
            return ex.state if ex else State.FAILED
        check = self._checker(runbook, ex, resumed)
        try:
            state = self._advance(runbook, ex, check)
        except Aborted as exc:
            state = self._finish(ex, IN_FLIGHT, State.ABORTED, f"aborted on resume: {exc}")
        self.follow_up(runbook, ex.id, resumed=resumed)
        return state

    def mark_resolved(self, ex: Execution, why: str) -> bool:
        """The execution's alert resolved: its episode moves on (once, whoever saw it)."""
        self._crash("resolution", Resolution.RESOLVED.value, "before")
        if not self._store.resolve(ex.id, [Resolution.AWAITING], Resolution.RESOLVED):
            return False
        self._audit.append("alert_resolved", {"reason": why}, execution_id=ex.id)
        self._crash("resolution", Resolution.RESOLVED.value, "after")
        return True

    def follow_up(
        self, runbook: Runbook, execution_id: str, *, resumed: bool = False, adopt: bool = False
    ) -> Resolution | None:
        """Once both the execution is final and its alert resolved: claim and run on_resolved
        (a succeeded execution) or close the episode (anything else). The claim is a
        compare-and-set, so the run happens once, by its claimant. `adopt`: also carry on a
        run claimed before a crash; only the restart's resume may, as its claimant died."""
        ex = self._store.get(execution_id)
        if ex is None or ex.state not in FINAL:
            return None if ex is None else ex.resolution  # its end will follow up
        if adopt and ex.resolution is Resolution.ON_RESOLVED:
            return self._run_on_resolved(runbook, ex, resumed)
        if ex.resolution is not Resolution.RESOLVED:
            return ex.resolution  # nothing due, or claimed by another follow-up
        if ex.state is not State.SUCCEEDED or not runbook.on_resolved:
            self._crash("resolution", Resolution.DONE.value, "before")
            self._store.resolve(ex.id, [Resolution.RESOLVED], Resolution.DONE)
            return Resolution.DONE
        self._crash("resolution", Resolution.ON_RESOLVED.value, "before")
        if not self._store.resolve(
            ex.id, [Resolution.RESOLVED], Resolution.ON_RESOLVED, resolved_done=True
        ):
            return None  # claimed by another follow-up
        self._crash("resolution", Resolution.ON_RESOLVED.value, "after")
        return self._run_on_resolved(runbook, ex, resumed)

    def _run_on_resolved(self, runbook: Runbook, ex: Execution, resumed: bool) -> Resolution:
        failed, why = None, ""
        try:
            failed = self._run_phase(
                ex,
                "on_resolved",
                runbook.on_resolved,
                context(ex),
                self._checker(runbook, ex, resumed),
            )
            to = Resolution.DONE if failed is None else Resolution.FAILED
        except Aborted as exc:
            to, why = Resolution.ABORTED, f"aborted on resume: {exc}"
        self._crash("resolution", to.value, "before")
        if not self._store.resolve(ex.id, [Resolution.ON_RESOLVED], to):
            current = self._store.get(ex.id)
            return (current.resolution if current else None) or to
        self._audit.append(
            "on_resolved",
            {"ok": failed is None and not why, "failed_step": failed, "resolution": to.value}
            | ({"reason": why} if why else {}),
            execution_id=ex.id,
        )
        if to is not Resolution.DONE:
            self._notify(
                "warning",
                f"runbook {ex.runbook} on {ex.target_key}: on_resolved {to.value} {why}".strip(),
                {"execution_id": ex.id, "resolution": to.value},
            )
        self._crash("resolution", to.value, "after")
        return to

    def _advance(self, runbook: Runbook, ex: Execution, check: Callable[[], None]) -> State:
        ctx = context(ex)
        if ex.state is State.RUNNING:
            failed = self._run_phase(ex, "steps", runbook.steps, ctx, check)
            if failed is not None:
                return self._undo(runbook, ex, ctx, f"step {failed!r} failed", check)
            if runbook.verify is None:
                return self._finish(ex, [State.RUNNING], State.SUCCEEDED, "all steps done")
            deadline = self._clock() + runbook.verify.within_s
            self._crash("state", State.VERIFYING.value, "before")
            if not self._store.transition(
                ex.id, [State.RUNNING], State.VERIFYING, deadline=deadline
            ):
                current = self._store.get(ex.id)
                return current.state if current else State.FAILED
            self._crash("state", State.VERIFYING.value, "after")
            ex = self._store.get(ex.id) or ex
        if ex.state is State.VERIFYING:
            return self._verify(runbook, ex, ctx, check)
        return self._roll_back(runbook, ex, ctx, ex.reason, check)  # resumed rolling back

    def _verify(
        self, runbook: Runbook, ex: Execution, ctx: templates.Context, check: Callable[[], None]
    ) -> State:
        assert runbook.verify is not None
        expr = templates.render(runbook.verify.expr, ctx)
        remaining = max(0.0, (ex.deadline or self._clock()) - self._clock())
        self._crash("verify", "", "before")
        try:
            ok = self._runner.holds_within(expr, remaining)
            why = (
                "condition held"
                if ok
                else f"condition did not hold within {runbook.verify.within_s:.0f}s"
            )
        except ShutdownRequested:
            raise  # not a verdict: verification resumes after the restart
        except Exception as exc:  # a query error is a failed verification, never a crash
            ok, why = False, f"verification query failed: {exc}"
        self._audit.append(
            "verification", {"expr": expr, "ok": ok, "reason": why}, execution_id=ex.id
        )
        self._crash("verify", "", "after")
        if ok:
            return self._finish(ex, [State.VERIFYING], State.SUCCEEDED, f"verified: {expr}")
        return self._undo(runbook, ex, ctx, why, check)

    def _undo(
        self,
        runbook: Runbook,
        ex: Execution,
        ctx: templates.Context,
        why: str,
        check: Callable[[], None],
    ) -> State:
        active = [State.RUNNING, State.VERIFYING]
        if not runbook.rollback:
            return self._finish(ex, active, State.FAILED, why)
        # recorded before the first rollback step: a restart carries on undoing, rather than
        # verifying again and maybe calling half an undo a success
        self._crash("state", State.ROLLING_BACK.value, "before")
        if not self._store.transition(ex.id, active, State.ROLLING_BACK, reason=why):
            current = self._store.get(ex.id)
            return current.state if current else State.FAILED
        self._audit.append("rolling_back", {"reason": why}, execution_id=ex.id)
        self._crash("state", State.ROLLING_BACK.value, "after")
        return self._roll_back(runbook, ex, ctx, why, check)

    def _roll_back(
        self,
        runbook: Runbook,
        ex: Execution,
        ctx: templates.Context,
        why: str,
        check: Callable[[], None],
    ) -> State:
        failed = self._run_phase(ex, "rollback", runbook.rollback, ctx, check)
        source = [State.ROLLING_BACK]
        if failed is not None:
            return self._finish(ex, source, State.FAILED, f"{why}; rollback step {failed!r} failed")
        return self._finish(ex, source, State.ROLLED_BACK, f"{why}; rolled back")

    def _finish(self, ex: Execution, source: Iterable[State], to: State, reason: str) -> State:
        self._crash("state", to.value, "before")
        if not self._store.transition(ex.id, source, to, reason=reason):
            current = self._store.get(ex.id)
            return current.state if current else State.FAILED
        self._audit.append(to.value, {"reason": reason, "runbook": ex.runbook}, execution_id=ex.id)
        severity = "info" if to is State.SUCCEEDED else "warning"
        self._notify(
            severity,
            f"runbook {ex.runbook} on {ex.target_key}: {to.value} ({reason})",
            {"execution_id": ex.id, "state": to.value},
        )
        self._crash("state", to.value, "after")
        return to

    def _checker(self, runbook: Runbook, ex: Execution, resumed: bool) -> Callable[[], None]:
        recheck = self._recheck
        if not resumed or recheck is None:
            return lambda: None

        def check() -> None:
            why = recheck(runbook, ex)
            if why:
                raise Aborted(why)

        return check

    def _run_phase(
        self,
        ex: Execution,
        phase: str,
        phase_steps: tuple[Step, ...],
        ctx: templates.Context,
        check: Callable[[], None],
    ) -> str | None:
        """Run the steps in order; the id of the first that failed, or None."""
        for step in phase_steps:
            self._crash(phase, step.id, "before")
            record = self._begin(ex, phase, step, check)
            if record.state == "done":
                continue
            if record.state == "failed":
                return step.id
            self._crash(phase, step.id, "started")
            result = self._act(step, ctx, record.idempotency_key, record.started_at)
            self._crash(phase, step.id, "acted")
            self._store.finish_step(ex.id, phase, step.id, ok=result.ok, result=result.detail)
            self._audit.append(
                "step",
                {
                    "phase": phase,
                    "step": step.id,
                    "action": step.action,
                    "ok": result.ok,
                    "detail": dict(result.detail),
                },
                execution_id=ex.id,
            )
            self._crash(phase, step.id, "after")
            self._notify(
                "info" if result.ok else "warning",
                f"runbook {ex.runbook} on {ex.target_key}: {phase} step {step.id} ({step.action})"
                f" {'done' if result.ok else 'failed'}",
                {"execution_id": ex.id, "phase": phase, "step": step.id, "ok": result.ok},
            )
            if not result.ok:
                return step.id
        return None

    def _begin(
        self, ex: Execution, phase: str, step: Step, check: Callable[[], None]
    ) -> StepRecord:
        """The step's record: a finished one as it is; otherwise, once `check` allows a
        mutating step to act (again), the record it acts under, new or left by a crash."""
        record = self._store.step(ex.id, phase, step.id)
        if record is not None and record.state != "started":
            return record
        if ACTIONS[step.action].mutating:
            check()
        return self._store.begin_step(ex.id, phase, step.id, step.action)

    def _act(self, step: Step, ctx: templates.Context, key: str, started_at: float) -> ActionResult:
        try:
            params: Mapping[str, Any] = render_params(step, ctx)
            return self._runner.run(step.action, params, key, started_at=started_at)
        except (ConfigError, KeyError, ValueError) as exc:
            return ActionResult(ok=False, detail={"error": str(exc)})
