"""What the dashboards read: the control plane's read interfaces, passed in by whoever mounts
them (`controlplane.app.create_app`), never built here.

    reads = ReadModels(querier=..., slos=..., alerts=rules.alerts, executions=store,
                       automation=switches, audit=audit_log, budget=remediator.budget)

The protocols name only the read half of the control plane's stores, so a test can pass fakes
and the pages cannot write. The same pages work in remote mode: `querier` is then the remote
Prometheus, and nothing here touches the embedded store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import current_app

from controlplane.audit import Anchor, AuditEvent, Head, Verification
from controlplane.promql.results import Querier
from controlplane.rules.alerting import Alert
from controlplane.runbooks.actions import ACTIONS
from controlplane.runbooks.store import Execution, State, StepRecord
from controlplane.slo import SLO
from dashboards.acting import Acting

EXTENSION = "dashboards"
MUTATING = tuple(name for name, spec in ACTIONS.items() if spec.mutating)


class ExecutionReader(Protocol):
    """The read half of `controlplane.runbooks.store.ExecutionStore`."""

    def find(
        self,
        *,
        states: Iterable[State] | None = None,
        runbook: str | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[Execution]: ...

    def get(self, execution_id: str) -> Execution | None: ...

    def steps_of(self, execution_id: str) -> list[StepRecord]: ...

    def mutating_step_times(self, since: float, actions: Sequence[str]) -> list[float]: ...


class AutomationReader(Protocol):
    """The read half of `controlplane.runbooks.switches.Switches`."""

    def automation(self) -> tuple[bool, str, str, float]: ...

    def maintenance_windows(self, *, active_at: float | None = None) -> list[dict[str, Any]]: ...


class AuditReader(Protocol):
    """The read half of `controlplane.audit.AuditLog`."""

    def events(
        self, *, execution_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEvent]: ...

    def head(self) -> Head | None: ...

    def verify(self, anchors: Sequence[Anchor] = ()) -> Verification: ...


@dataclass(frozen=True, kw_only=True)
class ReadModels:
    querier: Querier
    slos: Sequence[SLO]
    alerts: Callable[[], Sequence[Alert]]  # pending and firing, as /api/v1/alerts
    executions: ExecutionReader
    automation: AutomationReader
    audit: AuditReader
    budget: tuple[int, float] = (20, 600.0)  # automated actions allowed per window (s)
    runbooks: Sequence[str] = ()  # names, for the filters
    clock: Callable[[], float] = time.time
    # the audit chain is verified at most this often: verifying reads every row
    verify_every_s: float = 30.0
    # what people may do from the pages (None: read-only dashboards)
    acting: Acting | None = None
    # the Slack Web API the messages go to (None: no bot token); /dash/chat reads the Slack
    # stand-in there (controlplane/slack/standin.py), and says so for real Slack
    slack_api_url: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def slo(self, slo_id: str) -> SLO | None:
        return next((s for s in self.slos if s.id == slo_id), None)

    def now_ms(self) -> int:
        return round(self.clock() * 1000)

    def verification(self) -> tuple[Verification, float]:
        """The audit chain's verification and when it ran, reused for `verify_every_s`."""
        now = self.clock()
        cached = self._cache.get("verification")
        if cached is None or now - cached[1] >= self.verify_every_s:
            cached = (self.audit.verify(), now)
            self._cache["verification"] = cached
        return cached[0], cached[1]


def current() -> ReadModels:
    """The read models of the app serving this request (several apps may share a process)."""
    reads: ReadModels = current_app.extensions[EXTENSION]
    return reads


def now_ms() -> int:
    return current().now_ms()
