from __future__ import annotations

from typing import Any

import pytest

from controlplane.runbooks.engine import AlertEvent, RemediationError
from controlplane.runbooks.guards import Fleet
from controlplane.runbooks.store import State
from tests.controlplane.runbooks.test_load import DESIGN_EXAMPLE

VERIFY = 'casino:launch_success:ratio_rate1m{region="eu"} > 0.99'
LABELS = {
    "alertname": "ProviderLaunchFailing",
    "severity": "page",
    "region": "eu",
    "provider": "pv3",
}


def firing(fp: str = "fp1", at: float = 999_000.0, **labels: str) -> AlertEvent:
    return AlertEvent(
        labels={**LABELS, **labels}, fingerprint=fp, firing=True, active_at=at, value=0.4
    )


def resolved(fp: str = "fp1", at: float = 999_000.0) -> AlertEvent:
    return AlertEvent(labels=LABELS, fingerprint=fp, firing=False, active_at=at)


def running(world: Any, runbook: str) -> Any:
    """An execution as a process killed mid-run leaves it: RUNNING, on pv3 in eu."""
    return world.store.create(
        runbook=runbook,
        mode="auto",
        state=State.RUNNING,
        target_key="provider/eu/pv3",
        trigger="alert",
        labels={"region": "eu", "provider": "pv3"},
        requested_by="controlplane",
    )


def kinds(world: Any, execution_id: str) -> list[str]:
    return [e.kind for e in world.log.events(execution_id=execution_id)]


def test_auto_runbook_isolates_verifies_and_audits(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    w.querier.holding.add(VERIFY)
    [ex] = w.remediator.on_alert(firing())
    done = w.store.get(ex.id)
    assert done is not None and done.state is State.SUCCEEDED
    assert w.admin.acted == ["/admin/providers/pv3/isolate"]
    assert w.admin.calls[0][1] == f"{ex.id}:steps:isolate"
    assert kinds(w, ex.id)[0] == "triggered"
    assert {"guard", "running", "step", "verification", "succeeded"} <= set(kinds(w, ex.id))
    assert w.log.verify().ok
    # the same firing episode never starts a second execution
    assert w.remediator.on_alert(firing()) == []


def test_failed_verification_rolls_back(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    [ex] = w.remediator.on_alert(firing())
    final = w.store.get(ex.id)
    assert final is not None and final.state is State.ROLLED_BACK
    assert w.admin.acted == ["/admin/providers/pv3/isolate", "/admin/providers/pv3/restore"]
    assert "did not hold within 60s" in final.reason
    assert any("rolled_back" in n for n in w.notes)


def test_a_failing_step_fails_the_execution_and_rolls_back(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    w.admin.fail_paths.add("/admin/providers/pv3/isolate")
    [ex] = w.remediator.on_alert(firing())
    final = w.store.get(ex.id)
    assert final is not None and final.state is State.ROLLED_BACK
    assert "step 'isolate' failed" in final.reason


def test_on_resolved_restores_with_a_canary(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    w.querier.holding.add(VERIFY)
    w.remediator.on_alert(firing())
    w.remediator.on_alert(resolved())
    w.remediator.on_alert(resolved())  # a repeated resolve does not restore twice
    restores = [c for c in w.admin.calls if c[0].endswith("/restore")]
    assert len(restores) == 1 and restores[0][2] == {"canary_percent": 10}


def test_shadow_mode_plans_and_records_but_calls_nothing(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE.replace("mode: auto", "mode: shadow"))
    [ex] = w.remediator.on_alert(firing())
    assert ex.state is State.SHADOWED
    assert "would have done: provider.isolate {'region': 'eu', 'provider': 'pv3'}" in ex.reason
    assert w.admin.calls == []
    assert any("shadowed" in n for n in w.notes)


def test_blast_radius_refusal_is_recorded_with_its_reason(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    w.fleet["value"] = Fleet(
        providers={"eu": frozenset(f"pv{i}" for i in range(8))},
        isolated={"eu": frozenset({"pv1", "pv2"})},
        healthy_regions=frozenset(),
    )
    [ex] = w.remediator.on_alert(firing())
    assert ex.state is State.REFUSED
    assert "blast_radius: 3 providers would be isolated in eu, limit 2" in ex.reason
    assert w.admin.calls == []
    guard_events = [e.data for e in w.log.events(execution_id=ex.id) if e.kind == "guard"]
    assert {
        "guard": "blast_radius",
        "verdict": "refuse",
        "reason": "3 providers would be isolated in eu, limit 2",
    } in guard_events


def test_two_approvers_must_be_different_people(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE.replace("mode: auto", "mode: approval\napprovers: 2"))
    w.querier.holding.add(VERIFY)
    [ex] = w.remediator.on_alert(firing())
    assert ex.state is State.PENDING_APPROVAL and w.admin.calls == []
    w.remediator.approve(ex.id, "alice")
    with pytest.raises(RemediationError, match="cannot approve"):
        w.remediator.approve(ex.id, "alice")
    assert w.admin.calls == []
    w.remediator.approve(ex.id, "bob")
    final = w.store.get(ex.id)
    assert final is not None and final.state is State.SUCCEEDED
    assert [a["user"] for a in final.approvals] == ["alice", "bob"]
    with pytest.raises(RemediationError, match="not pending"):
        w.remediator.approve(ex.id, "carol")  # single use


def test_approvals_expire_and_rejections_stick(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE.replace("mode: auto", "mode: approval\napproval_timeout: 5m"))
    [first] = w.remediator.on_alert(firing("a"))
    w.clock.now += 301
    w.remediator.tick()
    assert (w.store.get(first.id) or first).state is State.EXPIRED
    with pytest.raises(RemediationError):
        w.remediator.approve(first.id, "alice")
    [second] = w.remediator.on_alert(firing("b", provider="pv5"))
    w.remediator.reject(second.id, "alice", "not now")
    assert (w.store.get(second.id) or second).state is State.REJECTED
    assert w.admin.calls == []


def approved(world: Any, provider: str, deadline: float) -> Any:
    """As a process killed between the last approval and the launch leaves an execution."""
    ex = world.store.create(
        runbook="isolate-provider",
        mode="approval",
        state=State.PENDING_APPROVAL,
        target_key=f"provider/eu/{provider}",
        trigger="alert",
        labels={**LABELS, "provider": provider},
        requested_by="controlplane",
        deadline=deadline,
    )
    for who in ("alice", "bob"):
        world.store.add_approval(ex.id, who, 2)
    return ex


def test_a_restart_launches_what_was_fully_approved_once_unless_expired(make_world: Any) -> None:
    w = make_world(
        DESIGN_EXAMPLE.replace("mode: auto", "mode: approval\napprovers: 2").replace(
            "max_concurrent: 1", "max_concurrent: 2"
        )
    )
    w.querier.holding.add(VERIFY)
    ready = approved(w, "pv3", deadline=w.clock.now + 600)
    late = approved(w, "pv5", deadline=w.clock.now - 1)
    restarted = w.rebuild()
    assert restarted.resume() == [ready.id]
    restarted.tick()
    assert (w.store.get(ready.id) or ready).state is State.SUCCEEDED
    assert (w.store.get(late.id) or late).state is State.EXPIRED  # a stale decision is not run
    assert w.rebuild().resume() == []  # launched once
    assert w.admin.acted == ["/admin/providers/pv3/isolate"]
    assert kinds(w, ready.id).count("running") == 1
    # or the last approver, whose call failed with the process, approves again: that launches
    retried = approved(w, "pv4", deadline=w.clock.now + 600)
    assert restarted.approve(retried.id, "bob").state is State.SUCCEEDED
    with pytest.raises(RemediationError, match="not pending approval"):
        restarted.approve(retried.id, "bob")  # single use still
    assert kinds(w, retried.id).count("approved") == 0  # recorded by store.add_approval above


def test_budget_exhaustion_pauses_automation(make_world: Any) -> None:
    w = make_world(
        DESIGN_EXAMPLE.replace("cooldown: 10m", "cooldown: 0s")
        .replace("max_concurrent: 1", "max_concurrent: 10")
        .replace(
            "max_isolated_providers: 2, max_isolated_fraction: 0.25", "max_isolated_providers: 8"
        ),
        budget=2,
    )
    w.querier.holding.add(VERIFY)
    started = [w.remediator.on_alert(firing(f"fp{i}", provider=f"pv{i}"))[0] for i in range(4)]
    states = [(w.store.get(e.id) or e).state for e in started]
    assert states[:2] == [State.SUCCEEDED, State.SUCCEEDED]
    assert states[2] is State.REFUSED
    assert w.switches.automation()[:2] == (True, "automation budget exceeded")
    assert states[3] is State.REFUSED
    last = w.store.get(started[3].id) or started[3]
    assert "kill_switch: automation is paused" in last.reason
    # a person can still act by hand
    manual = w.remediator.run_manual(
        w.remediator.runbooks["isolate-provider"].name,
        labels={"region": "eu", "provider": "pv7"},
        params={},
        user="alice",
    )
    assert (w.store.get(manual.id) or manual).state is State.SUCCEEDED


def test_resume_after_a_crash_resends_the_in_flight_step_with_the_same_key(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    w.querier.holding.add(VERIFY)
    # what a process killed after sending the isolate call but before recording it leaves behind
    ex = running(w, "isolate-provider")
    w.store.begin_step(ex.id, "steps", "isolate", "provider.isolate")
    w.admin.seen[f"{ex.id}:steps:isolate"] = {"ok": True}  # the aggregator did act on it
    w.admin.acted.append("/admin/providers/pv3/isolate")

    after_restart = w.rebuild()
    assert after_restart.resume() == [ex.id]
    final = w.store.get(ex.id)
    assert final is not None and final.state is State.SUCCEEDED
    assert w.admin.acted == ["/admin/providers/pv3/isolate"]  # acted once
    assert [c[1] for c in w.admin.calls] == [f"{ex.id}:steps:isolate"]
    assert "resumed" in kinds(w, ex.id)


def test_manual_runs_validate_params_and_dry_run_calls_nothing(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    with pytest.raises(RemediationError, match="unknown runbook"):
        w.remediator.run_manual("nope", labels={}, params={}, user="alice")
    with pytest.raises(RemediationError, match="unknown"):
        w.remediator.run_manual("isolate-provider", labels={}, params={"x": 1}, user="alice")
    ex = w.remediator.run_manual(
        "isolate-provider",
        labels={"region": "eu", "provider": "pv1"},
        params={},
        user="alice",
        dry_run=True,
    )
    assert ex.state is State.SHADOWED and w.admin.calls == []


def test_a_refused_trigger_is_retried_later_in_the_same_episode(make_world: Any) -> None:
    w = make_world(DESIGN_EXAMPLE)
    w.querier.holding.add(VERIFY)
    w.fleet["value"] = Fleet(
        providers={"eu": frozenset(f"pv{i}" for i in range(8))},
        isolated={"eu": frozenset({"pv1", "pv2"})},
        healthy_regions=frozenset(),
    )
    [refused] = w.remediator.on_alert(firing())
    assert refused.state is State.REFUSED
    assert w.remediator.on_alert(firing()) == []  # not again at once
    w.clock.now += 31
    w.fleet["value"] = Fleet(
        providers={"eu": frozenset(f"pv{i}" for i in range(8))},
        isolated={},
        healthy_regions=frozenset(),
    )
    [retried] = w.remediator.on_alert(firing())
    assert (w.store.get(retried.id) or retried).state is State.SUCCEEDED


WAITING = """
name: isolate-and-watch
trigger: {alert: ProviderLaunchFailing}
mode: auto
steps:
  - id: isolate
    action: provider.isolate
    with: {region: "{{ $labels.region }}", provider: "{{ $labels.provider }}"}
  - id: settle
    action: wait
    with: {duration: 30s}
  - id: watch
    action: check
    with: {expr: 'healthy{region="eu"}', within: 20s}
"""


def test_a_resumed_wait_and_check_count_from_when_the_step_first_started(
    make_world: Any,
) -> None:
    w = make_world(WAITING)
    ex = running(w, "isolate-and-watch")
    w.store.begin_step(ex.id, "steps", "isolate", "provider.isolate")
    w.store.finish_step(ex.id, "steps", "isolate", ok=True, result={})
    w.store.begin_step(ex.id, "steps", "settle", "wait")  # the process dies 20 s into the wait
    w.clock.now += 20

    resumed_at = w.clock.now
    assert w.rebuild().resume() == [ex.id]
    settle = w.store.step(ex.id, "steps", "settle")
    assert settle is not None and settle.result["waited_s"] == pytest.approx(10, abs=0.01)
    # the check never held: it gave up after its own 20 s window, which began after the wait
    final = w.store.get(ex.id)
    assert final is not None and final.state is State.FAILED
    assert w.clock.now - resumed_at == pytest.approx(30, abs=2)
    assert w.admin.acted == []  # the isolate step was done before the crash: not sent again


def test_a_check_resumed_after_its_window_still_looks_once(make_world: Any) -> None:
    w = make_world(WAITING)
    w.querier.holding.add('healthy{region="eu"}')
    ex = running(w, "isolate-and-watch")
    for step, action in (("isolate", "provider.isolate"), ("settle", "wait")):
        w.store.begin_step(ex.id, "steps", step, action)
        w.store.finish_step(ex.id, "steps", step, ok=True, result={})
    w.store.begin_step(ex.id, "steps", "watch", "check")
    w.clock.now += 600  # down for ten minutes, far past the 20 s window

    assert w.rebuild().resume() == [ex.id]
    final = w.store.get(ex.id)
    assert final is not None and final.state is State.SUCCEEDED
    assert w.querier.asked.count('healthy{region="eu"}') == 1
