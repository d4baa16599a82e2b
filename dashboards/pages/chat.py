"""Chat: what the control plane posted to Slack, as Slack shows it, read from the Slack
stand-in (the demo's); its buttons pressed as the person signed in (dashboards/chat.py)."""

from __future__ import annotations

import time
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboards import acting, actions, chat, panels, reads, shell
from dashboards.view import View, query_params

dash.register_page(__name__, path="/chat", name="Chat", title="Chat · control plane")


def layout(**params: Any) -> html.Div:
    return shell.page(
        panels.heading(
            "Chat",
            "what the control plane posted to Slack, as it is now (edits applied, threads, "
            "answers only you see), read from the Slack stand-in; its buttons act as you",
        ),
        html.Div(id="chat-acted"),
        html.Div(id="chat-body", style={"marginTop": 8}),
        dcc.Store(id="chat-digest"),
        dcc.Store(id="chat-pending"),
        dcc.Store(id="chat-pressed"),
        dmc.Modal(
            [
                dmc.Text(id="chat-confirm-text", size="sm", mb="md"),
                dmc.Group(
                    [
                        dmc.Button("Cancel", id="chat-confirm-no", variant="default", size="xs"),
                        dmc.Button("Yes", id="chat-confirm-yes", size="xs"),
                    ],
                    justify="flex-end",
                    gap="xs",
                ),
            ],
            id="chat-confirm",
            opened=False,
            centered=True,
            title="",
        ),
    )


@callback(
    Output("chat-body", "children"),
    Output("chat-digest", "data"),
    Input("beat", "data"),
    Input("url", "search"),
    Input("chat-pressed", "data"),
    State("chat-digest", "data"),
)
def _show(_tick: Any, search: str | None, _pressed: Any, shown: str | None) -> tuple[Any, Any]:
    r = reads.current()
    base = chat.standin_base(r.slack_api_url)
    if base is None:
        note = dmc.Alert(chat.not_shown(r.slack_api_url), color="gray", variant="light")
        return note, None
    viewer = chat.viewer_of(r.acting)
    try:
        snapshot = chat.fetch(base)
    except chat.ChatUnavailable as exc:
        return panels.problem(str(exc)), None
    wanted = query_params(search).get("channel")
    digest = f"{snapshot.digest()}:{viewer.slack_id}:{viewer.name}:{wanted}:{search}"
    if digest == shown:
        return no_update, no_update
    body = chat.page_body(
        snapshot,
        viewer=viewer,
        wanted=wanted,
        params=View.from_search(search).params(),
        now_s=r.clock(),
    )
    return body, digest


@callback(
    Output("chat-confirm", "opened"),
    Output("chat-confirm", "title"),
    Output("chat-confirm-text", "children"),
    Output("chat-confirm-yes", "children"),
    Output("chat-confirm-no", "children"),
    Output("chat-pending", "data"),
    Output("chat-acted", "children"),
    Output("chat-pressed", "data"),
    Input(
        {"type": chat.BUTTON, "channel": ALL, "ts": ALL, "action": ALL, "block": ALL}, "n_clicks"
    ),
    Input("chat-confirm-yes", "n_clicks"),
    Input("chat-confirm-no", "n_clicks"),
    State("chat-pending", "data"),
    State("session", "data"),
    prevent_initial_call=True,
)
def _press(
    _buttons: Any, _yes: Any, _no: Any, pending: dict[str, str] | None, who: Any
) -> tuple[Any, ...]:
    """A button: asks first when it has a confirmation (as Slack does), then is pressed."""
    trigger = ctx.triggered_id
    if trigger is None or not ctx.triggered or not ctx.triggered[0].get("value"):
        raise PreventUpdate  # a button drawn again, not pressed
    closed = (False, no_update, no_update, no_update, no_update, None)
    if trigger == "chat-confirm-no":
        return (*closed, no_update, no_update)
    r = reads.current()
    base = chat.standin_base(r.slack_api_url)
    if base is None:
        raise PreventUpdate
    ref = (
        chat.ButtonRef.of(pending or {})
        if trigger == "chat-confirm-yes"
        else chat.ButtonRef.of(trigger)
    )
    try:
        snapshot = chat.fetch(base)
    except chat.ChatUnavailable as exc:
        return (*closed, actions.outcome(acting.Outcome(ok=False, message=str(exc))), no_update)
    button = chat.button_of(snapshot, ref)
    if button is None:
        gone = acting.Outcome(
            ok=False, message="that button is no longer there: the message changed"
        )
        return (*closed, actions.outcome(gone), no_update)
    label = chat.label_of(button)
    confirm = chat.confirm_of(button)
    if confirm is not None and trigger != "chat-confirm-yes":
        title, body, yes, no = confirm
        return (True, title, body, yes, no, ref.as_data(), no_update, no_update)

    def do(_ops: Any, user: Any) -> acting.Outcome:
        if not user.slack_id:
            return acting.Outcome(
                ok=False,
                message=f"{user.name} has no slack_id in the access file: nobody to press as",
            )
        return chat.press(base, ref, slack_id=user.slack_id, name=user.name, label=label)

    outcome = acting.act(r.acting, who, do)
    if outcome.ok:  # the control plane answers a moment after it acknowledged the press
        chat.wait_for_change(base, snapshot.digest())
    return (*closed, actions.outcome(outcome), time.time())
