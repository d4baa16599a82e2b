"""The audit log: every decision, step and human action, newest first, filtered by kind,
actor or execution; and whether the hash chain still verifies."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, callback, html

from dashboards import activity, audit_panels, panels, reads, shell
from dashboards.activity import AuditFilter
from dashboards.view import View, merge_search, query_params

dash.register_page(__name__, path="/audit", name="Audit", title="Audit · control plane")

KINDS = (
    "triggered",
    "guard",
    "pending_approval",
    "approved",
    "rejected",
    "expired",
    "running",
    "step",
    "verification",
    "succeeded",
    "failed",
    "rolling_back",
    "rolled_back",
    "refused",
    "shadowed",
    "resumed",
    "on_resolved",
    "alert_resolved",
    "automation_paused",
    "automation_resumed",
    "maintenance_started",
    "maintenance_ended",
)


def layout(**params: Any) -> html.Div:
    flt = AuditFilter.from_params(params)
    return shell.page(
        panels.heading("Audit log", "append-only and hash-chained; newest first"),
        html.Div(id="audit-chain", style={"marginTop": 8}),
        dmc.Group(
            [
                dmc.Autocomplete(
                    id="audit-kind",
                    label="kind",
                    data=list(KINDS),
                    value=flt.kind,
                    w=200,
                    size="xs",
                ),
                dmc.TextInput(
                    id="audit-actor",
                    label="actor",
                    value=flt.actor,
                    w=200,
                    size="xs",
                    debounce=True,
                ),
                dmc.TextInput(
                    id="audit-execution",
                    label="execution id",
                    value=flt.execution,
                    w=320,
                    size="xs",
                    debounce=True,
                ),
            ],
            gap="sm",
            my="sm",
        ),
        panels.card("Events", html.Div(id="audit-table")),
    )


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("audit-kind", "value"),
    Input("audit-actor", "value"),
    Input("audit-execution", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def _filter(kind: str | None, actor: str | None, execution: str | None, search: str | None) -> str:
    flt = AuditFilter.from_params({"kind": kind, "actor": actor, "execution": execution})
    return merge_search(search, flt.params())


@callback(Output("audit-chain", "children"), Input("beat", "data"), Input("url", "search"))
def _chain(_tick: int | None, _search: str | None) -> Any:
    r = reads.current()
    status, problem = activity.chain_status(r)
    return [panels.problem(problem), audit_panels.chain_panel(status, r.clock())]


@callback(Output("audit-table", "children"), Input("beat", "data"), Input("url", "search"))
def _events(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    page, problem = activity.audit_events(
        r, AuditFilter.from_params(query_params(search)), view.window(r.now_ms())
    )
    return [panels.problem(problem), audit_panels.audit_table(page, r.clock(), view.params())]
