"""Overview: what needs me now. Firing alerts by severity with their age; executions running
or waiting for approval, and what automation did lately; the automation switch and its
budget; every SLO by error budget left."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, callback, ctx, html

from dashboards import acting, actions, activity, panels, reads, shell, slo_panels, slos
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
                    panels.card(
                        "Alerts, firing first",
                        html.Div([html.Div(id="ov-alerts"), actions.silence_controls()]),
                    ),
                    span={"base": 12, "lg": 9},
                ),
                dmc.GridCol(
                    panels.card(
                        "Automation",
                        html.Div([html.Div(id="ov-automation"), actions.automation_controls()]),
                    ),
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
    Output("ov-silence-alert", "data"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _alerts(_tick: int | None, search: str | None) -> tuple[Any, Any, Any]:
    r = reads.current()
    rows, problem = activity.current_alerts(r)
    return (
        [
            panels.problem(problem),
            panels.alerts_table(rows, r.clock(), View.from_search(search).params()),
        ],
        panels.alert_summary(rows),
        actions.alert_options(rows),
    )


@callback(
    Output("ov-acted", "children"),
    Output("ov-automation", "children", allow_duplicate=True),
    Input("ov-pause", "n_clicks"),
    Input("ov-resume", "n_clicks"),
    State("ov-reason", "value"),
    State("session", "data"),
    prevent_initial_call=True,
)
def _pause_or_resume(
    _p: int | None, _r: int | None, reason: str | None, who: Any
) -> tuple[Any, Any]:
    do = actions.pause_do(reason) if ctx.triggered_id == "ov-pause" else actions.resume_do()
    done = actions.outcome(acting.act(reads.current().acting, who, do))
    return done, _automation(None, None)  # the new state now, not at the next tick


@callback(
    Output("ov-silenced", "children"),
    Input("ov-silence-1", "n_clicks"),
    Input("ov-silence-4", "n_clicks"),
    State("ov-silence-alert", "value"),
    State("session", "data"),
    prevent_initial_call=True,
)
def _silence(_one: int | None, _four: int | None, chosen: str | None, who: Any) -> Any:
    r = reads.current()
    rows, _problem = activity.current_alerts(r)
    matchers = actions.matchers_of(chosen, rows)
    if not matchers:
        return actions.outcome(acting.Outcome(ok=False, message="choose an alert first"))
    hours = 1 if ctx.triggered_id == "ov-silence-1" else 4
    return actions.outcome(
        acting.act(r.acting, who, actions.silence_do(matchers, hours, r.clock()))
    )


@callback(Output("ov-automation", "children"), Input("beat", "data"), Input("url", "search"))
def _automation(_tick: int | None, _search: str | None) -> Any:
    r = reads.current()
    state, problem = activity.automation(r)
    return [panels.problem(problem), panels.automation_panel(state, r.clock())]


@callback(Output("ov-slos", "children"), Input("beat", "data"), Input("url", "search"))
def _slos(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    rows, problem = slos.slo_rows(r, view.window(r.now_ms()).end_ms)
    return [panels.problem(problem), slo_panels.slo_table(rows, view.params())]


@callback(
    Output("ov-active", "children"),
    Output("ov-waiting", "children"),
    Input("beat", "data"),
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


@callback(Output("ov-recent", "children"), Input("beat", "data"), Input("url", "search"))
def _recent(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    recent, problem = activity.finished_executions(r, view.window(r.now_ms()), limit=8)
    return [panels.problem(problem), panels.executions_table(recent, r.clock(), view.params())]
