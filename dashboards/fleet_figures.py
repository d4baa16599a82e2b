"""Figures of the providers, wallet and regions pages, as pure functions of `fleet` data.

They share figures.py's frame (transparent, mid-grey ink, the window as the x range, UTC), so
they read on the light and the dark theme alike. Three shapes cover the pages: a heatmap of a
number per provider and step (one panel per region, one colour scale), a heatmap of states
(a colour per state, with a legend), and lines, optionally in facets (a panel per region or
kind) with the same colour for the same name in every facet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards import fleet
from dashboards.figures import (
    BLUE,
    GREEN,
    GREY,
    GRID,
    INK,
    ORANGE,
    RED,
    VIOLET,
    _empty,
    _frame,
    times,
)
from dashboards.fleet import Curve, Grid
from dashboards.view import Window

PALETTE = (BLUE, ORANGE, VIOLET, "#12b886", "#e64980", "#fab005", "#15aabf", "#82c91e", GREY)
OUTCOME_COLOURS = {"settled": GREEN, "failed": RED}
HEAT = [[0.0, GREEN], [0.5, "#fab005"], [0.75, ORANGE], [1.0, RED]]
DASHES = {"p50": "dot"}
ROW_PX, PANEL_PX, MIN_PX = 24, 44, 170  # a heatmap row; a panel's title and gap; a figure


@dataclass(frozen=True, kw_only=True)
class Scale:
    """How values read: times `factor`, with `suffix`, hover format `digits` (d3)."""

    factor: float = 1.0
    suffix: str = ""
    digits: str = ".3~g"


PERCENT = Scale(factor=100, suffix="%", digits=".2f")
MS = Scale(factor=1000, suffix=" ms", digits=".0f")
COUNT = Scale()


def _panels(
    heights: Sequence[float],
    window: Window,
    *,
    titles: Sequence[str] = (),
    axis_titles: Sequence[str] = (),
    y_title: str = "",
) -> go.Figure:
    """Panels stacked on the window's time axis, named by `titles` above them (the legend
    then moves to the right, out of their way) or by `axis_titles` beside them."""
    total = max(MIN_PX, sum(heights) + PANEL_PX * len(heights) + 24)
    fig = make_subplots(
        rows=max(1, len(heights)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.3, PANEL_PX / total) if len(heights) > 1 else 0.0,
        row_heights=list(heights) or None,
        subplot_titles=list(titles) if any(titles) else None,
    )
    _frame(fig, window, height=round(total), y_title=y_title)
    axis = {"gridcolor": GRID, "zeroline": False, "linecolor": GRID, "automargin": True}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    for row, title in enumerate(axis_titles, start=1):
        fig.update_yaxes(title={"text": title, "font": {"size": 13}}, row=row, col=1)
    if any(titles):
        fig.update_annotations(xanchor="left", x=0, font={"color": INK, "size": 12})
        fig.update_layout(margin={"t": 26})  # room for the first panel's title
        if len(heights) > 1:
            fig.update_layout(legend={"orientation": "v", "x": 1.01, "y": 1, "yanchor": "top"})
    return fig


def heatmap_figure(
    grids: Sequence[Grid], window: Window, *, what: str, scale: Scale, top: float
) -> go.Figure:
    """A number per row and step, one panel per grid, one colour scale from 0 (green) to
    `top` (red; higher values stay red). A gap: nothing reported then."""
    heights = [ROW_PX * len(g.rows) for g in grids]
    fig = _panels(heights, window, axis_titles=[g.title for g in grids])
    if not any(g.rows for g in grids):
        return _empty(fig, f"no {what} in this range")
    for i, grid in enumerate(grids, start=1):
        z = [[None if v is None else v * scale.factor for v in row] for row in grid.cells]
        fig.add_heatmap(
            x=times(grid.t_ms),
            y=list(grid.rows),
            z=z,
            coloraxis="coloraxis",
            ygap=1,
            name=grid.title,
            hovertemplate=f"%{{y}}<br>%{{x}}<br>{what} %{{z:{scale.digits}}}{scale.suffix}"
            f"<extra>{grid.title}</extra>",
            row=i,
            col=1,
        )
    fig.update_layout(
        hovermode="closest",
        coloraxis={
            "colorscale": HEAT,
            "cmin": 0,
            "cmax": top * scale.factor,
            "colorbar": {
                "title": {"text": what, "side": "right"},
                "ticksuffix": scale.suffix,
                "thickness": 10,
                "outlinewidth": 0,
                "len": 1,
            },
        },
    )
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def state_figure(
    grids: Sequence[Grid], window: Window, *, states: Sequence[tuple[str, str]], what: str
) -> go.Figure:
    """A state per row and step (the cell's code indexes `states`: word, colour)."""
    heights = [ROW_PX * len(g.rows) for g in grids]
    fig = _panels(heights, window, axis_titles=[g.title for g in grids])
    if not any(g.rows for g in grids):
        return _empty(fig, f"no {what} reported in this range")
    n = len(states)
    scale = [
        [edge, colour] for i, (_w, colour) in enumerate(states) for edge in (i / n, (i + 1) / n)
    ]
    for i, grid in enumerate(grids, start=1):
        fig.add_heatmap(
            x=times(grid.t_ms),
            y=list(grid.rows),
            z=[list(row) for row in grid.cells],
            text=[list(row) for row in grid.notes] if grid.notes else None,
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            showscale=False,
            ygap=1,
            name=grid.title,
            hovertemplate=f"%{{y}}: %{{text}}<br>%{{x}}<extra>{grid.title}</extra>",
            row=i,
            col=1,
        )
    for word, colour in states:  # the legend: a heatmap has none of its own
        fig.add_scatter(
            x=[None], y=[None], mode="markers", name=word, hoverinfo="skip",
            marker={"symbol": "square", "size": 11, "color": colour},
        )  # fmt: skip
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


@dataclass(frozen=True, kw_only=True)
class Lines:
    """How curves become lines: labels that name a line (its colour too, unless `colour`
    says which), that choose its facet and its dash; `titles` name the facets."""

    name: tuple[str, ...]
    facet: str | None = None
    colour: tuple[str, ...] | None = None
    dash: str | None = None
    titles: Mapping[str, str] | None = None
    stack: bool = False
    shape: str = "linear"


def lines_figure(
    curves: Sequence[Curve], window: Window, how: Lines, *, y_title: str, scale: Scale = COUNT
) -> go.Figure:
    facets = _facets(curves, how.facet)
    titles = [(how.titles or {}).get(f, f) for f in facets] if how.facet else [""]
    per_panel = 260 if len(facets) == 1 else 150
    fig = _panels([per_panel] * len(facets), window, titles=titles, y_title=y_title)
    if not curves:
        return _empty(fig, "nothing reported in this range")
    colours = _colours(curves, how.colour or how.name)
    shown: set[str] = set()
    for curve in curves:
        row = facets.index(curve.labels.get(how.facet, "")) + 1 if how.facet else 1
        name = curve.name(*how.name)
        fig.add_scatter(
            x=times(curve.t_ms),
            y=np.asarray(curve.values, dtype=np.float64) * scale.factor,
            name=name,
            legendgroup=name,
            showlegend=name not in shown,
            mode="lines",
            line={
                "color": colours[curve.name(*(how.colour or how.name))],
                "width": 1.8,
                "shape": how.shape,
                "dash": DASHES.get(curve.labels.get(how.dash or "", ""), "solid"),
            },
            stackgroup=f"stack{row}" if how.stack else None,
            hovertemplate=f"%{{y:{scale.digits}}}{scale.suffix}",
            row=row,
            col=1,
        )
        shown.add(name)
    _y_range(fig, curves, scale)
    return fig


def _y_range(fig: go.Figure, curves: Sequence[Curve], scale: Scale) -> None:
    """Counts from zero; shares from at most 99%, so that noise near 100% stays flat and a
    fall under an objective (99.5%, 99.9%) still shows."""
    if scale is not PERCENT:
        fig.update_yaxes(rangemode="tozero", ticksuffix=scale.suffix)
        return
    values = np.asarray([v for c in curves for v in c.values], dtype=np.float64) * 100
    finite = values[np.isfinite(values)]
    low = min(float(finite.min()) if finite.size else 99.0, 99.0)
    high = max(float(finite.max()) if finite.size else 100.0, 100.0)
    pad = (high - low) * 0.06
    fig.update_yaxes(range=[low - pad, high + pad], ticksuffix="%")


def _facets(curves: Sequence[Curve], facet: str | None) -> list[str]:
    if facet is None:
        return [""]
    found = {c.labels.get(facet, "") for c in curves}
    # the operator wallet's own count reads after the regions
    return sorted(found, key=lambda f: (f == "operator", f)) or [""]


def _colours(curves: Sequence[Curve], keys: Sequence[str]) -> dict[str, str]:
    names = sorted({c.name(*keys) for c in curves})
    fixed = {n: OUTCOME_COLOURS[n] for n in names if n in OUTCOME_COLOURS}
    rest = [n for n in names if n not in fixed]
    return {**fixed, **{n: PALETTE[i % len(PALETTE)] for i, n in enumerate(rest)}}


# -- the pages' figures ---------------------------------------------------------------------


def latency_heatmap(grids: Sequence[Grid], window: Window) -> go.Figure:
    """p99 per provider; red from 1 s, ProviderLatencyHigh's threshold."""
    return heatmap_figure(grids, window, what="p99", scale=MS, top=1.0)


def error_heatmap(grids: Sequence[Grid], window: Window) -> go.Figure:
    """Failed calls' share per provider; red from 20%, ProviderLaunchFailing's threshold."""
    return heatmap_figure(grids, window, what="errors", scale=PERCENT, top=0.2)


def breaker_figure(grids: Sequence[Grid], window: Window) -> go.Figure:
    states = list(zip(fleet.BREAKER, (GREEN, RED, ORANGE), strict=True))
    return state_figure(grids, window, states=states, what="breaker state")


def routing_figure(grids: Sequence[Grid], window: Window) -> go.Figure:
    states = list(zip(fleet.ROUTING, (GREEN, VIOLET, RED), strict=True))
    return state_figure(grids, window, states=states, what="isolation or canary")


def region_state_figure(grids: Sequence[Grid], window: Window) -> go.Figure:
    states = list(zip(fleet.REGION, (GREEN, BLUE, RED), strict=True))
    return state_figure(grids, window, states=states, what="region health")


def launch_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    how = Lines(name=("provider",), facet="region")
    return lines_figure(curves, window, how, y_title="reached a game", scale=PERCENT)


def wallet_answered_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    titles = {"operator": "operator wallet (its own count: not RS_ERROR_UNKNOWN)"}
    how = Lines(name=("operation",), facet="region", titles=titles)
    return lines_figure(curves, window, how, y_title="answered", scale=PERCENT)


def wallet_latency_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    how = Lines(name=("region", "quantile"), colour=("region",), dash="quantile")
    return lines_figure(curves, window, how, y_title="wallet call latency", scale=MS)


def queue_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    titles = {"depth": "items waiting", "oldest": "age of the oldest item (s)"}
    how = Lines(name=("region",), facet="gauge", titles=titles, shape="hv")
    return lines_figure(curves, window, how, y_title="")


def replays_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    titles = {"operator": "operator wallet: calls answered from its ledger, per minute"}
    how = Lines(name=("outcome", "operation"), facet="region", titles=titles)
    return lines_figure(curves, window, how, y_title="per minute")


def budget_lines_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    how = Lines(name=("slo", "region"))
    return lines_figure(curves, window, how, y_title="error budget left", scale=PERCENT)


def weights_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    how = Lines(name=("region",), shape="hv")
    return lines_figure(curves, window, how, y_title="weight for new sessions")


def failover_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    titles = {k: k.replace("_", " ") + " (per minute)" for k in fleet.FAILOVER_KINDS}
    how = Lines(name=("region",), facet="kind", titles=titles)
    return lines_figure(curves, window, how, y_title="")


def sessions_figure(curves: Sequence[Curve], window: Window) -> go.Figure:
    how = Lines(name=("region",), stack=True, shape="hv")
    return lines_figure(curves, window, how, y_title="active sessions")
