"""Every shipped runbook, killed at every point of an execution, finishes exactly once.

The cases are generated from `runbooks/*.yaml`: for each runbook, each outcome it can have
(verified, then its alert resolves; or verification failed, rolled back or failed), and each
crash point the executor passes on the way (around each approval an approval-mode runbook
waits for and its launch; before, started, acted, after of every step of steps, rollback and
on_resolved; around verification; around every state and resolution move). The crash is the executor's hook raising a BaseException nothing catches, in process;
"restarting" drops the Remediator and builds a new one on the same SQLite database, which
resumes. The aggregator is a fake at the HTTP boundary that answers a repeated
Idempotency-Key from memory (conftest.FakeAdmin). A crash before the alert resolved is tried
twice: the alert still firing after the restart (then resolving), and the alert resolved
while the control plane was down (the restart's reconciliation must notice). The approvers
approve as soon as it waits for them; after a restart, those whose approval the crash lost
(their call failed) approve again, and no one else: one that was recorded is not asked twice.

Asserted for each: one execution, in its expected final state, its episode `done`, launched
once, with each approver's approval recorded and audited once; each mutating step acted on once, under its own key, any resend under that same key; the steps of
the outcome's phases all done; on_resolved audited once; the audit chain intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.runbooks.actions import ACTIONS
from controlplane.runbooks.crashpoint import WHENS
from controlplane.runbooks.engine import Remediator
from controlplane.runbooks.model import Mode, Runbook, Step
from controlplane.runbooks.store import Resolution, State
from tests.controlplane.runbooks.conftest import FakeAdmin, served_admin
from tests.controlplane.runbooks.crashes import (
    RUNBOOKS,
    T0,
    CrashAt,
    Plant,
    Point,
    SimulatedCrash,
    alert,
    fail_verification,
)

pytestmark = pytest.mark.slow

APPROVERS = ("alice", "bob")  # distinct people, as many as a runbook asks for


@dataclass(frozen=True, kw_only=True)
class Case:
    runbook: str
    outcome: str  # succeeded | rolled_back | failed
    point: Point
    after_restart: str  # still_firing | resolved_while_down | resolved_before_crash

    @property
    def id(self) -> str:
        return f"{self.runbook}-{self.outcome}-{':'.join(self.point)}-{self.after_restart}"


def _around(phase: str, name: str) -> list[Point]:
    return [(phase, name, "before"), (phase, name, "after")]


def distinct(points: list[Point]) -> list[Point]:
    """The points in path order, without a `before` that directly follows an `after`: nothing
    is written between the two (`steps:tell:before` is `steps:isolate:after`)."""
    return [
        point
        for i, point in enumerate(points)
        if not (i > 0 and point[2] == "before" and points[i - 1][2] == "after")
    ]


def approval_points(rb: Runbook) -> list[Point]:
    """Around each approval an approval-mode runbook waits for, then its launch."""
    if rb.mode is not Mode.APPROVAL:
        return []
    points = [p for n in range(1, rb.approvers + 1) for p in _around("approval", str(n))]
    return points + _around("state", "running")


def crash_points(rb: Runbook, outcome: str) -> tuple[list[Point], list[Point]]:
    """(points reached while the alert fires, points reached once it resolved), in the order
    an execution passes them."""
    firing = approval_points(rb) + [("steps", s.id, w) for s in rb.steps for w in WHENS]
    if rb.verify is not None:
        firing += _around("state", "verifying") + _around("verify", "")
    if outcome == "rolled_back":
        firing += _around("state", "rolling_back")
        firing += [("rollback", s.id, w) for s in rb.rollback for w in WHENS]
    firing += _around("state", outcome)
    resolved = _around("resolution", "resolved")
    if outcome == "succeeded" and rb.on_resolved:
        resolved += _around("resolution", "on_resolved")
        resolved += [("on_resolved", s.id, w) for s in rb.on_resolved for w in WHENS]
        resolved += _around("resolution", "done")
    else:
        resolved.append(("resolution", "done", "before"))  # closed without on_resolved
    return distinct(firing), distinct(resolved)


def outcomes(rb: Runbook) -> list[str]:
    if rb.verify is None:
        return ["succeeded"]
    return ["succeeded", "rolled_back" if rb.rollback else "failed"]


def cases() -> Iterator[Case]:
    for name, rb in sorted(RUNBOOKS.items()):
        for outcome in outcomes(rb):
            firing, resolved = crash_points(rb, outcome)
            for point in firing:
                for after in ("still_firing", "resolved_while_down"):
                    yield Case(runbook=name, outcome=outcome, point=point, after_restart=after)
            for point in resolved:
                yield Case(
                    runbook=name,
                    outcome=outcome,
                    point=point,
                    after_restart="resolved_before_crash",
                )


CASES = list(cases())


@pytest.fixture(scope="module")
def shared_admin() -> Iterator[FakeAdmin]:
    """One fake aggregator for the whole matrix (a server per case costs more than the case)."""
    with served_admin() as fake:
        yield fake


@pytest.fixture
def plant(tmp_path: Path, shared_admin: FakeAdmin) -> Plant:
    shared_admin.calls.clear()
    shared_admin.acted.clear()
    shared_admin.seen.clear()
    return Plant(path=tmp_path / "cp.db", admin=shared_admin)


def first_life(plant: Plant, rb: Runbook, case: Case) -> bool:
    """Fire, finish, resolve, with the crash armed; whether the resolved event got in."""
    crash = CrashAt(case.point)
    remediator = plant.process(crash)
    resolved_sent = False
    try:
        remediator.on_alert(alert(rb, firing=True, at=T0))
        approve_missing(plant, remediator, rb)
        plant.clock.now += 30
        resolved_sent = True
        remediator.on_alert(alert(rb, firing=False, at=T0))
    except SimulatedCrash:
        pass
    assert crash.fired, f"crash point {case.point} never reached"
    return resolved_sent


def approve_missing(plant: Plant, remediator: Remediator, rb: Runbook) -> None:
    """Each approver who has not approved yet does, while the execution waits for them."""
    if rb.mode is not Mode.APPROVAL:
        return
    for who in APPROVERS[: rb.approvers]:
        [ex] = plant.store.find()
        if ex.state is State.PENDING_APPROVAL and who not in {a["user"] for a in ex.approvals}:
            remediator.approve(ex.id, who)


def second_life(plant: Plant, rb: Runbook, case: Case) -> None:
    plant.clock.now += 120  # down for two minutes
    restarted = plant.process(deferred=True)
    restarted.resume()
    approve_missing(plant, restarted, rb)  # an approval the crash lost is given again
    assert rb.trigger is not None
    if case.after_restart == "resolved_while_down":
        # no resolved event will ever come: the restarted rule manager never saw it firing
        restarted.reconcile(firing=set(), alertnames={rb.trigger.alert})
        plant.drain()
        return
    if case.after_restart == "still_firing":
        # the rule manager starts the alert afresh: a new activeAt, the same fingerprint
        again = alert(rb, firing=True, at=plant.clock.now)
        assert restarted.on_alert(again) == []
        plant.drain()
        assert restarted.on_alert(again) == []
        restarted.reconcile(firing={again.fingerprint}, alertnames={rb.trigger.alert})
        plant.drain()
        [ex] = plant.store.find()
        assert ex.resolution is Resolution.AWAITING  # still firing: nothing followed up
        assert not [s for s in plant.store.steps_of(ex.id) if s.phase == "on_resolved"]
    restarted.on_alert(alert(rb, firing=False, at=plant.clock.now))  # or a resend of it
    plant.drain()


FOLLOWING = {"succeeded": "on_resolved", "rolled_back": "rollback"}  # outcome -> its phase


def phase_steps(rb: Runbook, outcome: str) -> list[tuple[str, Step]]:
    """The steps an execution with this outcome runs, with their phases."""
    steps = [("steps", s) for s in rb.steps]
    phase = FOLLOWING.get(outcome)
    return steps + [(phase, s) for s in getattr(rb, phase)] if phase else steps


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_crash_at_any_point_finishes_the_execution_and_its_follow_up_once(
    plant: Plant, case: Case
) -> None:
    rb = RUNBOOKS[case.runbook]
    if case.outcome != "succeeded":
        fail_verification(plant, rb)
    resolved_sent = first_life(plant, rb, case)
    assert resolved_sent is (case.after_restart == "resolved_before_crash")
    second_life(plant, rb, case)

    [ex] = plant.store.find()  # no second execution, not even a refused one
    assert ex.state is State(case.outcome), ex.reason
    assert ex.resolution is Resolution.DONE
    ran = phase_steps(rb, case.outcome)
    keys = [f"{ex.id}:{phase}:{s.id}" for phase, s in ran if ACTIONS[s.action].mutating]
    assert [key for _path, key, _body in plant.admin.calls if key not in plant.admin.seen] == []
    assert sorted(plant.admin.seen) == sorted(keys)  # each acted on once, under its own key
    assert len(plant.admin.acted) == len(keys)
    assert {key for _path, key, _body in plant.admin.calls} == set(keys)  # resends: same key
    steps = plant.store.steps_of(ex.id)
    assert all(s.state == "done" for s in steps), steps
    assert {(s.phase, s.step_id) for s in steps} == {(phase, s.id) for phase, s in ran}
    kinds = [e.kind for e in plant.log.events(execution_id=ex.id)]
    assert kinds.count("on_resolved") == (
        1 if case.outcome == "succeeded" and rb.on_resolved else 0
    )
    assert kinds.count(case.outcome) <= 1 and kinds.count("step") >= len(ran)
    assert kinds.count("running") == 1  # launched once
    if rb.mode is Mode.APPROVAL:  # no approval lost (it would be given twice), none extra
        assert [a["user"] for a in ex.approvals] == list(APPROVERS[: rb.approvers])
        assert kinds.count("approved") == rb.approvers
    assert plant.log.verify().ok


def test_the_matrix_covers_every_shipped_runbook_and_phase() -> None:
    """The generator itself: a runbook or phase left out would pass silently."""
    assert {c.runbook for c in CASES} == set(RUNBOOKS) != set()
    phases = {c.point[0] for c in CASES}
    assert {"steps", "verify", "state", "rollback", "on_resolved", "resolution"} <= phases
    # a shipped approval runbook: crashes around each approval and its launch
    approval = {c.point for c in CASES if RUNBOOKS[c.runbook].mode is Mode.APPROVAL}
    assert {("approval", "1", "before"), ("approval", "2", "after")} <= approval
    assert ("state", "running", "after") in approval
