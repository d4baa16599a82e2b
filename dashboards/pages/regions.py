"""Regions and failover: whether each region takes new sessions (health checks, drains, the
front door's weights), the failover events by kind (a breaker opening, a launch moved to
another provider, a session moved to another region) and their counts in the range, and the
sessions each region holds."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, callback, dcc, html

from dashboards import fleet, fleet_figures, fleet_panels, panels, reads, shell
from dashboards.reads import ReadModels
from dashboards.view import View, Window

dash.register_page(
    __name__, path="/regions", name="Regions", title="Regions and failover · control plane"
)

GRAPH: Any = {"displayModeBar": False, "responsive": True}


def graph_card(title: str, key: str) -> dmc.Card:
    """A chart with room above it for the problem its query may have."""
    return panels.card(
        title, html.Div(id=f"rg-{key}-problem"), dcc.Graph(id=f"rg-{key}", config=GRAPH)
    )


def layout(**params: Any) -> html.Div:
    half = {"base": 12, "lg": 6}
    return shell.page(
        panels.heading(
            "Regions and failover",
            "a region takes new sessions while up and not drained, in proportion to its weight",
        ),
        dmc.Grid(
            [
                dmc.GridCol(graph_card("Health: up, drained or down", "health"), span=12),
                dmc.GridCol(graph_card("Weight for new sessions", "weights"), span=half),
                dmc.GridCol(graph_card("Active sessions", "sessions"), span=half),
                dmc.GridCol(graph_card("Failover events", "failovers"), span={"base": 12, "lg": 8}),
                dmc.GridCol(
                    panels.card("Failover events in this range", html.Div(id="rg-counts")),
                    span={"base": 12, "lg": 4},
                ),
            ],
            gutter="md",
            mt="sm",
        ),
    )


def _context(search: str | None) -> tuple[ReadModels, Window]:
    r = reads.current()
    return r, View.from_search(search).window(r.now_ms())


@callback(
    Output("rg-health", "figure"),
    Output("rg-health-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _health(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window = _context(search)
    grids, problem = fleet.region_states(r, window)
    return fleet_figures.region_state_figure(grids, window), panels.problem(problem)


@callback(
    Output("rg-weights", "figure"),
    Output("rg-weights-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _weights(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window = _context(search)
    curves, problem = fleet.region_weights(r, window)
    return fleet_figures.weights_figure(curves, window), panels.problem(problem)


@callback(
    Output("rg-sessions", "figure"),
    Output("rg-sessions-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _sessions(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window = _context(search)
    curves, problem = fleet.sessions(r, window)
    return fleet_figures.sessions_figure(curves, window), panels.problem(problem)


@callback(
    Output("rg-failovers", "figure"),
    Output("rg-failovers-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _failovers(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window = _context(search)
    curves, problem = fleet.failover_rates(r, window)
    return fleet_figures.failover_figure(curves, window), panels.problem(problem)


@callback(Output("rg-counts", "children"), Input("beat", "data"), Input("url", "search"))
def _counts(_tick: int | None, search: str | None) -> Any:
    r, window = _context(search)
    counts, problem = fleet.failover_counts(r, window)
    return [panels.problem(problem), fleet_panels.failover_table(counts)]
