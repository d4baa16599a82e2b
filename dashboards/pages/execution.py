"""One execution: what triggered it, its steps, the guards' decisions, the verification, and
who did what (its audit trail)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboards import activity, audit_panels, panels, reads, shell

dash.register_page(
    __name__,
    path_template="/executions/<execution_id>",
    name="Execution",
    title="Execution · control plane",
)


def layout(execution_id: str = "", **params: Any) -> html.Div:
    return shell.page(
        dcc.Store(id="exd-id", data=execution_id),
        html.Div(id="exd-body"),
    )


@callback(
    Output("exd-body", "children"),
    Input("tick", "n_intervals"),
    Input("url", "search"),
    State("exd-id", "data"),
)
def _detail(_tick: int | None, _search: str | None, execution_id: str) -> Any:
    r = reads.current()
    detail, problem = activity.execution_detail(r, execution_id)
    if detail is None:
        return [
            panels.heading("Execution", execution_id),
            panels.problem(problem) or panels.empty(f"No execution {execution_id!r}."),
        ]
    return audit_panels.execution_sections(detail, r.clock())
