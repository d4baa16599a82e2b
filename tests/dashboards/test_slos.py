"""SLO rows and detail, over the scenario's real rule output: eu launches burn and page."""

from __future__ import annotations

import math

import pytest

from controlplane.slo.status import AlertState, InstanceStatus
from dashboards import slos
from dashboards.reads import ReadModels
from dashboards.slos import Health
from dashboards.view import View
from tests.dashboards.scenario import END_MS


def test_the_burning_slo_comes_first_and_every_instance_is_there(reads: ReadModels) -> None:
    rows, problem = slos.slo_rows(reads, END_MS)
    assert problem is None
    assert len(rows) == 8  # 4 SLOs x 2 regions
    first = rows[0]
    assert (first.slo.id, dict(first.labels), first.health) == (
        "launches-launch-success",
        {"region": "eu"},
        Health.BURNING,
    )
    assert first.budget_remaining is not None and first.budget_remaining < 0
    page = next(p for p in first.pairs if p.severity == "page" and p.long == "1h")
    assert page.factor == pytest.approx(14.4) and page.breached
    lefts = [r.budget_remaining for r in rows]
    assert None not in lefts and lefts == sorted(x for x in lefts if x is not None)
    assert {r.health for r in rows[1:]} == {Health.OK}


def test_detail_counts_bad_events_and_draws_the_selected_instance(reads: ReadModels) -> None:
    slo = reads.slo("launches-launch-success")
    assert slo is not None
    window = View(range="1h").window(END_MS)
    detail = slos.slo_detail(reads, slo, {"region": "eu"}, window)
    assert detail.problems == ()
    assert detail.selected is not None and dict(detail.selected.labels) == {"region": "eu"}
    # 10 launches/s for two hours, ~0.5% of them allowed to fail
    assert detail.events == pytest.approx(2 * 3600 * 10 * 1.15, rel=0.1)
    assert detail.bad_events_left is not None and detail.bad_events_left < 0
    assert detail.exhaustion_s == 0.0  # already spent
    assert detail.sli is not None and min(detail.sli.values) < 0.9
    assert detail.budget is not None and detail.budget.values[-1] < 0
    assert {(a.name, a.severity) for a in detail.alerts} == {
        ("LaunchSuccessBudgetBurn", "page"),
        ("LaunchSuccessBudgetBurn", "ticket"),
    }
    latam = slos.slo_detail(reads, slo, {"region": "latam"}, window)
    assert latam.selected is not None and latam.selected.health is Health.OK
    assert latam.alerts == detail.alerts  # the SLO's alerts, whichever instance is shown


@pytest.mark.parametrize(
    ("remaining", "burn", "expected_s"),
    [
        (1.0, 14.4, 30 * 86_400 / 14.4),  # a fresh budget at 14.4x lasts about two days
        (0.5, 2.0, 30 * 86_400 / 3),
        (0.5, 1.0, math.inf),  # at exactly the allowed rate it never runs out
        (0.5, 0.2, math.inf),
        (-0.1, 5.0, 0.0),
        (None, 5.0, None),
    ],
)
def test_exhaustion_at_a_steady_burn(
    remaining: float | None, burn: float, expected_s: float | None
) -> None:
    assert slos.exhaustion_s(remaining, burn, 30 * 86_400) == pytest.approx(expected_s)


def status(**ratios: float) -> InstanceStatus:
    return InstanceStatus(labels={"region": "eu"}, error_ratio=ratios, budget_remaining=0.9)


@pytest.mark.parametrize(
    ("ratios", "alerts", "expected"),
    [
        ({"5m": 0.0, "1h": 0.0}, (), Health.OK),
        ({"5m": 0.1, "1h": 0.1}, (), Health.BURNING),  # 20x over both page windows
        ({"5m": 0.1, "1h": 0.01}, (), Health.OK),  # a short spike alone does not page
        ({"2h": 0.02, "1d": 0.02}, (), Health.WARNING),  # 4x over the 3x ticket pair
        ({}, (AlertState(severity="page", state="firing", active_at_ms=0),), Health.BURNING),
        ({}, (AlertState(severity="page", state="pending", active_at_ms=0),), Health.OK),
    ],
)
def test_health_follows_the_multiwindow_conditions(
    reads: ReadModels, ratios: dict[str, float], alerts: tuple[AlertState, ...], expected: Health
) -> None:
    slo = reads.slo("launches-launch-success")
    assert slo is not None
    instance = InstanceStatus(
        labels={"region": "eu"}, error_ratio=ratios, budget_remaining=0.9, alerts=alerts
    )
    (row,) = slos.rows_of(slo, [instance])
    assert row.health is expected


def test_an_slo_without_data_is_listed_as_such(reads: ReadModels) -> None:
    slo = reads.slos[0]
    (row,) = slos.rows_of(slo, [])
    assert row.health is Health.NO_DATA and row.budget_remaining is None
