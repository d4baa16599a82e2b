"""What is firing, what the control plane did and is doing about it, and who did what: the
read side of alerts, executions, the automation switches and the audit log.

Every function takes the `ReadModels` and returns plain values; a store or querier that
cannot answer becomes a `problem` text the panel shows, never an exception in a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from controlplane.audit import AuditEvent
from controlplane.errors import ControlPlaneError
from controlplane.rules.alerting import Alert
from controlplane.runbooks.store import ACTIVE, Execution, State, StepRecord
from dashboards.reads import MUTATING, ReadModels
from dashboards.view import Window

T = TypeVar("T")
SEVERITY_RANK = {
    "critical": 0,
    "page": 0,
    "error": 1,
    "high": 1,
    "ticket": 2,
    "warning": 2,
    "none": 4,  # Watchdog-style alerts that always fire: last
}
# labels every alert of a kind shares: shown elsewhere on the row, or noise
_HIDDEN_LABELS = {
    "alertname",
    "severity",
    "slo_id",
    "slo_name",
    "slo_service",
    "slo_severity",
    "team",
}
FAILURES = (ControlPlaneError, SQLAlchemyError, OSError)


def attempt(read: Callable[[], T], default: T, what: str) -> tuple[T, str | None]:
    """`read()`, or `default` and why not when the store or querier cannot answer."""
    try:
        return read(), None
    except FAILURES as exc:
        return default, f"cannot read {what}: {exc}"


@dataclass(frozen=True, kw_only=True)
class AlertRow:
    name: str
    severity: str
    state: str  # pending | firing
    since_ms: int  # firing since (pending since, for pending alerts)
    labels: Mapping[str, str]  # what tells this alert from its siblings
    summary: str
    slo_id: str | None
    value: float


def alert_rows(alerts: Sequence[Alert]) -> list[AlertRow]:
    """Firing before pending, then by severity, the oldest first."""
    rows = []
    for alert in alerts:
        labels = dict(alert.labels)
        rows.append(
            AlertRow(
                name=labels.get("alertname", alert.rule),
                severity=labels.get("severity", ""),
                state=alert.state.value,
                since_ms=alert.starts_at_ms,
                labels={k: v for k, v in labels.items() if k not in _HIDDEN_LABELS},
                summary=dict(alert.annotations).get("summary", ""),
                slo_id=labels.get("slo_id"),
                value=alert.value,
            )
        )
    return sorted(rows, key=lambda r: (r.state != "firing", severity_rank(r.severity), r.since_ms))


def severity_rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 3)


def current_alerts(reads: ReadModels) -> tuple[list[AlertRow], str | None]:
    return attempt(lambda: alert_rows(reads.alerts()), [], "alerts")


@dataclass(frozen=True, kw_only=True)
class Automation:
    paused: bool
    reason: str
    changed_by: str
    changed_at: float
    max_actions: int
    window_s: float
    used: int  # automated mutating steps within the window
    maintenance: tuple[Mapping[str, Any], ...] = ()

    @property
    def left(self) -> int:
        return max(0, self.max_actions - self.used)


def automation(reads: ReadModels) -> tuple[Automation | None, str | None]:
    def read() -> Automation:
        now = reads.clock()
        paused, reason, by, at = reads.automation.automation()
        max_actions, window_s = reads.budget
        used = len(reads.executions.mutating_step_times(now - window_s, MUTATING))
        windows = reads.automation.maintenance_windows(active_at=now)
        return Automation(
            paused=paused,
            reason=reason,
            changed_by=by,
            changed_at=at,
            max_actions=max_actions,
            window_s=window_s,
            used=used,
            maintenance=tuple(w for w in windows if w["starts_at"] <= now),
        )

    return attempt(read, None, "the automation state")


def active_executions(reads: ReadModels) -> tuple[list[Execution], str | None]:
    """Running, verifying or waiting for approval: the oldest first, they waited longest."""

    def read() -> list[Execution]:
        found = reads.executions.find(states=ACTIVE, limit=100)
        return sorted(found, key=lambda e: (e.state is not State.PENDING_APPROVAL, e.created_at))

    return attempt(read, [], "executions")


@dataclass(frozen=True, kw_only=True)
class ExecutionFilter:
    states: tuple[str, ...] = ()
    runbook: str = ""
    alert: str = ""  # the alertname that triggered it
    target: str = ""  # a part of the target key

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> ExecutionFilter:
        def text(key: str) -> str:
            value = params.get(key)
            return value.strip() if isinstance(value, str) else ""

        known = {s.value for s in State}
        states = tuple(s for s in text("state").split(",") if s in known)
        return cls(states=states, runbook=text("runbook"), alert=text("alert"), target=text("q"))

    def params(self) -> dict[str, str]:
        return {
            "state": ",".join(self.states),
            "runbook": self.runbook,
            "alert": self.alert,
            "q": self.target,
        }

    def keeps(self, ex: Execution) -> bool:
        return (
            (not self.alert or ex.labels.get("alertname") == self.alert)
            and (not self.target or self.target.lower() in ex.target_key.lower())
            and (not self.states or ex.state.value in self.states)
        )


def find_executions(
    reads: ReadModels, flt: ExecutionFilter, window: Window, limit: int = 500
) -> tuple[list[Execution], str | None]:
    """Executions created within the window that pass the filter, the newest first."""

    def read() -> list[Execution]:
        states = [State(s) for s in flt.states] or None
        found = reads.executions.find(
            states=states,
            runbook=flt.runbook or None,
            since=window.start_ms / 1000,
            limit=limit,
        )
        return [e for e in found if e.created_at * 1000 <= window.end_ms and flt.keeps(e)]

    return attempt(read, [], "executions")


def finished_executions(
    reads: ReadModels, window: Window, limit: int = 10
) -> tuple[list[Execution], str | None]:
    """What automation (and people) did within the window and is over: the newest first."""
    found, problem = find_executions(reads, ExecutionFilter(), window, limit=limit + 100)
    return [e for e in found if e.state not in ACTIVE][:limit], problem


@dataclass(frozen=True, kw_only=True)
class ExecutionDetail:
    execution: Execution
    steps: tuple[StepRecord, ...]
    events: tuple[AuditEvent, ...]  # its audit trail, in order

    def of_kind(self, kind: str) -> list[AuditEvent]:
        return [e for e in self.events if e.kind == kind]


def execution_detail(
    reads: ReadModels, execution_id: str
) -> tuple[ExecutionDetail | None, str | None]:
    def read() -> ExecutionDetail | None:
        found = reads.executions.get(execution_id)
        if found is None:
            return None
        return ExecutionDetail(
            execution=found,
            steps=tuple(reads.executions.steps_of(execution_id)),
            events=tuple(reads.audit.events(execution_id=execution_id, limit=5000)),
        )

    return attempt(read, None, f"execution {execution_id!r}")


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    kind: str = ""
    actor: str = ""
    execution: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> AuditFilter:
        def text(key: str) -> str:
            value = params.get(key)
            return value.strip() if isinstance(value, str) else ""

        return cls(kind=text("kind"), actor=text("actor"), execution=text("execution"))

    def params(self) -> dict[str, str]:
        return {"kind": self.kind, "actor": self.actor, "execution": self.execution}

    def keeps(self, event: AuditEvent, window: Window) -> bool:
        return (
            window.start_ms <= event.at * 1000 <= window.end_ms
            and (not self.kind or event.kind == self.kind)
            and (not self.actor or self.actor.lower() in event.actor.lower())
        )


@dataclass(frozen=True, kw_only=True)
class AuditPage:
    events: tuple[AuditEvent, ...] = ()  # newest first
    scanned: int = 0
    more: bool = False  # older matching events may exist beyond what was scanned
    kinds: tuple[str, ...] = field(default=())


def audit_events(
    reads: ReadModels, flt: AuditFilter, window: Window, *, limit: int = 300, scan: int = 20_000
) -> tuple[AuditPage, str | None]:
    """The newest `limit` events within the window that pass the filter, reading back from the
    head at most `scan` rows (the log is read in chain order, in chunks)."""

    def read() -> AuditPage:
        if flt.execution:
            rows = reads.audit.events(execution_id=flt.execution, limit=scan)
            return _page(rows, flt, window, limit, more=len(rows) >= scan)
        head = reads.audit.head()
        top = head.seq if head is not None else 0
        rows, upto, chunk = [], top, 2000
        while upto > 0 and top - upto < scan:
            start = max(0, upto - chunk)
            batch = reads.audit.events(after=start, limit=upto - start)
            rows[:0] = batch
            upto = start
            if batch and batch[0].at * 1000 < window.start_ms:
                break  # older than the window: nothing before it can match
            if sum(1 for e in batch if flt.keeps(e, window)) >= limit:
                break
        return _page(rows, flt, window, limit, more=upto > 0 and top - upto >= scan)

    return attempt(read, AuditPage(), "the audit log")


def _page(
    rows: Sequence[AuditEvent], flt: AuditFilter, window: Window, limit: int, *, more: bool
) -> AuditPage:
    kept = [e for e in reversed(rows) if flt.keeps(e, window)]
    return AuditPage(
        events=tuple(kept[:limit]),
        scanned=len(rows),
        more=more or len(kept) > limit,
        kinds=tuple(sorted({e.kind for e in rows})),
    )


@dataclass(frozen=True, kw_only=True)
class ChainStatus:
    ok: bool
    checked: int
    problems: tuple[str, ...]
    head_seq: int | None
    head_hash: str | None
    verified_at: float


def chain_status(reads: ReadModels) -> tuple[ChainStatus | None, str | None]:
    def read() -> ChainStatus:
        result, at = reads.verification()
        head = reads.audit.head()
        return ChainStatus(
            ok=result.ok,
            checked=result.checked,
            problems=result.problems,
            head_seq=None if head is None else head.seq,
            head_hash=None if head is None else head.hash,
            verified_at=at,
        )

    return attempt(read, None, "the audit chain")
