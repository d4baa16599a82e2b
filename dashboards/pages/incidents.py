"""Incidents in the chosen range, the newest first: when each started, how long it lasted
(or that it goes on), the alerts involved, the runbook runs made while it lasted and the error
budget it burnt most. What an incident is: dashboards/incidents.py."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, html

from dashboards import incident_panels, incidents, panels, reads, shell
from dashboards.view import View

dash.register_page(__name__, path="/incidents", name="Incidents", title="Incidents · control plane")


def layout(**params: Any) -> html.Div:
    return shell.page(
        panels.heading(
            "Incidents",
            "spans with a page or ticket alert pending or firing (less than 10m apart: one "
            "incident), the newest first",
        ),
        panels.card("In this range", html.Div(id="inc-table")),
    )


@callback(Output("inc-table", "children"), Input("beat", "data"), Input("url", "search"))
def _incidents(_tick: int | None, search: str | None) -> Any:
    r, view = reads.current(), View.from_search(search)
    rows, problems = incidents.incident_rows(r, view.window(r.now_ms()))
    return [
        *panels.problems(problems),
        incident_panels.incidents_table(rows, r.clock(), view.params()),
    ]
