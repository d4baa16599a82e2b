"""Alerts, executions, automation and the audit log as the pages read them."""

from __future__ import annotations

import dataclasses
from typing import Any

from controlplane.audit import Verification
from controlplane.errors import QueryError
from controlplane.rules.alerting import Alert
from controlplane.runbooks.store import State
from dashboards import activity
from dashboards.activity import AuditFilter, ExecutionFilter
from dashboards.reads import ReadModels
from dashboards.view import View
from tests.dashboards.scenario import END_MS

HOUR = View(range="1h").window(END_MS)


def test_alerts_firing_first_by_severity_then_age(reads: ReadModels) -> None:
    rows, problem = activity.current_alerts(reads)
    assert problem is None
    assert [(r.name, r.severity, r.state) for r in rows] == [
        ("ProviderFailing", "page", "firing"),
        ("LaunchSuccessBudgetBurn", "page", "firing"),
        ("LaunchSuccessBudgetBurn", "ticket", "firing"),
        ("WalletRetryQueueGrowing", "ticket", "pending"),
    ]
    assert rows[0].labels == {"provider": "evolution", "region": "eu"}
    assert rows[1].slo_id == "launches-launch-success"


def test_automation_state_and_budget_left(reads: ReadModels) -> None:
    state, problem = activity.automation(reads)
    assert problem is None and state is not None
    assert not state.paused and state.changed_by == "alice"
    # the isolation at 11:17 and the wallet replay at 11:58, both within the hour
    assert (state.max_actions, state.used, state.left) == (20, 2, 18)


def test_active_executions_put_approvals_first(reads: ReadModels) -> None:
    active, _ = activity.active_executions(reads)
    assert [(e.runbook, e.state) for e in active] == [
        ("drain-region", State.PENDING_APPROVAL),
        ("replay-wallet-queue", State.RUNNING),
    ]


def test_execution_filters(reads: ReadModels) -> None:
    def found(**params: str) -> list[tuple[str, str]]:
        flt = ExecutionFilter.from_params(params)
        rows, problem = activity.find_executions(reads, flt, HOUR)
        assert problem is None
        return [(e.runbook, e.state.value) for e in rows]

    assert len(found()) == 5  # the rolled-back run of 11:20 is older than the hour
    assert found(state="refused,succeeded") == [
        ("isolate-provider", "refused"),
        ("isolate-provider", "succeeded"),
    ]
    assert found(alert="ProviderFailing", q="EVOLUTION") == found(runbook="isolate-provider")
    assert found(state="nonsense") == found()  # unknown states are dropped, not an error
    assert (
        len(activity.find_executions(reads, ExecutionFilter(), View(range="6h").window(END_MS))[0])
        == 6
    )


def test_execution_detail_has_steps_guards_and_verification(reads: ReadModels) -> None:
    (succeeded,) = [
        e for (e,) in [(e,) for e in reads.executions.find()] if e.state is State.SUCCEEDED
    ]
    detail, problem = activity.execution_detail(reads, succeeded.id)
    assert problem is None and detail is not None
    assert [s.action for s in detail.steps] == ["provider.isolate"]
    assert len(detail.of_kind("guard")) == 5
    (verified,) = detail.of_kind("verification")
    assert verified.data["ok"] is True
    assert activity.execution_detail(reads, "nope") == (None, None)


def test_audit_events_newest_first_with_filters(reads: ReadModels) -> None:
    page, problem = activity.audit_events(reads, AuditFilter(), View(range="6h").window(END_MS))
    assert problem is None
    seqs = [e.seq for e in page.events]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == page.scanned
    by_alice, _ = activity.audit_events(
        reads, AuditFilter(actor="ALI"), View(range="6h").window(END_MS)
    )
    assert [e.kind for e in by_alice.events] == ["automation_resumed", "automation_paused"]
    small, _ = activity.audit_events(reads, AuditFilter(kind="guard"), HOUR, limit=3, scan=10)
    assert len(small.events) <= 3 and small.more


def test_the_chain_verifies_and_is_cached(reads: ReadModels) -> None:
    status, problem = activity.chain_status(reads)
    assert problem is None and status is not None
    assert status.ok and status.checked == status.head_seq


def test_a_broken_chain_and_a_failing_store_are_shown_not_raised(reads: ReadModels) -> None:
    class Tampered:
        def __getattr__(self, name: str) -> object:
            return getattr(reads.audit, name)

        def verify(self, anchors: object = ()) -> Verification:
            return Verification(ok=False, checked=3, problems=("row 2: previous-hash link broken",))

    tampered: Any = Tampered()
    broken = dataclasses.replace(reads, audit=tampered, _cache={})
    status, _ = activity.chain_status(broken)
    assert status is not None and not status.ok and status.problems

    def unavailable() -> list[Alert]:
        raise QueryError("remote Prometheus unavailable")

    rows, problem = activity.current_alerts(dataclasses.replace(reads, alerts=unavailable))
    assert rows == [] and problem == "cannot read alerts: remote Prometheus unavailable"
