"""Incidents: the definition over made-up episodes, then the scenario's two incidents (10:18,
resolved; 11:15, ongoing) with every lane, the budget they burnt and the timeline figure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from flask import Flask

from controlplane.errors import QueryError
from controlplane.model.series import Series, labels_from
from controlplane.promql.results import QueryResult
from controlplane.rules.alerting import Alert, AlertState
from dashboards import (
    activity,
    incident_budget,
    incident_panels,
    incidents,
    panels,
    queries,
    timeline,
)
from dashboards.incident_lanes import Tone
from dashboards.incidents import Episode, IncidentDetail
from dashboards.reads import ReadModels
from dashboards.view import View, Window
from tests.dashboards.scenario import END_MS, INCIDENT_MS, START_MS

MINUTE = 60_000
NOW_ID, EARLY_ID = "20260302-1115", "20260302-1018"


def ms(hh_mm: str) -> int:
    hours, minutes = (int(x) for x in hh_mm.split(":"))
    return round(datetime(2026, 3, 2, hours, minutes, tzinfo=UTC).timestamp() * 1000)


def episode(name: str, start: str, end: str, **labels: str) -> Episode:
    return Episode(
        labels={"alertname": name, "severity": "page", **labels}, start_ms=ms(start), end_ms=ms(end)
    )


def test_alerts_less_than_the_gap_apart_are_one_incident_named_by_its_first_minute() -> None:
    found = incidents.incidents_of(
        [
            episode("B", "10:05", "10:20"),
            episode("A", "10:00", "10:10"),
            episode("A", "10:29", "10:40"),  # 9 minutes after B: the same incident
            episode("C", "10:51", "11:00"),  # 11 minutes after: a new one
        ]
    )
    assert [(i.id, i.alerts) for i in found] == [
        ("20260302-1000", ("A", "B")),
        ("20260302-1051", ("C",)),
    ]
    assert found[0].duration_ms == 40 * MINUTE and not found[0].ongoing
    assert incidents.parse_id("20260302-1051") == ms("10:51")
    assert incidents.parse_id("2026-03-02") is None and incidents.parse_id("") is None


def test_an_episode_starts_at_its_active_at_whatever_the_step() -> None:
    active_s = ms("10:03") / 1000 + 17
    grid = np.arange(ms("10:10"), ms("10:40") + 1, 10 * MINUTE, dtype=np.int64)
    series = Series(
        labels=labels_from({"__name__": "ALERTS_FOR_STATE", "alertname": "A", "severity": "page"}),
        timestamps=grid,
        values=np.full(grid.shape, active_s),
    )
    (found,) = incidents.episodes_of([series], 10 * MINUTE, live_from=ms("10:40"))
    assert found.start_ms == round(active_s * 1000) and found.end_ms == ms("10:40")
    assert found.ongoing and found.labels == {"alertname": "A", "severity": "page"}
    assert incidents.incident_id(found.start_ms) == "20260302-1003"


def test_alerts_firing_now_extend_their_episode_or_add_one() -> None:
    recorded = [episode("A", "10:00", "10:30", region="eu")]

    def alert(name: str, at: str, severity: str = "page") -> Alert:
        labels = {"alertname": name, "severity": severity, "region": "eu"}
        return Alert(
            rule=name,
            expr="x",
            labels=labels_from(labels),
            annotations=(),
            state=AlertState.FIRING,
            value=1.0,
            active_at_ms=ms(at),
        )

    now = ms("10:45")
    found = incidents.with_current(
        recorded,
        [alert("A", "10:00"), alert("External", "10:40"), alert("Info", "10:41", "info")],
        until_ms=now,
        now_ms=now,
    )
    assert [(e.name, e.end_ms, e.ongoing) for e in found] == [
        ("A", now, True),
        ("External", now, True),  # from outside: no ALERTS series, still part of it
    ]


def test_an_alert_with_no_series_still_gets_its_span(reads: ReadModels) -> None:
    external = episode("Upstream", "11:20", "12:00", region="eu")
    incident = incidents.incidents_of([external])[0]
    window = Window(start_ms=ms("11:10"), end_ms=END_MS, step_ms=60_000)
    (span,) = incidents._alert_spans(reads, incident, window, None)
    assert (span.row, span.start_ms, span.end_ms, span.who) == (
        "Upstream eu (page)",
        ms("11:20"),
        END_MS,
        "external",
    )


def test_the_queries_take_the_extreme_over_a_step_past_the_lookback() -> None:
    assert queries.alert_active_at(["page"], 60_000) == 'ALERTS_FOR_STATE{severity=~"page"}'
    assert queries.alert_states(["page", "ticket"], 600_000) == (
        'max_over_time(ALERTS{severity=~"page|ticket"}[600s])'
    )
    region, wallet = queries.faults_active(3_600_000)
    assert region == "max_over_time(casino_faults_active[3600s]) > 0"
    assert wallet.startswith("max_over_time(casino_wallet_faults_active[3600s])")


@pytest.mark.parametrize("rng", ["6h", "24h", "7d", "30d"])
def test_the_scenario_has_two_incidents_with_the_same_ids_from_any_range(
    reads: ReadModels, rng: str
) -> None:
    rows, problems = incidents.incident_rows(reads, View(range=rng).window(END_MS))
    assert problems == ()
    assert [r.incident.id for r in rows] == [NOW_ID, EARLY_ID]  # the newest first
    ongoing, early = rows
    assert ongoing.incident.ongoing and ongoing.incident.start_ms == INCIDENT_MS
    assert ongoing.incident.alerts == (
        "ProviderFailing",
        "LaunchSuccessBudgetBurn",
        "WalletRetryQueueGrowing",
    )
    assert ongoing.executions == 5  # 11:17, 11:24, bob's dry run, the drain, the replay
    assert ongoing.worst is not None and ongoing.worst.slo.id == "launches-launch-success"
    assert dict(ongoing.worst.labels) == {"region": "eu"}
    assert not early.incident.ongoing and early.incident.alerts == ("ProviderFailing",)
    assert 5 * MINUTE <= early.incident.duration_ms <= 18 * MINUTE  # 8m, to the range's step
    assert early.executions == 1 and early.worst is None  # netent: no SLO lost budget


@pytest.fixture(scope="module")
def ongoing(reads: ReadModels) -> IncidentDetail:
    detail, problem = incidents.incident_detail(reads, NOW_ID)
    assert problem is None and detail is not None and detail.problems == ()
    return detail


def test_a_link_finds_the_incident_by_its_id_or_any_minute_inside_it(reads: ReadModels) -> None:
    inside, _ = incidents.incident_detail(reads, "20260302-1140")
    assert inside is not None and inside.incident.id == NOW_ID
    assert incidents.incident_detail(reads, "20260302-1100") == (None, None)  # between the two
    assert incidents.incident_detail(reads, "not-an-id") == (None, None)
    assert incidents.incident_detail(reads, "20990101-0000") == (None, None)  # the future


def links(component: Any) -> Iterator[tuple[Any, str]]:
    href = getattr(component, "href", None)
    if href:
        yield component.children, href
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, str):
            yield from links(child)


def test_the_alerts_table_links_each_alert_to_its_incident(
    scenario: tuple[Flask, ReadModels],
) -> None:
    app, reads = scenario
    rows, _ = activity.current_alerts(reads)
    with app.test_request_context("/dash/"):
        found = [
            h
            for text, h in links(panels.alerts_table(rows, 0, {"range": "6h"}))
            if text == "incident"
        ]
    assert len(found) == 4  # every alert is a page or a ticket
    for href in found:
        path = urlsplit(href).path
        assert path.startswith("/dash/incidents/") and urlsplit(href).query == "range=6h"
        detail, _ = incidents.incident_detail(reads, path.rsplit("/", 1)[1])
        assert detail is not None and detail.incident.id == NOW_ID


def test_every_lane_of_the_ongoing_incident(ongoing: IncidentDetail) -> None:
    lanes = ongoing.lanes
    assert lanes.with_data() == [
        "faults",
        "alerts",
        "executions",
        "guards",
        "verification",
        "approvals",
        "notifications",
        "automation",
    ]
    rows = dict.fromkeys(row for _lane, row in lanes.rows())
    assert list(rows)[:6] == [
        "eu: provider_down",
        "wallet: wallet_timeout",
        "ProviderFailing eu/evolution (page)",
        "LaunchSuccessBudgetBurn eu (ticket)",
        "LaunchSuccessBudgetBurn eu (page)",
        "WalletRetryQueueGrowing eu (ticket)",
    ]
    failing = sorted(
        (s for s in lanes.spans if s.row == "ProviderFailing eu/evolution (page)"),
        key=lambda s: s.start_ms,
    )
    assert [(s.tone, s.start_ms) for s in failing] == [
        (Tone.PENDING, INCIDENT_MS),
        (Tone.BAD, INCIDENT_MS + 2 * MINUTE),
    ]
    assert failing[1].ongoing and failing[1].end_ms == END_MS
    (refusal,) = [m for m in lanes.marks if m.lane == "guards"]
    assert "cooldown" in refusal.what and refusal.at_ms == INCIDENT_MS + 9 * MINUTE
    (approval,) = [m for m in lanes.marks if m.lane == "approvals" and m.tone is Tone.GOOD]
    assert (approval.who, approval.what) == ("carol", "drain-region on eu: approved (1 of 2)")
    assert len([m for m in lanes.marks if m.lane == "notifications"]) == 3
    assert ongoing.window.start_ms < INCIDENT_MS and ongoing.window.end_ms == END_MS


def test_the_event_table_tells_it_in_order(ongoing: IncidentDetail) -> None:
    entries = ongoing.lanes.entries()
    assert [e.at_ms for e in entries] == sorted(e.at_ms for e in entries)
    first = [(e.lane, e.what) for e in entries[:3]]
    assert first == [
        ("faults", "fault provider_down active in eu"),
        ("alerts", "ProviderFailing eu/evolution (page) pending"),
        ("alerts", "ProviderFailing eu/evolution (page) firing"),
    ]
    said = [e.what for e in entries]
    held = 'verification held: casino:launch_success:ratio_rate1m{region="eu"} > 0.99'
    assert f"isolate-provider on eu/evolution: {held}" in said
    assert "drain-region on latam: run by bob (dry run)" in said
    assert not any("resolved" in w for w in said)  # nothing resolved yet: it goes on


def test_the_resolved_incident_says_when_it_ended(reads: ReadModels) -> None:
    detail, _ = incidents.incident_detail(reads, EARLY_ID)
    assert detail is not None and not detail.incident.ongoing
    assert detail.lanes.with_data() == [
        "faults",
        "alerts",
        "executions",
        "verification",
        "notifications",
    ]
    said = [(e.lane, e.what, e.tone) for e in detail.lanes.entries()]
    assert ("alerts", "ProviderFailing eu/netent (page) resolved", Tone.GOOD) in said
    assert ("faults", "fault provider_errors over in eu", Tone.GOOD) in said
    rollback = "isolate-provider: rollback step restore (provider.restore) done"
    assert ("executions", rollback, Tone.GOOD) in said
    assert detail.incident.end_ms < START_MS + 27 * MINUTE
    assert all((u.consumed or 0) <= incident_budget.SPENT for u in detail.uses)


def test_the_budget_each_slo_lost(ongoing: IncidentDetail) -> None:
    worst, *rest = ongoing.uses
    assert (worst.slo.id, dict(worst.labels)) == ("launches-launch-success", {"region": "eu"})
    assert worst.before is not None and worst.after is not None
    assert worst.before > 0.5 > 0 > worst.after  # it burnt more than it had left
    assert worst.consumed == pytest.approx(worst.before - worst.after)
    assert all((u.consumed or 0) <= (worst.consumed or 0) for u in rest)
    assert len(ongoing.uses) == 8  # every SLO instance, even those that lost nothing
    assert incident_panels.spent(worst).startswith("launches/launch-success eu: ")


def test_the_timeline_has_every_row_and_the_budget_on_one_axis(ongoing: IncidentDetail) -> None:
    fig = timeline.timeline_figure(ongoing)
    shown = list(fig.layout.yaxis.ticktext)
    for _lane, row in ongoing.lanes.rows():
        assert row in shown
    assert "<b>ALERTS</b>" in shown and shown.index("<b>ALERTS</b>") < shown.index(
        "ProviderFailing eu/evolution (page)"
    )
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(len(t.y) for t in bars) == len(ongoing.lanes.spans)
    marks = [t for t in fig.data if t.type == "scatter" and t.yaxis == "y"]
    assert sum(len(t.y) for t in marks) == len(ongoing.lanes.marks)
    budget = [t for t in fig.data if t.yaxis == "y2"]
    assert budget[0].name == "launches/launch-success region=eu"
    assert budget[0].y[0] == pytest.approx(0) and budget[0].y[-1] > 100  # % of the budget
    assert fig.layout.xaxis2.matches == "x" or fig.layout.xaxis.matches == "x2"
    assert timeline.timeline_figure(ongoing).to_json() == fig.to_json()  # pure


def test_a_failing_querier_is_a_problem_not_an_exception(reads: ReadModels) -> None:
    class Down:
        def instant(self, expr: str, time_ms: int) -> QueryResult:
            raise QueryError("remote Prometheus unavailable")

        range = lambda self, *a: self.instant("", 0)  # noqa: E731

    down = dataclasses.replace(reads, querier=Down())
    window = Window(start_ms=START_MS, end_ms=END_MS, step_ms=60_000)
    assert incidents.incident_rows(down, window) == (
        [],
        ("cannot read the alerts: remote Prometheus unavailable",),
    )
    assert incidents.incident_detail(down, NOW_ID) == (
        None,
        "cannot read the alerts: remote Prometheus unavailable",
    )
