"""Recovery beyond the crash matrix: guards met again on resume, the episode across a restart,
which alerts the restart's reconciliation may judge, and the crash hook's syntax."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from controlplane.rules.group import GroupStatus
from controlplane.rules.load import parse_text
from controlplane.runbooks import crashpoint
from controlplane.runbooks.engine import Remediator
from controlplane.runbooks.recovery import settled_alerts
from controlplane.runbooks.store import Resolution, State
from tests.controlplane.runbooks.conftest import FakeAdmin
from tests.controlplane.runbooks.crashes import (
    LABELS,
    RUNBOOKS,
    T0,
    CrashAt,
    Plant,
    SimulatedCrash,
    alert,
    fail_verification,
)

ISOLATE = RUNBOOKS["isolate-provider"]


@pytest.fixture
def plant(tmp_path: Path, admin: FakeAdmin) -> Plant:
    return Plant(path=tmp_path / "cp.db", admin=admin)


def crashed(plant: Plant, point: str, *, resolve: bool = False) -> Remediator:
    """Fire isolate-provider (and resolve it), the process dying at `point`; the restart."""
    remediator = plant.process(CrashAt(crashpoint.parse(point)))
    with pytest.raises(SimulatedCrash):
        remediator.on_alert(alert(ISOLATE, firing=True, at=T0))
        if resolve:
            remediator.on_alert(alert(ISOLATE, firing=False, at=T0))
    plant.clock.now += 60
    return plant.process()


def guard_events(plant: Plant, execution_id: str) -> list[dict[str, object]]:
    return [
        dict(e.data)
        for e in plant.log.events(execution_id=execution_id)
        if e.kind == "guard" and e.data.get("on") == "resume"
    ]


def test_a_kill_switch_set_while_down_aborts_the_resumed_execution(plant: Plant) -> None:
    restarted = crashed(plant, "steps:isolate:started")
    plant.switches.set_automation(paused=True, reason="incident review", by="alice")
    restarted.resume()

    [ex] = plant.store.find()
    assert ex.state is State.ABORTED
    assert ex.reason == "aborted on resume: kill_switch: automation is paused: incident review"
    assert plant.admin.calls == []  # the in-flight isolate was not sent again
    assert {"guard": "kill_switch", "verdict": "refuse"}.items() <= guard_events(plant, ex.id)[
        0
    ].items()
    assert any("aborted" in note for note in plant.notes)
    # its alert's episode still ends once, with nothing to follow up
    restarted.on_alert(alert(ISOLATE, firing=False, at=T0))
    assert (plant.store.get(ex.id) or ex).resolution is Resolution.DONE
    assert plant.admin.calls == []
    assert plant.log.verify().ok


def test_a_maintenance_window_set_while_down_stops_a_resumed_on_resolved(plant: Plant) -> None:
    restarted = crashed(plant, "resolution:on_resolved:after", resolve=True)
    plant.switches.add_maintenance(
        matchers={"region": "eu"},
        starts_at=plant.clock.now - 1,
        ends_at=plant.clock.now + 3600,
        reason="provider upgrade",
        by="bob",
    )
    restarted.resume()

    [ex] = plant.store.find()
    assert ex.state is State.SUCCEEDED  # the remediation itself stands
    assert ex.resolution is Resolution.ABORTED
    assert plant.admin.acted == ["/admin/providers/pv3/isolate"]  # no canary restore
    assert [e.data for e in plant.log.events(execution_id=ex.id) if e.kind == "on_resolved"] == [
        {
            "ok": False,
            "failed_step": None,
            "resolution": "aborted",
            "reason": "aborted on resume: maintenance: provider/eu/pv3 is in maintenance "
            f"window {plant.switches.maintenance_windows()[0]['id']} until "
            f"{plant.clock.now + 3600:.0f}: provider upgrade",
        }
    ]
    assert any("on_resolved aborted" in note for note in plant.notes)


def test_a_rollback_resumed_into_the_kill_switch_stops_where_it_is(plant: Plant) -> None:
    fail_verification(plant, ISOLATE)
    restarted = crashed(plant, "state:rolling_back:after")
    assert [e.state for e in plant.store.find()] == [State.ROLLING_BACK]
    plant.switches.set_automation(paused=True, reason="hands off", by="alice")
    restarted.resume()

    [ex] = plant.store.find()
    assert ex.state is State.ABORTED and "kill_switch" in ex.reason
    assert plant.admin.acted == ["/admin/providers/pv3/isolate"]


def test_the_kill_switch_does_not_stop_a_resumed_manual_run(plant: Plant) -> None:
    first = plant.process(CrashAt(("steps", "isolate", "started")))
    with pytest.raises(SimulatedCrash):
        first.run_manual("isolate-provider", labels=LABELS, params={}, user="alice")
    plant.switches.set_automation(paused=True, reason="incident review", by="alice")
    plant.process().resume()

    [ex] = plant.store.find()
    assert ex.state is State.SUCCEEDED and ex.resolution is None  # no alert, no episode
    assert plant.admin.acted == ["/admin/providers/pv3/isolate"]
    assert [d["verdict"] for d in guard_events(plant, ex.id)] == ["pass", "pass"]


def test_only_the_restart_adopts_an_on_resolved_run_claimed_before_a_crash(plant: Plant) -> None:
    crashed(plant, "resolution:on_resolved:after", resolve=True)
    [ex] = plant.store.find()
    executor = plant.executor()
    # a follow-up that did not claim the run (a resolved event racing the executor's own
    # follow-up) leaves it to its claimant
    assert executor.follow_up(ISOLATE, ex.id) is Resolution.ON_RESOLVED
    assert plant.admin.acted == ["/admin/providers/pv3/isolate"]
    assert executor.follow_up(ISOLATE, ex.id, adopt=True) is Resolution.DONE
    restores = [c[2] for c in plant.admin.calls if c[0].endswith("/restore")]
    assert restores == [{"canary_percent": 10}, {"canary_percent": 100}]


def test_an_external_alert_is_left_to_its_resolved_event(plant: Plant) -> None:
    remediator = plant.process()
    external = replace(alert(ISOLATE, firing=True, at=T0), source="external")
    [ex] = remediator.on_alert(external)
    # not one of our rules: its absence from them says nothing about it
    assert remediator.reconcile(firing=set(), alertnames={"ProviderFailing"}) == []
    assert remediator.on_alert(replace(external, active_at=T0 + 60)) == []  # same episode
    remediator.on_alert(replace(external, firing=False))
    assert (plant.store.get(ex.id) or ex).resolution is Resolution.DONE
    restores = [path for path in plant.admin.acted if path.endswith("/restore")]
    assert restores == ["/admin/providers/pv3/restore"] * 2  # canary, then full


def test_a_refusal_does_not_hold_the_episode(plant: Plant) -> None:
    plant.switches.set_automation(paused=True, reason="night", by="alice")
    remediator = plant.process()
    [refused] = remediator.on_alert(alert(ISOLATE, firing=True, at=T0))
    assert refused.state is State.REFUSED and refused.resolution is None
    plant.switches.set_automation(paused=False, reason="", by="alice")
    plant.clock.now += 10
    [retried] = remediator.on_alert(alert(ISOLATE, firing=True, at=T0))
    assert (plant.store.get(retried.id) or retried).state is State.SUCCEEDED


RULES = """
groups:
  - name: fast
    interval: 10s
    rules:
      - alert: ProviderFailing
        expr: up == 0
      - record: job:up:sum
        expr: sum(up)
  - name: slow
    interval: 1m
    rules:
      - alert: RegionDown
        expr: up == 0
"""


def test_alerts_are_judged_only_after_their_group_evaluated_twice_since_the_start() -> None:
    fast, slow = (
        GroupStatus(group=g, interval_ms=g.interval_or(60_000), rules=())
        for g in parse_text(RULES, "rules.yml")
    )
    seen: dict[str, int] = {}

    def at(fast_ms: int | None, slow_ms: int | None) -> set[str]:
        groups = [
            replace(fast, last_evaluation_ms=fast_ms),
            replace(slow, last_evaluation_ms=slow_ms),
        ]
        return settled_alerts(groups, 100_000, seen)

    assert at(None, None) == set()
    assert at(95_000, 90_000) == set()  # evaluated before the start: the previous process
    assert at(105_000, None) == set()  # once
    assert at(115_000, 130_000) == {"ProviderFailing"}  # twice; only recording rules else
    assert at(125_000, 190_000) == {"ProviderFailing", "RegionDown"}


@pytest.mark.parametrize(
    ("env", "point"),
    [
        ({}, None),
        ({"CONTROLPLANE_CRASH_AT": "steps:isolate:after"}, None),  # not without the flag
        ({"CONTROLPLANE_TEST_HOOKS": "1"}, None),
        (
            {"CONTROLPLANE_TEST_HOOKS": "1", "CONTROLPLANE_CRASH_AT": "steps:isolate"},
            ("steps", "isolate", "before"),
        ),
        (
            {"CONTROLPLANE_TEST_HOOKS": "1", "CONTROLPLANE_CRASH_AT": "verify::"},
            ("verify", "", "before"),
        ),
    ],
)
def test_the_crash_hook_is_armed_only_in_tests(
    env: dict[str, str], point: tuple[str, str, str] | None
) -> None:
    hook = crashpoint.from_env(env)
    assert (hook is crashpoint.no_crash) is (point is None)
    if point is not None:
        assert crashpoint.parse(env["CONTROLPLANE_CRASH_AT"]) == point
        hook("steps", "other", "before")  # any other point passes


@pytest.mark.parametrize("spec", ["steps", ":isolate", "steps:isolate:during", "a:b:c:d"])
def test_a_malformed_crash_point_is_named(spec: str) -> None:
    with pytest.raises(ValueError, match="crash point"):
        crashpoint.parse(spec)
