"""Running one execution: steps, verification, rollback. Resumable at any point.

A step is recorded before it acts (ExecutionStore.begin_step); on resume, done steps are
skipped and the step that was in flight is re-sent with the same Idempotency-Key, so the
aggregator answers from its memory of the first call rather than acting twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from controlplane.audit import AuditLog
from controlplane.errors import ConfigError
from controlplane.runbooks import templates
from controlplane.runbooks.act import ActionResult, ActionRunner, Notify, ShutdownRequested
from controlplane.runbooks.model import Runbook, Step
from controlplane.runbooks.store import Execution, ExecutionStore, State


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
    ) -> None:
        self._store, self._audit, self._runner = store, audit, runner
        self._notify, self._clock = notify, clock

    def execute(self, runbook: Runbook, execution_id: str) -> State:
        ex = self._store.get(execution_id)
        if ex is None or ex.state not in (State.RUNNING, State.VERIFYING):
            return ex.state if ex else State.FAILED
        ctx = context(ex)
        if ex.state is State.RUNNING:
            failed = self._run_phase(ex, "steps", runbook.steps, ctx)
            if failed is not None:
                return self._undo(runbook, ex, ctx, f"step {failed!r} failed")
            if runbook.verify is None:
                return self._finish(ex, State.RUNNING, State.SUCCEEDED, "all steps done")
            deadline = self._clock() + runbook.verify.within_s
            if not self._store.transition(
                ex.id, [State.RUNNING], State.VERIFYING, deadline=deadline
            ):
                return State.FAILED
            ex = self._store.get(ex.id) or ex
        return self._verify(runbook, ex, ctx)

    def run_on_resolved(self, runbook: Runbook, ex: Execution) -> bool:
        failed = self._run_phase(ex, "on_resolved", runbook.on_resolved, context(ex))
        self._audit.append(
            "on_resolved", {"ok": failed is None, "failed_step": failed}, execution_id=ex.id
        )
        return failed is None

    def _verify(self, runbook: Runbook, ex: Execution, ctx: templates.Context) -> State:
        assert runbook.verify is not None
        expr = templates.render(runbook.verify.expr, ctx)
        remaining = max(0.0, (ex.deadline or self._clock()) - self._clock())
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
        if ok:
            return self._finish(ex, State.VERIFYING, State.SUCCEEDED, f"verified: {expr}")
        return self._undo(runbook, ex, ctx, why)

    def _undo(self, runbook: Runbook, ex: Execution, ctx: templates.Context, why: str) -> State:
        current = self._store.get(ex.id)
        source = current.state if current else State.RUNNING
        if not runbook.rollback:
            return self._finish(ex, source, State.FAILED, why)
        failed = self._run_phase(ex, "rollback", runbook.rollback, ctx)
        if failed is not None:
            return self._finish(ex, source, State.FAILED, f"{why}; rollback step {failed!r} failed")
        return self._finish(ex, source, State.ROLLED_BACK, f"{why}; rolled back")

    def _finish(self, ex: Execution, source: State, to: State, reason: str) -> State:
        if not self._store.transition(ex.id, [source], to, reason=reason):
            current = self._store.get(ex.id)
            return current.state if current else State.FAILED
        self._audit.append(to.value, {"reason": reason, "runbook": ex.runbook}, execution_id=ex.id)
        severity = "info" if to is State.SUCCEEDED else "warning"
        self._notify(
            severity,
            f"runbook {ex.runbook} on {ex.target_key}: {to.value} ({reason})",
            {"execution_id": ex.id, "state": to.value},
        )
        return to

    def _run_phase(
        self, ex: Execution, phase: str, phase_steps: tuple[Step, ...], ctx: templates.Context
    ) -> str | None:
        """Run the steps in order; the id of the first that failed, or None."""
        for step in phase_steps:
            record = self._store.begin_step(ex.id, phase, step.id, step.action)
            if record.state == "done":
                continue
            if record.state == "failed":
                return step.id
            result = self._act(step, ctx, record.idempotency_key, record.started_at)
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
            if not result.ok:
                return step.id
        return None

    def _act(self, step: Step, ctx: templates.Context, key: str, started_at: float) -> ActionResult:
        try:
            params: Mapping[str, Any] = render_params(step, ctx)
            return self._runner.run(step.action, params, key, started_at=started_at)
        except (ConfigError, KeyError, ValueError) as exc:
            return ActionResult(ok=False, detail={"error": str(exc)})
