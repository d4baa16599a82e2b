"""Requests as Slack sends them: form bodies, and the signature Slack documents
(`v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` keyed by the signing secret)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any
from urllib.parse import urlencode

from tests.controlplane.slack.conftest import SECRET, SlackWorld

_triggers = itertools.count(1)
FORM = "application/x-www-form-urlencoded"


def signature(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def trigger() -> str:
    return f"{next(_triggers)}.8088930838.0123456789abcdef0123456789abcdef"


def click_body(
    *,
    user: str,
    value: str,
    response_url: str,
    trigger_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    action_id: str = "cp:approve",
    channel: str = "C1",
    ts: str = "1700000000.000100",
) -> bytes:
    """A block_actions payload: a button pressed in a message in channel C1."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or trigger(),
        "team": {"id": "T1", "domain": "casino"},
        "channel": {"id": channel, "name": "oncall"},
        "message": {
            "type": "message",
            "ts": ts,
            "text": "[FIRING:1] RegionDown (region=eu)",
            "blocks": blocks or [],
        },
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "cp-test",
                "value": value,
                "action_ts": "1700000001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def command_body(
    *, user: str, text: str, response_url: str, trigger_id: str | None = None
) -> bytes:
    fields = {
        "token": "legacy-verification-token",
        "team_id": "T1",
        "team_domain": "casino",
        "channel_id": "C1",
        "channel_name": "oncall",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/cp",
        "text": text,
        "api_app_id": "A1",
        "response_url": response_url,
        "trigger_id": trigger_id or trigger(),
    }
    return urlencode(fields).encode()


def post(
    world: SlackWorld,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    ts = int(world.clock.now) if timestamp is None else timestamp
    signed = {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(body, ts, secret),
        "Content-Type": FORM,
    }
    return world.app.test_client().post(path, data=body, headers={**signed, **(headers or {})})


def click(
    world: SlackWorld,
    user: str,
    value: str,
    *,
    trigger_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Press a button as `user` (a Slack id), and wait for the work to be done."""
    body = click_body(
        user=user,
        value=value,
        response_url=world.response_url,
        trigger_id=trigger_id,
        blocks=blocks,
    )
    response = post(world, "/slack/actions", body, headers=headers)
    world.settle()
    return response


def command(
    world: SlackWorld,
    user: str,
    text: str,
    *,
    trigger_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    body = command_body(
        user=user, text=text, response_url=world.response_url, trigger_id=trigger_id
    )
    response = post(world, "/slack/commands", body, headers=headers)
    world.settle()
    return response


def value_of(elements: list[dict[str, Any]], action_id: str) -> str:
    return str(next(e["value"] for e in elements if e["action_id"] == action_id))
