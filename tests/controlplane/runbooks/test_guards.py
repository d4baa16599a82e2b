from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from controlplane.runbooks.actions import TargetKind
from controlplane.runbooks.guards import (
    Automation,
    Fleet,
    MaintenanceWindow,
    PastRun,
    Situation,
    Target,
    Verdict,
    allowed,
    evaluate,
)
from controlplane.runbooks.load import load_runbook
from controlplane.runbooks.model import Guards, Mode, Precondition, Runbook, Step, Throttle
from tests.controlplane.runbooks.test_load import DESIGN_EXAMPLE

NOW = 1_000_000.0
PV = Target(kind=TargetKind.PROVIDER, region="eu", provider="pv3")
FLEET = Fleet(
    providers={"eu": frozenset(f"pv{i}" for i in range(1, 9))},
    isolated={"eu": frozenset({"pv1"})},
    healthy_regions=frozenset({"eu", "latam"}),
)


@pytest.fixture
def isolate(tmp_path: Path) -> Runbook:
    path = tmp_path / "isolate.yaml"
    path.write_text(DESIGN_EXAMPLE)
    return load_runbook(path)


def refused(decisions: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {d.guard: d.reason for d in decisions if d.verdict is Verdict.REFUSE}


def test_everything_passes_on_a_quiet_day(isolate: Runbook) -> None:
    decisions = evaluate(isolate, PV, Situation(now=NOW, fleet=FLEET), automated=True)
    assert allowed(decisions), refused(decisions)
    assert {d.guard for d in decisions} >= {
        "kill_switch",
        "maintenance",
        "budget",
        "cooldown",
        "max_concurrent",
        "throttle",
        "blast_radius",
    }


@pytest.mark.parametrize(
    ("situation", "guard", "reason"),
    [
        (
            Situation(
                now=NOW,
                fleet=FLEET,
                automation=Automation(paused=True, paused_reason="incident 42"),
            ),
            "kill_switch",
            "incident 42",
        ),
        (
            Situation(
                now=NOW,
                fleet=FLEET,
                maintenance=[
                    MaintenanceWindow(
                        id="mw1",
                        matchers={"region": "eu"},
                        starts_at=NOW - 10,
                        ends_at=NOW + 10,
                        reason="upgrade",
                    )
                ],
            ),
            "maintenance",
            "mw1",
        ),
        (
            Situation(now=NOW, fleet=FLEET, automated_action_times=[NOW - i for i in range(20)]),
            "budget",
            "budget exhausted",
        ),
        (
            Situation(
                now=NOW,
                fleet=FLEET,
                history=[
                    PastRun(
                        runbook="isolate-provider",
                        target_key=PV.key,
                        started_at=NOW - 60,
                        active=False,
                    )
                ],
            ),
            "cooldown",
            "cooldown 600s",
        ),
        (
            Situation(
                now=NOW,
                fleet=FLEET,
                history=[
                    PastRun(
                        runbook="isolate-provider",
                        target_key="provider/eu/pv7",
                        started_at=NOW - 5,
                        active=True,
                    )
                ],
            ),
            "max_concurrent",
            "1 running, limit 1",
        ),
        (
            Situation(now=NOW, fleet=replace(FLEET, isolated={"eu": frozenset({"pv1", "pv2"})})),
            "blast_radius",
            "3 providers would be isolated in eu, limit 2",
        ),
    ],
)
def test_each_guard_refuses_with_its_reason(
    isolate: Runbook, situation: Situation, guard: str, reason: str
) -> None:
    decisions = evaluate(isolate, PV, situation, automated=True)
    assert not allowed(decisions)
    assert reason in refused(decisions)[guard]


def test_expired_maintenance_and_other_targets_do_not_block(isolate: Runbook) -> None:
    windows = [
        MaintenanceWindow(id="old", matchers={}, starts_at=NOW - 100, ends_at=NOW - 1),
        MaintenanceWindow(
            id="latam", matchers={"region": "latam"}, starts_at=NOW - 1, ends_at=NOW + 99
        ),
    ]
    assert allowed(
        evaluate(isolate, PV, Situation(now=NOW, fleet=FLEET, maintenance=windows), automated=True)
    )


def test_manual_runs_ignore_the_kill_switch_but_not_maintenance(isolate: Runbook) -> None:
    paused = Situation(now=NOW, fleet=FLEET, automation=Automation(paused=True))
    assert allowed(evaluate(isolate, PV, paused, automated=False))


def test_fraction_limit_counts_the_provider_about_to_go(isolate: Runbook) -> None:
    small = Fleet(
        providers={"eu": frozenset({"a", "b", "c", "pv3"})},
        isolated={},
        healthy_regions=frozenset(),
    )
    reasons = refused(evaluate(isolate, PV, Situation(now=NOW, fleet=small), automated=True))
    assert "1/4 providers" not in reasons.get("blast_radius", "")
    smaller = replace(small, providers={"eu": frozenset({"a", "pv3"})})
    reasons = refused(evaluate(isolate, PV, Situation(now=NOW, fleet=smaller), automated=True))
    assert "1/2 providers would be isolated in eu, limit 25%" in reasons["blast_radius"]


def _drain(guards: Guards | None = None) -> Runbook:
    return Runbook(
        name="drain-region",
        description="",
        path="x",
        mode=Mode.AUTO,
        trigger=None,
        guards=guards or Guards(),
        steps=(Step(id="d", action="region.drain", params={}),),
    )


def test_never_drains_the_last_healthy_region() -> None:
    eu = Target(kind=TargetKind.REGION, region="eu")
    two = Situation(now=NOW, fleet=Fleet(healthy_regions=frozenset({"eu", "latam"})))
    assert allowed(evaluate(_drain(), eu, two, automated=True))
    one = Situation(now=NOW, fleet=Fleet(healthy_regions=frozenset({"eu"})))
    assert (
        "0 healthy regions would remain"
        in refused(evaluate(_drain(), eu, one, automated=True))["blast_radius"]
    )
    # even when the region being drained is already unhealthy, the others must cover
    none_left = Situation(now=NOW, fleet=Fleet(healthy_regions=frozenset()))
    assert not allowed(evaluate(_drain(), eu, none_left, automated=False))


def test_throttle_and_preconditions() -> None:
    rb = _drain(
        Guards(
            throttle=Throttle(max_runs=2, window_s=3600),
            require=(Precondition(expr="wallet_ok > 0.99", reason="wallet healthy"),),
        )
    )
    eu = Target(kind=TargetKind.REGION, region="eu")
    fleet = Fleet(healthy_regions=frozenset({"eu", "latam"}))
    runs = [
        PastRun(
            runbook="drain-region",
            target_key=f"region/x{i}",
            started_at=NOW - 100 * i,
            active=False,
        )
        for i in range(1, 3)
    ]
    assert (
        "2 runs in the last 3600s"
        in refused(evaluate(rb, eu, Situation(now=NOW, fleet=fleet, history=runs), automated=True))[
            "throttle"
        ]
    )
    asked: list[str] = []
    decisions = evaluate(
        rb,
        eu,
        Situation(now=NOW, fleet=fleet),
        automated=True,
        holds=lambda e: asked.append(e) or False,
    )
    assert asked == ["wallet_ok > 0.99"]
    assert "refused: wallet healthy" in refused(decisions)["require"]
    # a run refused by a cheap guard never queries
    asked.clear()
    evaluate(
        rb,
        eu,
        Situation(now=NOW, fleet=fleet, history=runs),
        automated=True,
        holds=lambda e: asked.append(e) or True,
    )
    assert asked == []
