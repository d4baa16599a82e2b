"""SLOs: every SLO and SLI instance, least error budget left first, with status colour, burn
rates against the multiwindow thresholds, availability against the objective, and alerts."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, html

from dashboards import panels, reads, shell, slo_panels, slos
from dashboards.view import View

dash.register_page(__name__, path="/slos", name="SLOs", title="SLOs · control plane")


def layout(**params: Any) -> html.Div:
    return shell.page(
        panels.heading(
            "Service level objectives",
            "Burn rates are shown per window; an alert pages when both windows of a pair "
            "(1h and 5m over 14.4x, 6h and 30m over 6x) burn too fast, and opens a ticket "
            "for 1d and 2h over 3x, 3d and 6h over 1x.",
        ),
        panels.card("Every SLO, least error budget first", html.Div(id="slos-table")),
    )


@callback(Output("slos-table", "children"), Input("beat", "data"), Input("url", "search"))
def _table(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    rows, problem = slos.slo_rows(r, view.window(r.now_ms()).end_ms)
    return [panels.problem(problem), slo_panels.slo_table(rows, view.params())]
