"""The frame around every page: navigation, the time range picker, auto-refresh, light and
dark, and the URL that holds the view.

The URL is the one source of truth: the controls write it, and a URL that changes (a link,
back and forward, a control) sets the controls. Every page callback reads the view and the
page's filters from the URL (`url.search`) and refreshes on the `tick` interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import ALL, Input, Output, ctx, dcc, html, no_update
from flask import has_request_context

from dashboards import acting, reads, text
from dashboards.view import (
    CUSTOM,
    RANGES,
    REFRESHES,
    View,
    ignored,
    query_params,
    with_view,
)

NAV = (
    ("Overview", "/"),
    ("SLOs", "/slos"),
    ("Incidents", "/incidents"),
    ("Providers", "/providers"),
    ("Wallet", "/wallet"),
    ("Regions", "/regions"),
    ("Executions", "/executions"),
    ("Audit", "/audit"),
    ("Chat", "/chat"),
)
PICKER_FORMAT = "%Y-%m-%d %H:%M:%S"
THEME = {
    "primaryColor": "indigo",
    "defaultRadius": "sm",
    "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif",
}


def layout() -> dmc.MantineProvider:
    """Built for each page load: it carries who is signed in (and the CSRF token every write
    echoes back, see acting.py)."""
    # Dash also calls this once outside any request, to check the layout
    who = acting.session_view(reads.current().acting) if has_request_context() else {}
    return dmc.MantineProvider(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="session", data=who),
            dcc.Interval(id="tick", interval=5000),
            dcc.Store(id="beat"),  # the ticks pages refresh on: see install()
            dmc.AppShell(
                [
                    dmc.AppShellHeader(_header(who), px="md"),
                    dmc.AppShellMain(
                        dmc.Container(
                            [_toolbar(), dash.page_container], fluid=True, px="md", maw=1680
                        )
                    ),
                ],
                header={"height": 52},
                padding=0,
            ),
        ],
        id="provider",
        theme=THEME,
        defaultColorScheme="light",
    )


def _header(who: dict[str, Any]) -> dmc.Group:
    nav = [
        dmc.NavLink(
            label=label,
            href=dash.get_relative_path(path),
            id={"type": "nav", "path": path},
            w="auto",
            py=6,
            style={"borderRadius": 6},
        )
        for label, path in NAV
    ]
    return dmc.Group(
        [
            dmc.Group(
                [dmc.Text("Casino control plane", fw=700, size="lg", mr="md"), *nav],
                gap=4,
                wrap="nowrap",
            ),
            dmc.Group(
                [
                    _who(who),
                    dmc.ColorSchemeToggle(
                        id="scheme",
                        lightIcon=dmc.Text("dark", size="xs", fw=600),
                        darkIcon=dmc.Text("light", size="xs", fw=600),
                        variant="default",
                        size="lg",
                        w=52,
                    ),
                ],
                gap="sm",
                wrap="nowrap",
            ),
        ],
        h="100%",
        justify="space-between",
        wrap="nowrap",
    )


def _who(who: dict[str, Any]) -> Any:
    """Who is signed in, and the way in or out (plain links: signing in is not a Dash page)."""
    if not who.get("acts"):
        return dmc.Text("read-only", size="xs", c="dimmed")
    if who.get("user"):
        return dmc.Group(
            [
                dmc.Text(f"{who['user']} · {who['role']}", size="sm", fw=600, id="who"),
                html.A("sign out", href=dash.get_relative_path("/signout"), className="signout"),
            ],
            gap="xs",
        )
    return html.A("sign in", href=dash.get_relative_path("/signin"), id="signin")


def _toolbar() -> dmc.Group:
    range_options = [{"label": r, "value": r} for r in RANGES] + [
        {"label": "custom", "value": CUSTOM}
    ]
    picker = {"withSeconds": True, "valueFormat": "YYYY-MM-DD HH:mm:ss", "size": "xs", "w": 190}
    return dmc.Group(
        [
            dmc.SegmentedControl(id="range", data=range_options, value="1h", size="xs"),
            dmc.Group(
                [
                    dmc.DateTimePicker(id="from", placeholder="from (UTC)", **picker),
                    dmc.Text("to", size="xs", c="dimmed"),
                    dmc.DateTimePicker(id="to", placeholder="to (UTC)", **picker),
                ],
                id="custom",
                gap=6,
                style={"display": "none"},
            ),
            dmc.Group(
                [
                    dmc.Switch(id="live", label="auto-refresh", checked=True, size="sm"),
                    dmc.Select(
                        id="refresh",
                        data=list(REFRESHES),
                        value="5s",
                        size="xs",
                        w=76,
                        allowDeselect=False,
                        comboboxProps={"withinPortal": True},
                    ),
                    dmc.Text(id="updated", size="xs", c="dimmed", miw=150),
                    dmc.Text(id="url-note", size="xs", c="orange"),
                ],
                gap="xs",
            ),
        ],
        justify="space-between",
        py="sm",
        gap="sm",
    )


def sync(
    trigger: str | None,
    search: str | None,
    controls: tuple[str | None, str | None, str | None, str | None, bool | None],
    now_ms: int,
) -> tuple[Any, ...]:
    """The toolbar's one callback, as a function: the URL sets the controls, or a control
    sets the URL. Returns (search, range, from, to, refresh, live, custom style, tick
    interval, tick disabled)."""
    if trigger in (None, "url"):
        view = View.from_search(search)
        shown_from, shown_to = _pickers(view, now_ms)
        controls_out: tuple[Any, ...] = (
            view.range,
            shown_from,
            shown_to,
            view.refresh,
            not view.paused,
        )
        new_search: Any = no_update
    else:
        rng, start, end, refresh, live = controls
        if trigger == "range" and rng == CUSTOM:
            # open the custom range on the window shown so far
            start, end = _pickers(View.from_search(search), now_ms)
        view = View.from_params(
            {
                **query_params(search),
                "range": rng or "",
                "from": start or "",
                "to": end or "",
                "refresh": refresh or "",
                "paused": "" if live else "1",
            }
        )
        controls_out = (no_update, start, end, no_update, no_update)
        changed = with_view(search, view)
        new_search = changed if changed != (search or "") else no_update
    shown = controls_out[0] if controls_out[0] is not no_update else controls[0]
    custom = {"display": "flex" if shown == CUSTOM else "none"}
    return (new_search, *controls_out, custom, view.refresh_ms, view.paused)


def _pickers(view: View, now_ms: int) -> tuple[str, str]:
    window = view.window(now_ms)
    return _picker_text(window.start_ms), _picker_text(window.end_ms)


def _picker_text(t_ms: int) -> str:
    return text.utc(t_ms / 1000).removesuffix(" UTC")


def nav_state(pathname: str | None, search: str | None) -> tuple[list[str], list[bool]]:
    """Nav links keep the view (not the page's own filters); the current page is active."""
    view = View.from_search(search)
    here = dash.strip_relative_path(pathname or "") or ""
    hrefs = [text.link(path, view.params()) for _label, path in NAV]
    active = [
        (path.strip("/") == here) if path == "/" else here.startswith(path.strip("/"))
        for _label, path in NAV
    ]
    return hrefs, active


def url_note(search: str | None) -> str:
    """Says which parameters of the link were not understood (the defaults are shown)."""
    bad = ignored(search)
    return f"ignored {', '.join(bad)}: showing the defaults" if bad else ""


def updated_text(search: str | None, now_ms: int) -> str:
    view = View.from_search(search)
    if view.range == CUSTOM:
        return "fixed range"
    state = "paused" if view.paused else f"every {view.refresh}"
    return f"updated {text.utc(now_ms / 1000)[11:19]} UTC ({state})"


def install(app: dash.Dash) -> None:
    """The toolbar's and the navigation's callbacks, on `app` (the shell is imported once,
    while Dash re-reads the page modules for every app it builds)."""

    @app.callback(
        Output("url", "search"),
        Output("range", "value"),
        Output("from", "value"),
        Output("to", "value"),
        Output("refresh", "value"),
        Output("live", "checked"),
        Output("custom", "style"),
        Output("tick", "interval"),
        Output("tick", "disabled"),
        Input("url", "search"),
        Input("range", "value"),
        Input("from", "value"),
        Input("to", "value"),
        Input("refresh", "value"),
        Input("live", "checked"),
    )
    def _sync(
        search: str | None,
        rng: str | None,
        start: str | None,
        end: str | None,
        refresh: str | None,
        live: bool | None,
    ) -> tuple[Any, ...]:
        return sync(ctx.triggered_id, search, (rng, start, end, refresh, live), reads.now_ms())

    @app.callback(
        Output({"type": "nav", "path": ALL}, "href"),
        Output({"type": "nav", "path": ALL}, "active"),
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def _nav(pathname: str | None, search: str | None) -> tuple[Sequence[str], Sequence[bool]]:
        return nav_state(pathname, search)

    @app.callback(Output("updated", "children"), Input("beat", "data"), Input("url", "search"))
    def _updated(_tick: int | None, search: str | None) -> str:
        return updated_text(search, reads.now_ms())

    # A tick while any callback is still in flight is skipped, in the browser: a query slower
    # than the refresh interval never piles requests up on the server.
    app.clientside_callback(
        """function(n) {
            const busy = document.querySelector('[data-dash-is-loading="true"]');
            return busy ? window.dash_clientside.no_update : n;
        }""",
        Output("beat", "data"),
        Input("tick", "n_intervals"),
    )

    @app.callback(Output("url-note", "children"), Input("url", "search"))
    def _url_note(search: str | None) -> str:
        return url_note(search)


def page(*children: Any) -> html.Div:
    """A page's root. Its callbacks read the view from the URL (`url.search`), so a changed
    range or filter refreshes them without re-rendering the page."""
    return html.Div(list(children))
