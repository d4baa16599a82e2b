"""Slack: buttons on the notification messages, and a slash command, acting as the person who
clicked or typed.

    slack = build_slack(config.slack, ops=ops, access=access, engine=db, groups=..., alerts=...)
    app.register_blueprint(slack.blueprint)          # POST /slack/actions, /slack/commands
    dispatcher.acknowledged = slack.acknowledged     # an acknowledged group stops its reminders
    slack.buttons.for_group(view)                    # the message renderer's `actions` hook
    slack.buttons.for_execution(ex)                  # Approve / Reject of a pending execution
    decided_blocks(blocks, ex)                       # its buttons once decided, for chat.update

    tokens.py    signed button values (HMAC, expiry, nonce) and the spent nonces
    buttons.py   Block Kit elements, and the blocks of a decided request
    signing.py   Slack's request signature over the raw body (slack_sdk SignatureVerifier)
    api.py       the two endpoints: verify, acknowledge at once, do the work on the worker
    actions.py   a click: token, person, role, still open, nonce, then Operations; audited
    commands.py  the slash command: status, pause, resume, silence, run; audited
    acks.py      who is on an alert group, until it resolves
    respond.py   the worker, and answers through response_url or the Web API
    tables.py    slack_nonces and acknowledgements (migration 0006)
    messaging.py the Slack messages wired to the rest (notify/slack.py), with these buttons
    standin.py   a stand-in for Slack's Web API (the demo, the tests)

Sits above `operate/` (it calls Operations, as the HTTP API does) and below the composition
(`pipeline.py` builds it); `migrations/` imports its tables. Nothing below imports it: the
notifier in notify/ gets the buttons as an injected callable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests
from flask import Blueprint
from sqlalchemy.engine import Engine

from controlplane.access import Access
from controlplane.access.session import stored_secret
from controlplane.config import SlackConfig
from controlplane.notify.alerts import Alert, GroupKey
from controlplane.operate import Operations
from controlplane.slack.acks import Acknowledgements, GroupLike
from controlplane.slack.actions import Interactions
from controlplane.slack.api import Endpoints, unconfigured_blueprint
from controlplane.slack.buttons import Buttons, decided_blocks, decision_text
from controlplane.slack.commands import Commands
from controlplane.slack.respond import Responder, Worker
from controlplane.slack.signing import RequestVerifier
from controlplane.slack.tables import metadata
from controlplane.slack.tokens import Action, Nonces, Signer

SECRET_NAME = "slack_buttons"  # the button key's row in `secrets`; not the session key

__all__ = [
    "SECRET_NAME",
    "Action",
    "Slack",
    "build_slack",
    "decided_blocks",
    "decision_text",
    "metadata",
]


@dataclass(frozen=True, kw_only=True)
class Slack:
    blueprint: Blueprint
    buttons: Buttons
    acks: Acknowledgements
    acknowledged: Callable[[GroupKey], bool]  # the dispatcher's hook
    worker: Worker | None  # None when Slack is not configured (no signing secret)

    def close(self) -> None:
        """The clicks already acknowledged are done and answered, then the worker stops."""
        if self.worker is not None:
            self.worker.close()

    def stopping_first(self, stop: Callable[[], None]) -> Callable[[], None]:
        """`stop`, after the worker: its jobs act through the database `stop` closes."""

        def both() -> None:
            try:
                self.close()
            finally:
                stop()

        return both


def build_slack(
    config: SlackConfig,
    *,
    ops: Operations,
    access: Callable[[], Access],
    engine: Engine,
    groups: Callable[[], Sequence[GroupLike]] = tuple,
    alerts: Callable[[], Sequence[Alert]] = tuple,
    clock: Callable[[], float] = time.time,
    max_silence_s: float = 30 * 86400.0,
    session: requests.Session | None = None,
) -> Slack:
    """Starts nothing: the worker's threads start with the first request."""
    signer = Signer(stored_secret(engine, SECRET_NAME), clock=clock)
    buttons = Buttons(signer, runbooks=lambda: tuple(ops.remediator.runbooks.values()), clock=clock)
    acks = Acknowledgements(engine, ops.audit, clock)
    acknowledged = acks.hook(groups)
    if not config.signing_secret:
        return Slack(
            blueprint=unconfigured_blueprint(),
            buttons=buttons,
            acks=acks,
            acknowledged=acknowledged,
            worker=None,
        )
    nonces = Nonces(engine, clock)
    worker = Worker()
    endpoints = Endpoints(
        verifier=RequestVerifier(config.signing_secret, clock=clock),
        interactions=Interactions(
            ops=ops, access=access, signer=signer, nonces=nonces, acks=acks, clock=clock
        ),
        commands=Commands(
            ops=ops,
            access=access,
            acks=acks,
            alerts=alerts,
            clock=clock,
            max_silence_s=max_silence_s,
        ),
        responder=Responder(api_url=config.api_url, bot_token=config.bot_token, session=session),
        worker=worker,
        nonces=nonces,
        audit=ops.audit,
        clock=clock,
    )
    return Slack(
        blueprint=endpoints.blueprint(),
        buttons=buttons,
        acks=acks,
        acknowledged=acknowledged,
        worker=worker,
    )
