"""The write operations behind `/api/v1` and the dashboards' buttons."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.access import Forbidden, Permission, User, require
from controlplane.audit import AuditLog
from controlplane.model.series import Matcher
from controlplane.notify.alerts import format_time
from controlplane.notify.silences import Silence, SilenceStore
from controlplane.runbooks.engine import RemediationError, Remediator
from controlplane.runbooks.store import Execution, ExecutionStore
from controlplane.runbooks.switches import Switches

_ACTOR_MAX = 200  # the audit log's actor column


@dataclass(frozen=True, kw_only=True)
class SilenceRequest:
    matchers: Sequence[Matcher]
    ends_at: datetime
    comment: str
    starts_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Silencing:
    """Silences, as people create and expire them: audited with the person (audit None: not
    kept, for a notifier used without the rest of the control plane)."""

    silences: SilenceStore
    audit: AuditLog | None = None

    def silence(self, user: User, request: SilenceRequest) -> Silence:
        require(user, Permission.SILENCE)
        silence = self.silences.add(
            matchers=request.matchers,
            starts_at=request.starts_at,
            ends_at=request.ends_at,
            created_by=user.name,
            comment=request.comment,
        )
        self._record("silence_created", silence, user)
        return silence

    def expire(self, user: User, silence_id: str) -> Silence:
        require(user, Permission.SILENCE)
        silence = self.silences.expire(silence_id)
        self._record("silence_expired", silence, user)
        return silence

    def _record(self, kind: str, silence: Silence, user: User) -> None:
        if self.audit is None:
            return
        data = {
            "id": silence.id,
            "matchers": silence.matcher_strings,
            "startsAt": format_time(silence.starts_at),
            "endsAt": format_time(silence.ends_at),
            "createdBy": silence.created_by,
            "comment": silence.comment,
        }
        self.audit.append(kind, data, actor=_actor(user))


@dataclass(frozen=True, kw_only=True)
class Operations:
    remediator: Remediator
    executions: ExecutionStore
    switches: Switches
    audit: AuditLog
    silencing: Silencing | None = None
    clock: Callable[[], float] = time.time

    def pause(self, user: User, reason: str) -> None:
        require(user, Permission.PAUSE)
        reason = reason.strip() or "paused by hand"
        self.switches.set_automation(paused=True, reason=reason, by=user.name)
        self.audit.append("automation_paused", {"reason": reason}, actor=_actor(user))

    def resume(self, user: User) -> None:
        require(user, Permission.RESUME)
        self.switches.set_automation(paused=False, reason="", by=user.name)
        self.audit.append("automation_resumed", {}, actor=_actor(user))

    def run(
        self,
        user: User,
        runbook: str,
        *,
        labels: Mapping[str, str],
        params: Mapping[str, Any],
        dry_run: bool,
    ) -> Execution:
        """A manual run; `dry_run` plans (targets, guards, steps) and changes nothing."""
        require(user, Permission.RUN)
        ex = self.remediator.run_manual(
            runbook, labels=dict(labels), params=dict(params), user=user.name, dry_run=dry_run
        )
        return self.executions.get(ex.id) or ex

    def approve(self, user: User, execution_id: str) -> Execution:
        require(user, Permission.APPROVE)
        self._not_the_requester(user, execution_id, "approve")
        return self.remediator.approve(execution_id, user.name)

    def reject(self, user: User, execution_id: str, reason: str = "") -> Execution:
        require(user, Permission.REJECT)
        return self.remediator.reject(execution_id, user.name, reason)

    def silence(self, user: User, request: SilenceRequest) -> Silence:
        return self._silencing().silence(user, request)

    def expire_silence(self, user: User, silence_id: str) -> Silence:
        return self._silencing().expire(user, silence_id)

    def start_maintenance(
        self, user: User, *, matchers: Mapping[str, str], seconds: float, reason: str
    ) -> tuple[str, float]:
        require(user, Permission.MAINTENANCE)
        now = self.clock()
        window_id = self.switches.add_maintenance(
            matchers=dict(matchers),
            starts_at=now,
            ends_at=now + seconds,
            reason=reason,
            by=user.name,
        )
        data = {
            "id": window_id,
            "matchers": dict(matchers),
            "duration_s": seconds,
            "reason": reason,
        }
        self.audit.append("maintenance_started", data, actor=_actor(user))
        return window_id, now + seconds

    def end_maintenance(self, user: User, window_id: str) -> bool:
        require(user, Permission.MAINTENANCE)
        if not self.switches.end_maintenance(window_id):
            return False
        self.audit.append("maintenance_ended", {"id": window_id}, actor=_actor(user))
        return True

    def _not_the_requester(self, user: User, execution_id: str, verb: str) -> None:
        ex = self.executions.get(execution_id)
        if ex is None:
            raise RemediationError(f"unknown execution {execution_id!r}")
        if ex.requested_by == user.name:
            raise Forbidden(f"{user.name} requested {execution_id} and cannot {verb} it")

    def _silencing(self) -> Silencing:
        if self.silencing is None:
            raise RemediationError("silences are not kept by this control plane")
        return self.silencing


def _actor(user: User) -> str:
    return user.name[:_ACTOR_MAX]
