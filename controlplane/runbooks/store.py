"""Durable execution state: executions, their steps, automation switches, maintenance windows.

Transitions are compare-and-set UPDATEs (`WHERE state IN (...)`), so two workers, two approvers
or a restarted process can never move one execution twice; a step row is written before the
step acts, so a restart knows exactly which step was in flight.

An alert-triggered execution also records where its alert's episode is (`Resolution`), so a
restarted process knows which executions still wait for their alert to resolve and whose
`on_resolved` steps are due or were in flight: that memory must not live only in a process.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

metadata = sa.MetaData()


class State(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    RUNNING = "running"
    VERIFYING = "verifying"
    ROLLING_BACK = "rolling_back"  # a step or the verification failed; undoing (resumable)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SHADOWED = "shadowed"  # shadow mode: planned and guarded, nothing called
    ABORTED = "aborted"  # resumed after a restart into a kill switch or maintenance window


class Resolution(StrEnum):
    """Where the triggering alert's episode is, for an alert-triggered execution (None for
    manual runs and refusals). One execution per runbook per episode: while AWAITING, the
    same alert firing again (after a restart, with a new activeAt) is that execution's."""

    AWAITING = "awaiting"  # the alert still fires, as far as the control plane knows
    RESOLVED = "resolved"  # it resolved; on_resolved is due once the execution succeeded
    ON_RESOLVED = "on_resolved"  # on_resolved claimed and running (resumed after a restart)
    DONE = "done"  # the episode is over: on_resolved ran, or there was nothing to follow up
    FAILED = "failed"  # an on_resolved step failed
    ABORTED = "aborted"  # on_resolved resumed into a kill switch or maintenance window


FINAL = frozenset(
    {
        State.SUCCEEDED,
        State.FAILED,
        State.ROLLED_BACK,
        State.REFUSED,
        State.REJECTED,
        State.EXPIRED,
        State.SHADOWED,
        State.ABORTED,
    }
)
ACTIVE = frozenset(State) - FINAL

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("runbook", sa.String(200), nullable=False, index=True),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("target_key", sa.String(300), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),  # alert | manual
    sa.Column("alert_fingerprint", sa.String(64), nullable=True, index=True),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("approvals", sa.Text, nullable=False, default="[]"),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("deadline", sa.Float, nullable=True),  # approval expiry or verification deadline
    sa.Column("resolved_done", sa.Boolean, nullable=False, default=False),
    sa.Column("resolution", sa.String(20), nullable=True, index=True),
    sa.Column("alert_source", sa.String(20), nullable=True),  # rules | external
)
steps = sa.Table(
    "execution_steps",
    metadata,
    sa.Column("execution_id", sa.String(36), sa.ForeignKey("executions.id"), primary_key=True),
    sa.Column("phase", sa.String(20), primary_key=True),  # steps | rollback | on_resolved
    sa.Column("step_id", sa.String(200), primary_key=True),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # started | done | failed
    sa.Column("idempotency_key", sa.String(300), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("result", sa.Text, nullable=False, default="{}"),
)


@dataclass(frozen=True, kw_only=True)
class Execution:
    id: str
    runbook: str
    mode: str
    state: State
    target_key: str
    trigger: str
    alert_fingerprint: str | None
    labels: Mapping[str, str]
    value: float | None
    params: Mapping[str, Any]
    dry_run: bool
    requested_by: str
    approvals: tuple[Mapping[str, Any], ...]
    reason: str
    created_at: float
    updated_at: float
    deadline: float | None
    resolved_done: bool
    resolution: Resolution | None = None
    alert_source: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in self.__dataclass_fields__},
            "state": self.state.value,
            "resolution": self.resolution.value if self.resolution else None,
            "labels": dict(self.labels),
            "params": dict(self.params),
            "approvals": [dict(a) for a in self.approvals],
        }


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    phase: str
    step_id: str
    action: str
    state: str
    idempotency_key: str
    started_at: float
    finished_at: float | None
    result: Mapping[str, Any]


class ExecutionStore:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def create(
        self,
        *,
        runbook: str,
        mode: str,
        state: State,
        target_key: str,
        trigger: str,
        labels: Mapping[str, str],
        requested_by: str,
        value: float | None = None,
        params: Mapping[str, Any] | None = None,
        alert_fingerprint: str | None = None,
        dry_run: bool = False,
        reason: str = "",
        deadline: float | None = None,
        resolution: Resolution | None = None,
        alert_source: str | None = None,
    ) -> Execution:
        now = self._clock()
        row = dict(
            id=str(uuid.uuid4()),
            runbook=runbook,
            mode=mode,
            state=state.value,
            target_key=target_key,
            trigger=trigger,
            alert_fingerprint=alert_fingerprint,
            labels=json.dumps(dict(labels), sort_keys=True),
            value=value,
            params=json.dumps(dict(params or {}), sort_keys=True, default=str),
            dry_run=dry_run,
            requested_by=requested_by,
            approvals="[]",
            reason=reason,
            created_at=now,
            updated_at=now,
            deadline=deadline,
            resolved_done=False,
            resolution=resolution.value if resolution else None,
            alert_source=alert_source,
        )
        with self._engine.begin() as conn:
            conn.execute(executions.insert().values(**row))
        return _execution(row)

    def get(self, execution_id: str) -> Execution | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).first()
        return None if row is None else _execution(row._asdict())

    def find(
        self,
        *,
        states: Iterable[State] | None = None,
        runbook: str | None = None,
        since: float | None = None,
        limit: int = 200,
        fingerprint: str | None = None,
        resolutions: Iterable[Resolution] | None = None,
    ) -> list[Execution]:
        query = sa.select(executions).order_by(executions.c.created_at.desc()).limit(limit)
        if states is not None:
            query = query.where(executions.c.state.in_([s.value for s in states]))
        if fingerprint is not None:
            query = query.where(executions.c.alert_fingerprint == fingerprint)
        if resolutions is not None:
            query = query.where(executions.c.resolution.in_([r.value for r in resolutions]))
        if runbook is not None:
            query = query.where(executions.c.runbook == runbook)
        if since is not None:
            query = query.where(executions.c.created_at >= since)
        with self._engine.connect() as conn:
            return [_execution(r._asdict()) for r in conn.execute(query)]

    def transition(
        self, execution_id: str, from_states: Iterable[State], to: State, **fields: Any
    ) -> bool:
        """Move to `to` only from one of `from_states`; False if someone else moved it first."""
        values = {**fields, "state": to.value, "updated_at": self._clock()}
        for key in ("approvals",):
            if key in values:
                values[key] = json.dumps(values[key])
        with self._engine.begin() as conn:
            done = conn.execute(
                executions.update()
                .where(executions.c.id == execution_id)
                .where(executions.c.state.in_([s.value for s in from_states]))
                .values(**values)
            )
        return done.rowcount == 1

    def resolve(
        self, execution_id: str, from_: Iterable[Resolution], to: Resolution, **fields: Any
    ) -> bool:
        """Move the alert episode's state, compare-and-set as `transition`: of the resolved
        event, the restart's sweep and the executor's finish, exactly one claims on_resolved."""
        values = {**fields, "resolution": to.value, "updated_at": self._clock()}
        with self._engine.begin() as conn:
            done = conn.execute(
                executions.update()
                .where(executions.c.id == execution_id)
                .where(executions.c.resolution.in_([r.value for r in from_]))
                .values(**values)
            )
        return done.rowcount == 1

    def add_approval(self, execution_id: str, user: str, needed: int) -> tuple[bool, int]:
        """Record one approval (one per distinct user); (accepted, approvals so far)."""
        for _ in range(10):
            current = self.get(execution_id)
            if current is None or current.state is not State.PENDING_APPROVAL:
                return False, 0
            if any(a["user"] == user for a in current.approvals):
                return False, len(current.approvals)
            approvals = [*current.approvals, {"user": user, "at": self._clock()}]
            with self._engine.begin() as conn:
                done = conn.execute(
                    executions.update()
                    .where(executions.c.id == execution_id)
                    .where(executions.c.state == State.PENDING_APPROVAL.value)
                    .where(
                        executions.c.approvals == json.dumps([dict(a) for a in current.approvals])
                    )
                    .values(approvals=json.dumps(approvals), updated_at=self._clock())
                )
            if done.rowcount == 1:
                return True, len(approvals)
        return False, 0

    def begin_step(self, execution_id: str, phase: str, step_id: str, action: str) -> StepRecord:
        """Record that a step is about to act, or return the record a previous attempt left."""
        key = f"{execution_id}:{phase}:{step_id}"
        row = dict(
            execution_id=execution_id,
            phase=phase,
            step_id=step_id,
            action=action,
            state="started",
            idempotency_key=key,
            started_at=self._clock(),
            finished_at=None,
            result="{}",
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(steps.insert().values(**row))
        except IntegrityError:
            existing = self.step(execution_id, phase, step_id)
            assert existing is not None
            return existing
        return _step(row)

    def finish_step(
        self, execution_id: str, phase: str, step_id: str, *, ok: bool, result: Mapping[str, Any]
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                steps.update()
                .where(
                    steps.c.execution_id == execution_id,
                    steps.c.phase == phase,
                    steps.c.step_id == step_id,
                    steps.c.state == "started",
                )
                .values(
                    state="done" if ok else "failed",
                    finished_at=self._clock(),
                    result=json.dumps(dict(result), default=str),
                )
            )

    def step(self, execution_id: str, phase: str, step_id: str) -> StepRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(steps).where(
                    steps.c.execution_id == execution_id,
                    steps.c.phase == phase,
                    steps.c.step_id == step_id,
                )
            ).first()
        return None if row is None else _step(row._asdict())

    def steps_of(self, execution_id: str) -> list[StepRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(steps)
                .where(steps.c.execution_id == execution_id)
                .order_by(steps.c.started_at)
            )
            return [_step(r._asdict()) for r in rows]

    def mutating_step_times(self, since: float, actions: Sequence[str]) -> list[float]:
        """When automated mutating steps started, for the global automation budget."""
        query = (
            sa.select(steps.c.started_at)
            .join(executions)
            .where(
                steps.c.started_at >= since,
                steps.c.action.in_(list(actions)),
                executions.c.trigger == "alert",
                executions.c.dry_run.is_(False),
            )
        )
        with self._engine.connect() as conn:
            return [r.started_at for r in conn.execute(query)]


def _execution(row: Mapping[str, Any]) -> Execution:
    return Execution(
        id=row["id"],
        runbook=row["runbook"],
        mode=row["mode"],
        state=State(row["state"]),
        target_key=row["target_key"],
        trigger=row["trigger"],
        alert_fingerprint=row["alert_fingerprint"],
        labels=json.loads(row["labels"]),
        value=row["value"],
        params=json.loads(row["params"]),
        dry_run=bool(row["dry_run"]),
        requested_by=row["requested_by"],
        approvals=tuple(json.loads(row["approvals"])),
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deadline=row["deadline"],
        resolved_done=bool(row["resolved_done"]),
        resolution=Resolution(row["resolution"]) if row.get("resolution") else None,
        alert_source=row.get("alert_source"),
    )


def _step(row: Mapping[str, Any]) -> StepRecord:
    return StepRecord(
        phase=row["phase"],
        step_id=row["step_id"],
        action=row["action"],
        state=row["state"],
        idempotency_key=row["idempotency_key"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=json.loads(row["result"]),
    )
