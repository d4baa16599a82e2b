"""One incident on one time axis, the picture for its postmortem: the faults seen, each
alert's pending and firing spans, every runbook run with its steps, guard refusals,
verifications, approvals and notifications; below it everything in order, and the error
budget each SLO lost. The id is the incident's first minute (dashboards/incidents.py), so the
link holds whatever range the toolbar shows."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboards import incident_panels, incidents, panels, reads, shell, timeline
from dashboards.view import View

dash.register_page(
    __name__,
    path_template="/incidents/<incident_id>",
    name="Incident",
    title="Incident · control plane",
)

GRAPH_CONFIG: Any = {"displayModeBar": False}
BODY = {"display": "grid", "gap": "var(--mantine-spacing-md)", "marginTop": 12}


def layout(incident_id: str = "", **params: Any) -> html.Div:
    return shell.page(
        dcc.Store(id="incd-id", data=incident_id),
        html.Div(id="incd-head"),
        html.Div(id="incd-problems"),
        html.Div(
            [
                panels.card("Timeline", dcc.Graph(id="incd-timeline", config=GRAPH_CONFIG)),
                panels.card("What happened, in order", html.Div(id="incd-events")),
                panels.card("Error budget lost, per SLO", html.Div(id="incd-budget")),
            ],
            id="incd-body",
            style=BODY,
        ),
    )


@callback(
    Output("incd-head", "children"),
    Output("incd-problems", "children"),
    Output("incd-timeline", "figure"),
    Output("incd-events", "children"),
    Output("incd-budget", "children"),
    Output("incd-body", "style"),
    Input("beat", "data"),
    Input("url", "search"),
    State("incd-id", "data"),
)
def _detail(_tick: int | None, search: str | None, incident_id: str) -> tuple[Any, ...]:
    r, params = reads.current(), View.from_search(search).params()
    detail, problem = incidents.incident_detail(r, incident_id)
    if detail is None:
        missing = panels.empty(f"No incident {incident_id!r}: no page or ticket alert then.")
        back = panels.anchor("all incidents", "/incidents", params)
        head = [panels.heading("Incident", incident_id), panels.problem(problem) or missing, back]
        return head, None, {}, None, None, {"display": "none"}
    return (
        incident_panels.incident_header(detail, params, incident_id),
        panels.problems(detail.problems),
        timeline.timeline_figure(detail),
        incident_panels.events_table(detail.lanes.entries(), r.clock()),
        incident_panels.budget_table(detail.uses, params),
        BODY,
    )
