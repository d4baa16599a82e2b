"""Panels of the incident pages, as pure functions of the data: the list of incidents, one
incident's header, its chronological event table and the error budget each SLO lost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_mantine_components as dmc

from dashboards import text
from dashboards.incident_budget import SPENT, BudgetUse
from dashboards.incident_lanes import LANES, Entry, Tone
from dashboards.incidents import Incident, IncidentDetail, IncidentRow
from dashboards.panels import anchor, badge, empty, scroll, severity_badge, stat, table

TONE_COLOURS = {
    Tone.BAD: "red",
    Tone.WARN: "orange",
    Tone.GOOD: "green",
    Tone.INFO: "blue",
    Tone.PENDING: "yellow",
    Tone.NEUTRAL: "gray",
    Tone.FAULT: "violet",
}


def incident_path(incident_id: str) -> str:
    return f"/incidents/{incident_id}"


def status_badge(incident: Incident) -> dmc.Badge:
    if incident.ongoing:
        return badge("ongoing", "red", variant="filled")
    return badge("resolved", "green")


def duration(incident: Incident) -> str:
    took = text.duration(incident.duration_ms / 1000)
    return f"{took} so far" if incident.ongoing else took


def instance(use: BudgetUse) -> str:
    """`launches/launch-success eu`"""
    return " ".join([f"{use.slo.service}/{use.slo.name}", *use.labels.values()])


def spent(use: BudgetUse | None) -> str:
    """`launches/launch-success eu: 1,908%` of its window's budget."""
    if use is None or use.consumed is None:
        return "none lost"
    return f"{instance(use)}: {_points(use.consumed)}"


def _points(share: float | None) -> str:
    """A share of the budget in percent; an incident may burn many times a window's budget."""
    if share is None:
        return "-"
    return f"{share * 100:,.0f}%" if abs(share) >= 10 else f"{share * 100:.2f}%"


def incidents_table(rows: Sequence[IncidentRow], now_s: float, params: Mapping[str, str]) -> Any:
    if not rows:
        return empty("No page or ticket alert was pending or firing in this range.")
    return scroll(
        table(
            ["incident", "", "severity", "started (UTC)", "lasted", "alerts", "runs", "worst burn"],
            [
                [
                    anchor(r.incident.id, incident_path(r.incident.id), params),
                    status_badge(r.incident),
                    severity_badge(r.incident.severity),
                    dmc.Text(text.clock(r.incident.start_ms / 1000, now_s), size="sm"),
                    dmc.Text(
                        duration(r.incident), size="sm", fw=700 if r.incident.ongoing else 400
                    ),
                    dmc.Text(", ".join(r.incident.alerts), size="sm"),
                    dmc.Text(str(r.executions), size="sm"),
                    dmc.Text(spent(r.worst), size="sm"),
                ]
                for r in rows
            ],
            wrap=(5, 7),
        )
    )


def incident_header(detail: IncidentDetail, params: Mapping[str, str], asked: str = "") -> Any:
    """`asked`: the id in the link, when it named a minute inside the incident instead."""
    incident = detail.incident
    own = asked and asked != incident.id
    title = dmc.Group(
        [
            dmc.Title(f"Incident {incident.id}", order=2),
            status_badge(incident),
            severity_badge(incident.severity),
            anchor("its own link", incident_path(incident.id), params) if own else None,
            anchor("all incidents", "/incidents", params),
        ],
        gap="sm",
    )
    return dmc.Stack([title, _stats(detail)], gap="sm")


def _stats(detail: IncidentDetail) -> dmc.SimpleGrid:
    incident = detail.incident
    worst = next((u for u in detail.uses if (u.consumed or 0) > SPENT), None)
    ended = "still going" if incident.ongoing else text.utc(incident.end_ms / 1000)
    started = text.utc(incident.start_ms / 1000, seconds=False)
    return dmc.SimpleGrid(
        [
            stat("started", started[11:], f"{started[:10]}, the first alert's start"),
            stat("lasted", duration(incident), f"ended: {ended}"),
            stat("alerts", str(len(incident.alerts)), ", ".join(incident.alerts)),
            stat("runbook runs", str(len(detail.executions)), "created while it lasted"),
            stat(
                "worst burn",
                _points(worst.consumed) if worst else "none",
                f"of {instance(worst)}'s budget" if worst else "no SLO lost budget",
            ),
        ],
        cols={"base": 1, "sm": 3, "md": 5},
        spacing="sm",
    )


def events_table(entries: Sequence[Entry], now_s: float) -> Any:
    if not entries:
        return empty("Nothing was recorded around this incident.")
    return scroll(
        table(
            ["at (UTC)", "lane", "what", "who"],
            [
                [
                    dmc.Text(text.clock(e.at_ms / 1000, now_s), size="xs", ff="monospace"),
                    badge(LANES.get(e.lane, e.lane), TONE_COLOURS[e.tone]),
                    dmc.Text(e.what, size="sm"),
                    dmc.Text(e.who, size="sm", c="dimmed"),
                ]
                for e in entries
            ],
            wrap=(2,),
        )
    )


def budget_table(uses: Sequence[BudgetUse], params: Mapping[str, str]) -> Any:
    if not uses:
        return empty("No SLO recorded an error budget over this incident.")
    return scroll(
        table(
            ["SLO", "instance", "left at the start", "left at the end", "lost"],
            [
                [
                    anchor(
                        f"{u.slo.service} / {u.slo.name}",
                        f"/slos/{u.slo.id}",
                        {**params, **u.labels},
                    ),
                    dmc.Text(text.labels(u.labels), size="sm"),
                    dmc.Text(_percent(u.before), size="sm"),
                    dmc.Text(
                        _percent(u.after), size="sm", **({"c": "red"} if _out(u.after) else {})
                    ),
                    dmc.Text(_points(u.consumed), size="sm", fw=700 if _lost(u) else 400),
                ]
                for u in uses
            ],
        )
    )


def _percent(share: float | None) -> str:
    return "-" if share is None else _points(share)


def _out(share: float | None) -> bool:
    return share is not None and share <= 0


def _lost(use: BudgetUse) -> bool:
    return use.consumed is not None and use.consumed > SPENT
