"""Overview: what needs me now. Firing alerts by severity with their age; executions running
or waiting for approval, and what automation did lately; the automation switch and its
budget; every SLO by error budget left."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, callback, html

from dashboards import activity, panels, reads, shell, slo_panels, slos
from dashboards.view import View

dash.register_page(__name__, path="/", name="Overview", title="Overview · control plane")


def layout(**params: Any) -> html.Div:
    return shell.page(
        dmc.Group(
            [
                panels.heading("What needs me now"),
                dmc.Group([html.Div(id="ov-waiting"), html.Div(id="ov-summary")], gap="xs"),
            ],
            justify="space-between",
            mb="sm",
        ),
        dmc.Grid(
            [
                dmc.GridCol(
                    panels.card("Alerts, firing first", html.Div(id="ov-alerts")),
                    span={"base": 12, "lg": 9},
                ),
                dmc.GridCol(
                    panels.card("Automation", html.Div(id="ov-automation")),
                    span={"base": 12, "lg": 3},
                ),
                dmc.GridCol(
                    panels.card("Running or waiting for approval", html.Div(id="ov-active")),
                    span=12,
                ),
                dmc.GridCol(
                    panels.card("SLOs, least error budget first", html.Div(id="ov-slos")),
                    span=12,
                ),
                dmc.GridCol(
                    panels.card("What automation did in this range", html.Div(id="ov-recent")),
                    span=12,
                ),
            ],
            gutter="md",
        ),
    )


@callback(
    Output("ov-alerts", "children"),
    Output("ov-summary", "children"),
    Input("tick", "n_intervals"),
    Input("url", "search"),
)
def _alerts(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r = reads.current()
    rows, problem = activity.current_alerts(r)
    return (
        [
            panels.problem(problem),
            panels.alerts_table(rows, r.clock(), View.from_search(search).params()),
        ],
        panels.alert_summary(rows),
    )


@callback(Output("ov-automation", "children"), Input("tick", "n_intervals"), Input("url", "search"))
def _automation(_tick: int | None, _search: str | None) -> Any:
    r = reads.current()
    state, problem = activity.automation(r)
    return [panels.problem(problem), panels.automation_panel(state, r.clock())]


@callback(Output("ov-slos", "children"), Input("tick", "n_intervals"), Input("url", "search"))
def _slos(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    rows, problem = slos.slo_rows(r, view.window(r.now_ms()).end_ms)
    return [panels.problem(problem), slo_panels.slo_table(rows, view.params())]


@callback(
    Output("ov-active", "children"),
    Output("ov-waiting", "children"),
    Input("tick", "n_intervals"),
    Input("url", "search"),
)
def _active(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r = reads.current()
    active, problem = activity.active_executions(r)
    return (
        [
            panels.problem(problem),
            panels.executions_table(active, r.clock(), View.from_search(search).params()),
        ],
        panels.waiting_badge(active),
    )


@callback(Output("ov-recent", "children"), Input("tick", "n_intervals"), Input("url", "search"))
def _recent(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    recent, problem = activity.finished_executions(r, view.window(r.now_ms()), limit=8)
    return [panels.problem(problem), panels.executions_table(recent, r.clock(), view.params())]
