"""SLO panels as pure functions: the SLO table of the overview and the SLO list, and the
cards and instance picker of one SLO's page."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dash_mantine_components as dmc

from dashboards import text
from dashboards.panels import anchor, badge, empty, scroll, stat, table
from dashboards.slos import BADGE_WINDOWS, Health, SLODetail, SLORow, window_text

HEALTH_COLOURS = {
    Health.BURNING: "red",
    Health.EXHAUSTED: "grape",
    Health.WARNING: "orange",
    Health.OK: "green",
    Health.NO_DATA: "gray",
}


def health_badge(health: Health) -> dmc.Badge:
    return badge(health.value, HEALTH_COLOURS[health], variant="filled")


def burn_badges(row: SLORow) -> dmc.Group:
    """Burn rate per window, coloured when over the factor of an alert that uses the window."""
    items = []
    for window in BADGE_WINDOWS:
        burn = row.burn.get(window)
        threshold = row.burn_threshold(window)
        colour = "gray"
        if burn is not None and threshold is not None and burn > threshold[0]:
            colour = "red" if threshold[1] == "page" else "orange"
        elif burn is not None and burn <= 1:
            colour = "green"
        items.append(
            badge(f"{window} {text.rate(burn)}", colour, variant="light", size="sm", tt="none")
        )
    return dmc.Group(items, gap=4, wrap="nowrap")


def budget_bar(remaining: float | None) -> Any:
    if remaining is None:
        return dmc.Text("-", size="sm")
    shown = max(0.0, min(1.0, remaining)) * 100
    colour = "red" if remaining <= 0 else "orange" if remaining < 0.25 else "green"
    return dmc.Stack(
        [
            dmc.Text(text.percent(remaining, 1), size="sm", fw=600, c=colour),
            dmc.Progress(value=shown, color=colour, size="sm", radius="sm", w=110),
        ],
        gap=2,
    )


def slo_table(rows: Sequence[SLORow], params: Mapping[str, str]) -> Any:
    if not rows:
        return empty("No SLO is defined (rules/slo/).")
    return scroll(
        table(
            ["status", "SLO", "where", "budget left", "availability", "burn rate", "alerts"],
            [
                [
                    health_badge(r.health),
                    anchor(
                        f"{r.slo.service} / {r.slo.name}",
                        f"/slos/{r.slo.id}",
                        {**params, **r.labels},
                    ),
                    dmc.Text(text.labels(r.labels), size="sm"),
                    budget_bar(r.budget_remaining),
                    dmc.Text(f"{text.percent(r.availability)} / {r.slo.objective:g}%", size="sm"),
                    burn_badges(r) if r.status is not None else dmc.Text("no data", size="sm"),
                    _alert_badges(r),
                ]
                for r in rows
            ],
        )
    )


def _alert_badges(row: SLORow) -> Any:
    if row.status is None or not row.status.alerts:
        return dmc.Text("-", size="sm", c="dimmed")
    return dmc.Group(
        [
            badge(
                f"{a.severity} {a.state}",
                ("red" if a.severity == "page" else "orange") if a.state == "firing" else "yellow",
                variant="filled" if a.state == "firing" else "light",
                size="sm",
            )
            for a in row.status.alerts
        ],
        gap=4,
    )


def instance_picker(detail: SLODetail, params: Mapping[str, str]) -> Any:
    """One link per SLI instance (region); the selected one filled."""
    shown = [r for r in detail.rows if r.status is not None]
    if len(shown) < 2:
        return None
    selected = detail.selected.labels if detail.selected is not None else {}
    return dmc.Group(
        [dmc.Text("instance", size="sm", c="dimmed")]
        + [
            dmc.Anchor(
                badge(
                    text.labels(r.labels),
                    HEALTH_COLOURS[r.health],
                    variant="filled" if dict(r.labels) == dict(selected) else "outline",
                    size="lg",
                    tt="none",
                ),
                href=text.link(f"/slos/{detail.slo.id}", {**params, **r.labels}),
            )
            for r in shown
        ],
        gap="xs",
    )


def detail_cards(detail: SLODetail, now_s: float) -> Any:
    slo, row = detail.slo, detail.selected
    period = window_text(slo)
    if row is None:
        return empty(f"Nothing recorded for {slo.id} yet: no traffic, or the rules have not run.")
    left = row.budget_remaining
    colour = None if left is None else "red" if left <= 0 else "orange" if left < 0.25 else "green"
    events_note = _events_note(detail)
    status = row.status
    return dmc.SimpleGrid(
        [
            stat("objective", f"{slo.objective:g}%", f"over {period}, by {', '.join(slo.by)}"),
            stat("availability", text.percent(row.availability, 3), f"over {period}"),
            stat("error budget left", text.percent(left, 1), events_note, colour),
            stat("budget runs out", *_exhaustion(detail.exhaustion_s, row, now_s)),
            stat(
                "burn rate now",
                text.rate(row.burn.get("5m")),
                f"1h: {text.rate(row.burn.get('1h'))}, "
                f"{text.number(status.events_per_second if status else None)} events/s",
            ),
        ],
        cols={"base": 2, "sm": 3, "lg": 5},
        spacing="sm",
    )


def _events_note(detail: SLODetail) -> str:
    left, events = detail.bad_events_left, detail.events
    if left is None or events is None:
        return "event counts not available"
    allowed = text.count(detail.slo.error_budget * events)
    if left < 0:
        return f"≈ {text.count(-left)} bad events over the {allowed} allowed"
    return f"≈ {text.count(left)} more bad events of {allowed} allowed"


def _exhaustion(seconds: float | None, row: SLORow, now_s: float) -> tuple[str, str, str | None]:
    burn = row.burn.get("1h")
    at = f"at the 1h burn rate ({text.rate(burn)})"
    if seconds is None:
        return "-", "no burn rate yet", None
    if seconds == 0:
        return "exhausted", "no budget left over the window", "red"
    if math.isinf(seconds):
        return "not at this rate", f"{at}: within budget", "green"
    colour = "red" if seconds < 86_400 else "orange" if seconds < 7 * 86_400 else None
    return (
        f"in {text.duration(seconds)}",
        f"{at}: {text.utc(now_s + seconds, seconds=False)}",
        colour,
    )
