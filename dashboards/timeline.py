"""The incident's picture for the postmortem, as a pure function: one time axis, the lanes
stacked on it (faults, alerts, executions and their steps, guard refusals, verifications,
approvals, notifications, automation switches), and under them the error budget each SLO
lost since the incident began.

Spans are horizontal bars (hover tells the exact times), single moments are markers; the
incident itself is the shaded band. Styling is figures.py's: transparent backgrounds and a
mid-grey ink that read on the light and on the dark theme, Mantine's status colours.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards import text
from dashboards.figures import BLUE, GREEN, GREY, GRID, INK, ORANGE, RED, VIOLET, times
from dashboards.incident_budget import SPENT, Budget, BudgetUse
from dashboards.incident_lanes import LANES, Lanes, Mark, Span, Tone
from dashboards.incidents import IncidentDetail
from dashboards.view import Window

YELLOW = "#fab005"
TONE_COLOURS = {
    Tone.BAD: RED,
    Tone.WARN: ORANGE,
    Tone.GOOD: GREEN,
    Tone.INFO: BLUE,
    Tone.PENDING: YELLOW,
    Tone.NEUTRAL: GREY,
    Tone.FAULT: VIOLET,
}
SYMBOLS = {
    "executions": "diamond",
    "guards": "x",
    "verification": "circle",
    "approvals": "star",
    "notifications": "square",
    "automation": "triangle-up",
}
HEADED = ("faults", "alerts", "executions")  # lanes of several rows get a title row
ROW_PX, BUDGET_PX = 24, 190
MIN_BAR = 0.004  # of the window: a one-second step still shows
MAX_BUDGET_LINES = 5


def rows_of(lanes: Lanes) -> list[tuple[str, str]]:
    """(lane, label) top to bottom: a title row before the rows of a headed lane."""
    out: list[tuple[str, str]] = []
    for lane, row in lanes.rows():
        if lane in HEADED and not any(k == lane for k, _ in out):
            out.append((lane, f"<b>{LANES[lane].upper()}</b>"))
        out.append((lane, row))
    return out


def timeline_figure(detail: IncidentDetail) -> go.Figure:
    """The lanes on top; under them, on the same axis, the budget lost by the SLO instances
    that lost the most (left out when none lost any: the budget table says so)."""
    lanes, window = detail.lanes, detail.window
    rows = rows_of(lanes)
    worst = [u for u in detail.uses if (u.consumed or 0) > SPENT][:MAX_BUDGET_LINES]
    lane_px = max(3, len(rows)) * ROW_PX
    budget_px = BUDGET_PX if worst else 0
    fig = make_subplots(
        rows=2 if worst else 1,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=44 / (lane_px + budget_px + 44),
        row_heights=[lane_px, budget_px] if worst else None,
    )
    _frame(fig, window, height=lane_px + budget_px + (94 if worst else 60))
    where = {(lane, label): i for i, (lane, label) in enumerate(rows)}
    _bands(fig, rows)
    _bars(fig, lanes.spans, where, window)
    _marks(fig, lanes.marks, where)
    _incident_band(fig, detail)
    _budget(fig, detail.budgets, worst, detail.incident.start_ms)
    fig.update_yaxes(
        row=1,
        col=1,
        tickmode="array",
        tickvals=list(range(len(rows))),
        ticktext=[label for _lane, label in rows],
        range=[len(rows) - 0.5, -0.5],  # the first row on top
        showgrid=False,
        zeroline=False,
    )
    if not rows:
        fig.add_annotation(text="nothing recorded", showarrow=False, x=0.5, y=0.8, **_paper())
    return fig


def _paper() -> dict[str, object]:
    return {"xref": "paper", "yref": "paper", "font": {"color": INK, "size": 13}}


def _frame(fig: go.Figure, window: Window, *, height: int) -> None:
    axis = {"gridcolor": GRID, "zeroline": False, "linecolor": GRID, "automargin": True}
    fig.update_layout(
        template="none",
        height=height,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": INK, "size": 12},
        hovermode="closest",
        barmode="overlay",
        bargap=0,
        showlegend=True,
        legend={
            "orientation": "h",
            "yanchor": "top",
            "y": -0.04,
            "x": 0,
            "bgcolor": "rgba(0,0,0,0)",
        },
    )
    fig.update_xaxes(**axis, type="date", range=list(times([window.start_ms, window.end_ms])))
    fig.update_yaxes(**axis)
    fig.update_xaxes(showticklabels=True, row=1, col=1, side="top")


def _bands(fig: go.Figure, rows: Sequence[tuple[str, str]]) -> None:
    """Every other lane shaded, so each row reads as part of its lane."""
    lanes = list(dict.fromkeys(lane for lane, _ in rows))
    for n, lane in enumerate(lanes):
        if n % 2:
            continue
        mine = [i for i, (k, _label) in enumerate(rows) if k == lane]
        fig.add_hrect(
            y0=min(mine) - 0.5,
            y1=max(mine) + 0.5,
            fillcolor="rgba(134, 142, 150, 0.09)",
            line_width=0,
            layer="below",
            row=1,
            col=1,
        )


def _bars(
    fig: go.Figure, spans: Sequence[Span], where: dict[tuple[str, str], int], window: Window
) -> None:
    """One trace per lane and tone (a trace per bar costs a browser dearly)."""
    groups: dict[tuple[str, Tone], list[Span]] = {}
    for span in spans:
        groups.setdefault((span.lane, span.tone), []).append(span)
    least = round(window.span_ms * MIN_BAR)
    for (lane, tone), mine in groups.items():
        fig.add_bar(
            base=[str(t) for t in times([s.start_ms for s in mine])],
            x=[max(s.end_ms - s.start_ms, least) for s in mine],
            y=[where[(s.lane, s.row)] for s in mine],
            orientation="h",
            width=0.35 if lane == "executions" else 0.6,
            marker={"color": TONE_COLOURS[tone], "line": {"width": 0}},
            opacity=0.85,
            hovertext=[_span_text(s) for s in mine],
            hoverinfo="text",
            showlegend=False,
            row=1,
            col=1,
        )


def _span_text(span: Span) -> str:
    until = "ongoing" if span.ongoing else text.utc(span.end_ms / 1000)
    took = text.duration((span.end_ms - span.start_ms) / 1000)
    return f"{span.opened}<br>{text.utc(span.start_ms / 1000)} to {until} ({took})"


def _marks(fig: go.Figure, marks: Sequence[Mark], where: dict[tuple[str, str], int]) -> None:
    """One trace per lane and tone: markers of a moment, the lane's symbol in the tone's colour."""
    groups: dict[tuple[str, Tone], list[Mark]] = {}
    for mark in marks:
        groups.setdefault((mark.lane, mark.tone), []).append(mark)
    for (lane, tone), mine in groups.items():
        fig.add_scatter(
            x=times([m.at_ms for m in mine]),
            y=[where[(m.lane, m.row)] for m in mine],
            mode="markers",
            marker={
                "symbol": SYMBOLS.get(lane, "circle"),
                "size": 12 if lane != "executions" else 9,
                "color": TONE_COLOURS[tone],
                "line": {"width": 1, "color": "rgba(255,255,255,0.6)"},
            },
            hovertext=[f"{m.what}<br>{m.who}, {text.utc(m.at_ms / 1000)}" for m in mine],
            hoverinfo="text",
            showlegend=False,
            row=1,
            col=1,
        )


def _incident_band(fig: go.Figure, detail: IncidentDetail) -> None:
    incident = detail.incident
    end = detail.window.end_ms if incident.ongoing else incident.end_ms
    fig.add_vrect(
        x0=str(times([incident.start_ms])[0]),
        x1=str(times([end])[0]),
        fillcolor="rgba(250, 82, 82, 0.07)",
        line={"color": "rgba(250, 82, 82, 0.5)", "width": 1, "dash": "dot"},
        layer="below",
        row="all",
        col=1,
    )


def _budget(
    fig: go.Figure, found: Sequence[Budget], worst: Sequence[BudgetUse], start_ms: int
) -> None:
    """Budget lost since the incident began, one line per SLO instance."""
    palette = (RED, ORANGE, VIOLET, BLUE, GREY)
    for colour, use in zip(palette, worst, strict=False):
        line = next(b.line for b in found if b.slo is use.slo and b.labels == use.labels)
        before = use.before or 0.0
        kept = [(t, v) for t, v in zip(line.t_ms, line.values, strict=True) if t >= start_ms]
        fig.add_scatter(
            x=times([t for t, _ in kept]),
            y=[(before - v) * 100 for _, v in kept],
            mode="lines",
            name=f"{use.slo.service}/{use.slo.name} {text.labels(use.labels)}",
            line={"color": colour, "width": 2},
            hovertemplate="%{y:.1f}% of the budget<extra>%{fullData.name}</extra>",
            row=2,
            col=1,
        )
    if worst:
        fig.update_yaxes(title={"text": "budget lost (%)"}, ticksuffix="%", row=2, col=1)
