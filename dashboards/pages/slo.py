"""One SLO, one SLI instance at a time: objective, availability, error budget left (as a share
and in bad events), when it runs out at the current burn, burn rate per window against the
alert thresholds, the burn-down with its ideal line, the SLI against the objective, its alerts."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, callback, dcc, html

from controlplane.slo import SLO
from dashboards import figures, panels, queries, reads, shell, slo_panels, slos, text
from dashboards.activity import attempt
from dashboards.reads import ReadModels
from dashboards.view import View, query_params

dash.register_page(
    __name__, path_template="/slos/<slo_id>", name="SLO", title="SLO · control plane"
)


def layout(slo_id: str = "", **params: Any) -> html.Div:
    slo = reads.current().slo(slo_id)
    if slo is None:
        known = [panels.anchor(s.id, f"/slos/{s.id}") for s in reads.current().slos]
        return html.Div(
            [panels.heading("Unknown SLO", f"no SLO {slo_id!r}"), dmc.Stack(known, gap=4)]
        )
    config: Any = {"displayModeBar": False, "responsive": True}
    return shell.page(
        dcc.Store(id="slo-id", data=slo.id),
        dmc.Group(
            [
                panels.heading(f"{slo.service} / {slo.name}", slo.description or None),
                html.Div(id="slo-picker"),
            ],
            justify="space-between",
            mb="sm",
        ),
        html.Div(id="slo-problems"),
        html.Div(id="slo-cards"),
        dmc.Grid(
            [
                dmc.GridCol(
                    panels.card(
                        "SLI against the objective", dcc.Graph(id="slo-sli", config=config)
                    ),
                    span=12,
                ),
                dmc.GridCol(
                    panels.card(
                        "Error budget burn-down", dcc.Graph(id="slo-budget", config=config)
                    ),
                    span={"base": 12, "lg": 6},
                ),
                dmc.GridCol(
                    panels.card(
                        "Burn rate per window against the alert thresholds",
                        dcc.Graph(id="slo-burn", config=config),
                    ),
                    span={"base": 12, "lg": 6},
                ),
                dmc.GridCol(panels.card("Its alerts", html.Div(id="slo-alerts")), span=12),
            ],
            gutter="md",
            mt="md",
        ),
    )


@callback(
    Output("slo-picker", "children"),
    Output("slo-problems", "children"),
    Output("slo-cards", "children"),
    Output("slo-sli", "figure"),
    Output("slo-budget", "figure"),
    Output("slo-burn", "figure"),
    Output("slo-alerts", "children"),
    Input("beat", "data"),
    Input("url", "search"),
    State("slo-id", "data"),
)
def _detail(_tick: int | None, search: str | None, slo_id: str) -> tuple[Any, ...]:
    r, view = reads.current(), View.from_search(search)
    slo = r.slo(slo_id)
    assert slo is not None  # the layout rendered for a known SLO
    detail = slos.slo_detail(
        r,
        slo,
        {k: v for k, v in query_params(search).items() if k in slo.by},
        view.window(r.now_ms()),
    )
    now = detail.window.end_ms / 1000
    return (
        slo_panels.instance_picker(detail, view.params()),
        [*panels.problems(detail.problems), _history_note(r, slo, detail)],
        slo_panels.detail_cards(detail, now),
        figures.sli_figure(detail.sli, slo.objective, detail.window),
        figures.budget_figure(detail.budget, detail.window, slo.window.total_seconds()),
        figures.burn_figure(detail.selected.pairs if detail.selected else ()),
        panels.alerts_table(detail.alerts, now, view.params()),
    )


def _history_note(r: ReadModels, slo: SLO, detail: slos.SLODetail) -> Any:
    """Says where the budget series begins when the view starts earlier: the embedded store
    keeps SLO series for the SLO window and a margin, a remote what its retention keeps."""
    window, row = detail.window, detail.selected
    if row is None:
        return None
    expr = queries.budget_remaining(slo, row.labels)
    since, _ = attempt(lambda: slos.data_since(r.querier, expr, window), None, "its history")
    if since is None or since <= window.start_ms + window.step_ms:
        return None
    return dmc.Alert(
        f"Data before {text.utc(since / 1000, seconds=False)} is not there: the store holds "
        "this SLO's series from then on, so the charts start there.",
        title="Partial history",
        color="gray",
        variant="light",
        my="xs",
    )
