"""Wallet: whether the operator's wallet answers the aggregator (per operation, as both sides
count it), how fast, the retry queue of owed wins and rollbacks (depth, oldest item), its
replays and their outcomes, and the wallet SLOs' error budget (rules/slo/wallet.yaml)."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, callback, dcc, html

from dashboards import fleet, fleet_figures, panels, reads, shell, slo_panels
from dashboards.reads import ReadModels
from dashboards.view import View, Window

dash.register_page(__name__, path="/wallet", name="Wallet", title="Wallet · control plane")

GRAPH: Any = {"displayModeBar": False, "responsive": True}


def graph_card(title: str, key: str, *above: Any) -> dmc.Card:
    """A chart with room above it for the problem its query may have."""
    return panels.card(
        title, *above, html.Div(id=f"wl-{key}-problem"), dcc.Graph(id=f"wl-{key}", config=GRAPH)
    )


def layout(**params: Any) -> html.Div:
    half = {"base": 12, "lg": 6}
    return shell.page(
        panels.heading(
            "Wallet",
            "the aggregator's calls to the operator wallet; a definite answer (ok, or a "
            "business status such as insufficient funds) counts as answered, as in the SLO",
        ),
        dmc.Grid(
            [
                dmc.GridCol(
                    graph_card("Wallet SLOs: error budget", "budget", html.Div(id="wl-slos")),
                    span=12,
                ),
                dmc.GridCol(graph_card("Answered per operation", "answered"), span=12),
                dmc.GridCol(graph_card("Latency, p50 (dotted) and p99", "latency"), span=half),
                dmc.GridCol(graph_card("Retry queue", "queue"), span=half),
                dmc.GridCol(graph_card("Replays and their outcomes", "replays"), span=12),
            ],
            gutter="md",
            mt="sm",
        ),
    )


def _context(search: str | None) -> tuple[ReadModels, View, Window]:
    r, view = reads.current(), View.from_search(search)
    return r, view, view.window(r.now_ms())


@callback(
    Output("wl-slos", "children"),
    Output("wl-budget", "figure"),
    Output("wl-budget-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _budget(_tick: int | None, search: str | None) -> tuple[Any, Any, Any]:
    r, view, window = _context(search)
    budget, problems = fleet.wallet_budget(r, window)
    return (
        slo_panels.slo_table(budget.rows, view.params()),
        fleet_figures.budget_lines_figure(budget.budget, window),
        panels.problems(problems),
    )


@callback(
    Output("wl-answered", "figure"),
    Output("wl-answered-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _answered(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, _view, window = _context(search)
    curves, problem = fleet.wallet_answered(r, window)
    return fleet_figures.wallet_answered_figure(curves, window), panels.problem(problem)


@callback(
    Output("wl-latency", "figure"),
    Output("wl-latency-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _latency(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, _view, window = _context(search)
    curves, problem = fleet.wallet_latency(r, window)
    return fleet_figures.wallet_latency_figure(curves, window), panels.problem(problem)


@callback(
    Output("wl-queue", "figure"),
    Output("wl-queue-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _queue(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, _view, window = _context(search)
    curves, problem = fleet.wallet_queue(r, window)
    return fleet_figures.queue_figure(curves, window), panels.problem(problem)


@callback(
    Output("wl-replays", "figure"),
    Output("wl-replays-problem", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _replays(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, _view, window = _context(search)
    curves, problem = fleet.wallet_replays(r, window)
    return fleet_figures.replays_figure(curves, window), panels.problem(problem)
