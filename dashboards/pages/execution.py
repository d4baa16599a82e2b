"""One execution: what triggered it, its steps, the guards' decisions, the verification, and
who did what (its audit trail)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboards import acting, actions, activity, audit_panels, incidents, panels, reads, shell
from dashboards.view import View

dash.register_page(
    __name__,
    path_template="/executions/<execution_id>",
    name="Execution",
    title="Execution · control plane",
)


def layout(execution_id: str = "", **params: Any) -> html.Div:
    return shell.page(
        dcc.Store(id="exd-id", data=execution_id),
        actions.approval_controls(),
        html.Div(id="exd-body"),
    )


@callback(
    Output("exd-body", "children"),
    Input("beat", "data"),
    Input("url", "search"),
    State("exd-id", "data"),
)
def _detail(_tick: int | None, search: str | None, execution_id: str) -> Any:
    r = reads.current()
    detail, problem = activity.execution_detail(r, execution_id)
    if detail is None:
        return [
            panels.heading("Execution", execution_id),
            panels.problem(problem) or panels.empty(f"No execution {execution_id!r}."),
        ]
    sections = audit_panels.execution_sections(detail, r.clock())
    if detail.execution.trigger != "alert":
        return sections
    incident = incidents.incident_id(round(detail.execution.created_at * 1000))
    params = View.from_search(search).params()
    return [panels.anchor("the incident it acted in", f"/incidents/{incident}", params), *sections]


@callback(
    Output("exd-actions", "style"),
    Input("beat", "data"),
    Input("url", "search"),
    State("exd-id", "data"),
)
def _decidable(_tick: int | None, _search: str | None, execution_id: str) -> dict[str, str]:
    """Approve and reject are shown while the execution waits for a decision."""
    detail, _problem = activity.execution_detail(reads.current(), execution_id)
    waiting = detail is not None and detail.execution.state.value == "pending_approval"
    return {"display": "flex" if waiting else "none"}


@callback(
    Output("exd-acted", "children"),
    Input("exd-approve", "n_clicks"),
    Input("exd-reject", "n_clicks"),
    State("exd-reason", "value"),
    State("exd-id", "data"),
    State("session", "data"),
    prevent_initial_call=True,
)
def _decide(_a: int | None, _r: int | None, reason: str | None, execution_id: str, who: Any) -> Any:
    if ctx.triggered_id == "exd-approve":
        do = actions.approve_do(execution_id)
    else:
        do = actions.reject_do(execution_id, reason)
    return actions.outcome(acting.act(reads.current().acting, who, do))
