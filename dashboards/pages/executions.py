"""Executions: what the runbooks did in the range, filtered by state, runbook, triggering
alert or target; the filters live in the URL beside the time range."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, callback, ctx, dcc, html

from controlplane.runbooks.store import State as ExecState
from dashboards import acting, actions, activity, figures, panels, reads, shell
from dashboards.activity import ExecutionFilter
from dashboards.view import View, merge_search, query_params

dash.register_page(
    __name__, path="/executions", name="Executions", title="Executions · control plane"
)


GRAPH_CONFIG: Any = {"displayModeBar": False}


def layout(**params: Any) -> html.Div:
    flt = ExecutionFilter.from_params(params)
    states = [{"label": s.value.replace("_", " "), "value": s.value} for s in ExecState]
    return shell.page(
        panels.heading("Executions", "runbook runs created in the chosen range, newest first"),
        dmc.Group(
            [
                dmc.MultiSelect(
                    id="ex-state",
                    label="state",
                    data=states,
                    value=list(flt.states),
                    clearable=True,
                    w=300,
                    size="xs",
                ),
                dmc.Autocomplete(
                    id="ex-runbook",
                    label="runbook",
                    data=list(reads.current().runbooks),
                    value=flt.runbook,
                    w=200,
                    size="xs",
                ),
                dmc.TextInput(
                    id="ex-alert", label="alert", value=flt.alert, w=200, size="xs", debounce=True
                ),
                dmc.TextInput(
                    id="ex-target",
                    label="target contains",
                    value=flt.target,
                    w=200,
                    size="xs",
                    debounce=True,
                ),
            ],
            gap="sm",
            my="sm",
            align="flex-end",
        ),
        panels.card(
            "Run a runbook by hand: plan it first (a dry run changes nothing), then run it",
            html.Div(
                [actions.run_controls(list(reads.current().runbooks)), dcc.Store("run-planned")]
            ),
        ),
        dmc.Space(h="md"),
        panels.card("When", dcc.Graph(id="ex-timeline", config=GRAPH_CONFIG)),
        dmc.Space(h="md"),
        panels.card("Executions", html.Div(id="ex-table")),
    )


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("ex-state", "value"),
    Input("ex-runbook", "value"),
    Input("ex-alert", "value"),
    Input("ex-target", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def _filter(
    states: list[str] | None,
    runbook: str | None,
    alert: str | None,
    target: str | None,
    search: str | None,
) -> str:
    flt = ExecutionFilter.from_params(
        {"state": ",".join(states or []), "runbook": runbook, "alert": alert, "q": target}
    )
    return merge_search(search, flt.params())


@callback(
    Output("ex-timeline", "figure"),
    Output("ex-table", "children"),
    Input("beat", "data"),
    Input("url", "search"),
)
def _executions(_tick: int | None, search: str | None) -> tuple[Any, Any]:
    r, view = reads.current(), View.from_search(search)
    window = view.window(r.now_ms())
    found, problem = activity.find_executions(
        r, ExecutionFilter.from_params(query_params(search)), window
    )
    return (
        figures.executions_figure(found, window),
        [panels.problem(problem), panels.executions_table(found, r.clock(), view.params())],
    )


@callback(
    Output("run-acted", "children"),
    Output("run-planned", "data"),
    Input("run-plan", "n_clicks"),
    Input("run-go", "n_clicks"),
    State("run-runbook", "value"),
    State("run-labels", "value"),
    State("session", "data"),
    State("url", "search"),
    prevent_initial_call=True,
)
def _run(
    _plan: int | None,
    _go: int | None,
    runbook: str | None,
    raw_labels: str | None,
    who: Any,
    search: str | None,
) -> tuple[Any, Any]:
    """Plan (a dry run), then run what was planned: the plan is kept until the inputs change."""
    labels, problem = actions.parse_labels(raw_labels)
    if not runbook or problem:
        why = problem or "choose a runbook"
        return actions.outcome(acting.Outcome(ok=False, message=why)), None
    dry_run = ctx.triggered_id == "run-plan"
    result = acting.act(
        reads.current().acting, who, actions.run_do(runbook, labels, dry_run=dry_run)
    )
    planned = {"runbook": runbook, "labels": raw_labels or ""} if dry_run and result.ok else None
    return actions.outcome(result, View.from_search(search).params()), planned


@callback(
    Output("run-go", "disabled"),
    Input("run-planned", "data"),
    Input("run-runbook", "value"),
    Input("run-labels", "value"),
)
def _runnable(planned: Any, runbook: str | None, raw_labels: str | None) -> bool:
    """Run is offered only for exactly what was just planned."""
    return not planned or planned != {"runbook": runbook, "labels": raw_labels or ""}
