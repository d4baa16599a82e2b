"""Dash dashboards, mounted by the control plane at /dash/. They read; people signed in act.

    create_dash(flask_app, reads=ReadModels(...))   # controlplane.app.create_app does this

    reads.py       ReadModels: the control plane's read interfaces, passed in
    acting.py      who is signed in; every button runs through `act` and the same
                   controlplane.operate.Operations as the HTTP API (roles, audit)
    signin.py      /dash/signin and /dash/signout: the session cookie
    view.py        the view in the URL (time range, refresh), steps of at most 1,000 points
    queries.py     the PromQL each panel runs
    activity.py    alerts, executions, automation, audit: data functions
    slos.py        SLO rows, burn rates, budget in events, exhaustion: data functions
    incidents.py   what an incident is (its id, start, end), the list, one incident's
                   lanes: data functions; incident_budget.py: the error budget it burnt
    incident_lanes.py   faults, alert states, runs and steps, audit decisions as lanes
                   on one time axis, and as one chronological list: pure
    timeline.py    an incident's lanes and budget lost -> one plotly figure, pure
    incident_panels.py  incident list, header, event table, budget table, pure
    fleet.py       providers, wallet, regions: range and instant queries shaped into
                   curves, provider x time grids and state grids, "now" rows: data functions
    figures.py     data -> plotly figure, pure
    fleet_figures.py    heatmaps, state maps and faceted lines of the fleet pages, pure
    panels.py, slo_panels.py, audit_panels.py, fleet_panels.py    data -> components, pure
    chat.py        the Slack stand-in's messages as Slack shows them (mrkdwn, Block Kit,
                   threads, edits, ephemeral answers) and pressing their buttons as the
                   person signed in: read over HTTP, rendered by pure functions
    shell.py       navigation, time range picker, auto-refresh, light and dark
    pages/         one module per page: `dash.register_page`, a `layout`, small callbacks
                   that call one data function and one figure or panel function
    grafana/       the main panels as a Grafana dashboard over the same PromQL API (data,
                   not code: README.md there says how to import it)

Every script and stylesheet is served from the control plane itself (Dash's and
dash-mantine-components' bundles, whose CSS ships inside their JavaScript): nothing is
fetched from elsewhere at run time.
"""

from __future__ import annotations

from typing import Any

import dash
from flask import Flask

from dashboards import guard, shell, signin
from dashboards.reads import EXTENSION, ReadModels

__all__ = ["PREFIX", "ReadModels", "create_dash"]

PREFIX = "/dash/"


def create_dash(server: Flask, *, reads: ReadModels, prefix: str = PREFIX) -> dash.Dash:
    """Mount the dashboards on `server` under `prefix`; the pages read `reads` only."""
    server.extensions[EXTENSION] = reads
    options: dict[str, Any] = {"server": server, "update_title": None}  # typed narrower than used
    app = dash.Dash(
        __name__,
        url_base_pathname=prefix,
        use_pages=True,
        pages_folder="pages",
        assets_folder="assets",
        serve_locally=True,
        title="Casino control plane",
        suppress_callback_exceptions=True,
        **options,
    )
    app.layout = shell.layout
    shell.install(app)
    # Take this app's callbacks now: `dash.callback` collects them process-wide until an app
    # first serves, and the next app built in this process must not inherit them.
    _claim_callbacks(app)
    guard.install(server, prefix, app)
    if reads.acting is not None:
        signin.install(server, reads.acting, prefix)
    return app


def _claim_callbacks(app: Any) -> None:
    app._setup_server()
