"""Providers: how each provider answers, per region, over the range (p99 latency and errors
as provider x time heatmaps, launch success), what protects players from it (circuit
breakers, isolation, canaries), and where each stands now. A region filter sits in the URL
beside the time range."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, callback, dcc, html

from dashboards import fleet, fleet_figures, fleet_panels, panels, reads, shell
from dashboards.reads import ReadModels
from dashboards.view import View, Window, merge_search, query_params

dash.register_page(__name__, path="/providers", name="Providers", title="Providers · control plane")

GRAPH: Any = {"displayModeBar": False, "responsive": True}
SUBTITLE = (
    "calls to game providers per region; errors are 5xx and timeouts among the calls sent "
    "(isolation and open breakers send none)"
)


def graph_card(title: str, key: str) -> dmc.Card:
    """A chart with room above it for the problem its query may have."""
    return panels.card(
        title, html.Div(id=f"pv-{key}-problem"), dcc.Graph(id=f"pv-{key}", config=GRAPH)
    )


def region_picker(region: str, options: list[str]) -> dmc.Select:
    """Writes `region` into the URL (`_filter`); empty: every region."""
    return dmc.Select(
        id="pv-region",
        label="region",
        data=options,
        value=region or None,
        placeholder="all regions",
        clearable=True,
        w=200,
        size="xs",
    )


def layout(region: str = "", **params: Any) -> html.Div:
    r = reads.current()
    at_ms = View.from_params(params).window(r.now_ms()).end_ms
    known, _problem = fleet.known_regions(r, at_ms)  # the charts say when the querier fails
    options = sorted({*known, region} - {""})
    half = {"base": 12, "lg": 6}
    return shell.page(
        dmc.Group(
            [
                panels.heading("Providers", SUBTITLE),
                region_picker(region, options),
            ],
            justify="space-between",
            align="flex-end",
            mb="sm",
        ),
        dmc.Grid(
            [
                dmc.GridCol(
                    panels.card(
                        "Now: isolated or breaker not closed first, then the most failing",
                        html.Div(id="pv-now"),
                    ),
                    span=12,
                ),
                dmc.GridCol(graph_card("p99 latency per provider", "latency"), span=half),
                dmc.GridCol(graph_card("Errors per provider", "errors"), span=half),
                dmc.GridCol(graph_card("Circuit breakers", "breakers"), span=half),
                dmc.GridCol(graph_card("Isolation and canaries", "routing"), span=half),
                dmc.GridCol(
                    graph_card("Launch success per provider (failover counts)", "launches"),
                    span=12,
                ),
            ],
            gutter="md",
        ),
    )


def _context(search: str | None) -> tuple[ReadModels, Window, str | None]:
    r = reads.current()
    return r, View.from_search(search).window(r.now_ms()), query_params(search).get("region")


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("pv-region", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def _filter(region: str | None, search: str | None) -> str:
    return merge_search(search, {"region": region})


@callback(Output("pv-now", "children"), Input("beat", "data"), Input("url", "search"))
def _now(_tick: int | None, search: str | None) -> Any:
    r, window, region = _context(search)
    rows, problem = fleet.providers_now(r, region, window.end_ms)
    return [panels.problem(problem), fleet_panels.providers_table(rows)]


@callback(
    Output("pv-latency", "figure"),
    Output("pv-latency-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _latency(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window, region = _context(search)
    grids, problem = fleet.provider_latency(r, region, window)
    return fleet_figures.latency_heatmap(grids, window), panels.problem(problem)


@callback(
    Output("pv-errors", "figure"),
    Output("pv-errors-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _errors(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window, region = _context(search)
    grids, problem = fleet.provider_errors(r, region, window)
    return fleet_figures.error_heatmap(grids, window), panels.problem(problem)


@callback(
    Output("pv-breakers", "figure"),
    Output("pv-breakers-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _breakers(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window, region = _context(search)
    grids, problem = fleet.breakers(r, region, window)
    return fleet_figures.breaker_figure(grids, window), panels.problem(problem)


@callback(
    Output("pv-routing", "figure"),
    Output("pv-routing-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _routing(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window, region = _context(search)
    grids, problem = fleet.isolation(r, region, window)
    return fleet_figures.routing_figure(grids, window), panels.problem(problem)


@callback(
    Output("pv-launches", "figure"),
    Output("pv-launches-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _launches(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, window, region = _context(search)
    curves, problem = fleet.launch_success(r, region, window)
    return fleet_figures.launch_figure(curves, window), panels.problem(problem)
