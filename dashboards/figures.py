"""Figures as pure functions: data in, a plotly figure out, nothing read or remembered.

Backgrounds are transparent and the ink a mid grey, so one figure reads on the light and on
the dark theme alike; status colours are Mantine's (red, orange, green, blue, grey). Times are
UTC, as on the rest of the page; the x axis always spans the chosen window, so a gap in the
data shows as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from controlplane.runbooks.store import Execution, State
from dashboards.slos import BurnPair, Line
from dashboards.view import Window

INK = "#868e96"
GRID = "rgba(134, 142, 150, 0.25)"
RED, ORANGE, GREEN, BLUE, GREY, VIOLET = (
    "#fa5252",
    "#fd7e14",
    "#40c057",
    "#228be6",
    "#adb5bd",
    "#7950f2",
)
STATE_COLOURS = {
    State.SUCCEEDED: GREEN,
    State.FAILED: RED,
    State.ROLLED_BACK: RED,
    State.REFUSED: ORANGE,
    State.REJECTED: ORANGE,
    State.EXPIRED: ORANGE,
    State.SHADOWED: GREY,
    State.PENDING_APPROVAL: VIOLET,
    State.RUNNING: BLUE,
    State.VERIFYING: BLUE,
}


def times(t_ms: Sequence[int]) -> npt.NDArray[np.datetime64]:
    return np.asarray(t_ms, dtype="datetime64[ms]")


def _frame(fig: go.Figure, window: Window | None, *, height: int, y_title: str) -> go.Figure:
    axis = {"gridcolor": GRID, "zeroline": False, "linecolor": GRID, "automargin": True}
    fig.update_layout(
        template="none",
        height=height,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": INK, "size": 12},
        hovermode="x unified",
        showlegend=True,
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "bgcolor": "rgba(0,0,0,0)",
        },
        xaxis=axis,
        yaxis={**axis, "title": {"text": y_title}},
    )
    if window is not None:
        fig.update_xaxes(range=list(times([window.start_ms, window.end_ms])), type="date")
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message,
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font={"size": 14, "color": INK},
    )
    fig.update_yaxes(showticklabels=False)
    return fig


def sli_figure(line: Line | None, objective_percent: float, window: Window) -> go.Figure:
    """The SLI (percent good) over the window against the objective; points under it in red."""
    fig = _frame(go.Figure(), window, height=260, y_title="good events (%)")
    if line is None or not line.values:
        return _empty(fig, "no SLI recorded in this range")
    x = times(line.t_ms)
    y = np.asarray(line.values, dtype=np.float64) * 100
    below = np.where(y < objective_percent, y, np.nan)
    fig.add_scatter(x=x, y=y, name="SLI", mode="lines", line={"color": BLUE, "width": 2})
    fig.add_scatter(
        x=x,
        y=below,
        name="under the objective",
        mode="lines+markers",
        line={"color": RED, "width": 2},
        marker={"size": 4},
        connectgaps=False,
    )
    fig.add_scatter(
        x=times([window.start_ms, window.end_ms]),
        y=[objective_percent] * 2,
        name=f"objective {objective_percent:g}%",
        mode="lines",
        line={"color": ORANGE, "dash": "dash", "width": 1.5},
        hoverinfo="skip",
    )
    finite = y[np.isfinite(y)]
    low = min(float(finite.min()) if finite.size else objective_percent, objective_percent)
    pad = max(0.05, (100 - low) * 0.1)
    fig.update_yaxes(range=[low - pad, 100 + pad / 2], ticksuffix="%")
    return fig


def ideal_budget(t_ms: Sequence[int], start_value: float, window_s: float) -> list[float]:
    """Budget left if, from the first point on, errors came exactly as fast as the objective
    allows: over a rolling window the share left then falls linearly to 0 in one window."""
    t0 = t_ms[0] if t_ms else 0
    return [start_value * (1 - (t - t0) / 1000 / window_s) for t in t_ms]


def budget_figure(line: Line | None, window: Window, slo_window_s: float) -> go.Figure:
    """Error budget left over the view's window (burn-down), with the ideal line."""
    fig = _frame(go.Figure(), window, height=260, y_title="error budget left (%)")
    if line is None or not line.values:
        return _empty(fig, "no error budget recorded in this range")
    values = [v * 100 for v in line.values]
    first = next((v for v in values if math.isfinite(v)), 100.0)
    x = times(line.t_ms)
    fig.add_scatter(
        x=x,
        y=values,
        name="left",
        mode="lines",
        line={"color": BLUE, "width": 2},
        fill="tozeroy",
        fillcolor="rgba(34, 139, 230, 0.12)",
    )
    fig.add_scatter(
        x=x,
        y=ideal_budget(line.t_ms, first, slo_window_s),
        name="ideal (burn rate 1)",
        mode="lines",
        line={"color": GREEN, "dash": "dash", "width": 1.5},
        hoverinfo="skip",
    )
    fig.add_hline(y=0, line={"color": RED, "width": 1})
    fig.update_yaxes(ticksuffix="%")
    return fig


def burn_figure(pairs: Sequence[BurnPair]) -> go.Figure:
    """Burn rate of each alert condition's two windows against its factor (log scale)."""
    fig = _frame(go.Figure(), None, height=260, y_title="burn rate (x budget)")
    if not pairs:
        return _empty(fig, "no burn rates recorded")
    names = [f"{p.severity} {p.factor:g}x<br>{p.long} and {p.short}" for p in pairs]
    for label, rates, windows, shade in (
        ("long window", [p.long_rate for p in pairs], [p.long for p in pairs], 1.0),
        ("short window", [p.short_rate for p in pairs], [p.short for p in pairs], 0.55),
    ):
        colours = [_burn_colour(r, p, shade) for r, p in zip(rates, pairs, strict=True)]
        fig.add_bar(
            x=names,
            y=[_floor(r) for r in rates],
            name=label,
            marker={"color": colours},
            text=[f"{w}: {_rate_text(r)}" for w, r in zip(windows, rates, strict=True)],
            textposition="outside",
            cliponaxis=False,
            hoverinfo="text",
        )
    for i, p in enumerate(pairs):
        colour = RED if p.severity == "page" else ORANGE
        fig.add_shape(
            type="line",
            xref="x",
            yref="y",
            x0=i - 0.48,
            x1=i + 0.48,
            y0=p.factor,
            y1=p.factor,
            layer="above",
            line={"color": colour, "width": 2.5},
        )
    fig.add_scatter(
        x=[None], y=[None], mode="lines", name="alert threshold", line={"color": RED, "width": 2.5}
    )
    top = max(
        [p.factor for p in pairs] + [r or 0 for p in pairs for r in (p.long_rate, p.short_rate)]
    )
    fig.update_layout(barmode="group", hovermode="closest", bargap=0.3)
    fig.update_yaxes(type="log", range=[-2, math.log10(max(top, 1) * 3)], dtick=1)
    fig.update_xaxes(type="category")
    return fig


def _floor(rate: float | None) -> float | None:
    return None if rate is None else max(rate, 0.011)


def _rate_text(rate: float | None) -> str:
    if rate is None:
        return "no data"
    return f"{rate:.2g}x" if rate < 10 else f"{rate:.0f}x"


def _burn_colour(rate: float | None, pair: BurnPair, shade: float) -> str:
    if rate is None or rate <= pair.factor:
        base = (64, 192, 87) if rate is not None and rate <= 1 else (173, 181, 189)
    else:
        base = (250, 82, 82) if pair.severity == "page" else (253, 126, 20)
    return f"rgba({base[0]}, {base[1]}, {base[2]}, {shade})"


def executions_figure(executions: Sequence[Execution], window: Window) -> go.Figure:
    """When each execution started, one row per runbook, coloured by how it ended."""
    fig = _frame(
        go.Figure(), window, height=90 + 28 * len({e.runbook for e in executions}), y_title=""
    )
    if not executions:
        return _empty(fig, "no executions in this range")
    for state in State:
        mine = [e for e in executions if e.state is state]
        if not mine:
            continue
        fig.add_scatter(
            x=times([round(e.created_at * 1000) for e in mine]),
            y=[e.runbook for e in mine],
            mode="markers",
            name=state.value.replace("_", " "),
            marker={"color": STATE_COLOURS[state], "size": 11, "line": {"width": 0}},
            text=[f"{e.target_key} ({e.trigger})" for e in mine],
            hovertemplate="%{y}<br>%{text}<br>%{x}<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(type="category", automargin=True)
    return fig
