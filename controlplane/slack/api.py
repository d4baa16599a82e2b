"""`POST /slack/actions` (button clicks) and `POST /slack/commands` (the slash command).

Each request is checked against Slack's signature over its raw body first (signing.py): a
forged signature, a stale timestamp or an unsigned request gets 401 JSON and nothing else is
read. A signed request is acknowledged at once (Slack shows an error after three seconds) and
done on the worker (respond.py); its answer goes to the person through the `response_url`.

Slack may send a request again (`X-Slack-Retry-Num`), and a signed request may be replayed
within its five minutes: the `trigger_id` of each interaction is spent in `slack_nonces` when
it arrives, so the same interaction is acknowledged again but acted on once; a click's own
token nonce (tokens.py) makes a replay a no-op even without one.

Without a signing secret the two paths answer 401 (nothing can be verified, so nothing is
believed), as config.SlackConfig says.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Response, request

from controlplane.audit import AuditLog
from controlplane.slack.actions import Click, Interactions
from controlplane.slack.commands import Command, Commands
from controlplane.slack.respond import Responder, Target, Worker
from controlplane.slack.signing import Refused, RequestVerifier
from controlplane.slack.tokens import Nonces

log = logging.getLogger(__name__)
_DEDUP_S = 3600.0  # Slack retries within minutes; a signed request is good for five
_REFUSALS_PER_MINUTE = 30  # audited unsigned requests: anyone can send them


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def unconfigured_blueprint() -> Blueprint:
    bp = Blueprint("slack", __name__)
    message = "Slack is not configured here: no signing secret (CONTROLPLANE_SLACK_SIGNING_SECRET)"

    @bp.post("/slack/actions")
    @bp.post("/slack/commands")
    def refuse() -> Response:
        return _json({"error": "unauthorized", "message": message}, 401)

    return bp


class Endpoints:
    def __init__(
        self,
        *,
        verifier: RequestVerifier,
        interactions: Interactions,
        commands: Commands,
        responder: Responder,
        worker: Worker,
        nonces: Nonces,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier, self._interactions, self._commands = verifier, interactions, commands
        self._responder, self._worker, self._nonces = responder, worker, nonces
        self._audit, self._clock = audit, clock
        self._limiter = _Limiter(_REFUSALS_PER_MINUTE, clock)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("slack", __name__)
        bp.add_url_rule("/slack/actions", "actions", self.actions, methods=["POST"])
        bp.add_url_rule("/slack/commands", "commands", self.commands, methods=["POST"])
        return bp

    def actions(self) -> Response:
        form = self._verified_form("slack_click")
        if isinstance(form, Response):
            return form
        try:
            payload = json.loads(_field(form, "payload"))
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
            if payload.get("type") != "block_actions":
                return Response("", 200)  # other interactions: nothing of ours to do
            click = _click(payload, _retry())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._malformed("slack_click", str(exc))
        if self._duplicate(payload.get("trigger_id"), "slack_click", click.slack_user):
            return Response("", 200)

        def job() -> None:
            outcome = self._interactions.click(click)
            if not (click.retry and outcome.code == "replayed"):  # the first one was answered
                self._responder.send(click.target, outcome.reply)

        if not self._worker.submit(job):
            self._busy("slack_click", click.slack_user)
        return Response("", 200)

    def commands(self) -> Response:
        form = self._verified_form("slack_command")
        if isinstance(form, Response):
            return form
        try:
            command = _command(form, _retry())
        except (ValueError, KeyError) as exc:
            return self._malformed("slack_command", str(exc))
        if self._duplicate(_optional(form, "trigger_id"), "slack_command", command.slack_user):
            return Response("", 200)

        def job() -> None:
            self._responder.send(command.target, self._commands.run(command).reply)

        if not self._worker.submit(job):
            self._busy("slack_command", command.slack_user)
            return _json({"response_type": "ephemeral", "text": "busy: try again in a moment"})
        text = f"working on it: `{_optional(form, 'command') or '/'} {command.text}`".strip()
        return _json({"response_type": "ephemeral", "text": text[:300]})

    def _verified_form(self, kind: str) -> dict[str, list[str]] | Response:
        try:
            raw = self._verifier.raw_body(request)
        except Refused as refused:
            self._refused(kind, refused.code)
            return _json({"error": refused.code, "message": refused.message}, refused.status)
        try:
            return parse_qs(raw.decode("utf-8"), max_num_fields=64, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            return self._malformed(kind, str(exc))

    def _duplicate(self, trigger_id: object, kind: str, slack_user: str) -> bool:
        """An interaction seen before (a retry, a replay): acknowledged, not done again."""
        if not isinstance(trigger_id, str) or not trigger_id:
            return False
        key = "t:" + hashlib.sha256(trigger_id.encode()).hexdigest()[:60]
        expires = self._clock() + _DEDUP_S
        if self._nonces.spend(key, "request", action="request", expires_at=expires):
            return False
        self._record(kind, slack_user, "duplicate", retry=_retry())
        return True

    def _refused(self, kind: str, code: str) -> None:
        suppressed = self._limiter.allow()
        if suppressed is None:
            return
        self._record(kind, None, code, suppressed=suppressed)

    def _malformed(self, kind: str, why: str) -> Response:
        self._record(kind, None, "malformed", detail=why[:200])
        return _json({"error": "bad_request", "message": f"malformed Slack request: {why}"}, 400)

    def _busy(self, kind: str, slack_user: str) -> None:
        log.warning("Slack worker queue full: %s of %s not done", kind, slack_user)
        self._record(kind, slack_user, "busy")

    def _record(self, kind: str, slack_user: str | None, outcome: str, **extra: Any) -> None:
        data = {
            "slack_user": slack_user,
            "user": None,  # not looked up: the request was not read, or not acted on
            "action": None,
            "subject": None,
            "outcome": outcome,
            **extra,
        }
        actor = f"slack:{slack_user}"[:200] if slack_user else "slack"
        try:
            self._audit.append(kind, data, actor=actor)
        except Exception:  # the database boundary: the refusal stands without its record
            log.exception("cannot audit a %s refusal (%s)", kind, outcome)


class _Limiter:
    """At most `per_minute` audited refusals a minute; the next one counts those dropped."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self._per_minute, self._clock = per_minute, clock
        self._window, self._count, self._dropped = 0.0, 0, 0
        self._lock = threading.Lock()

    def allow(self) -> int | None:
        """None: drop this one; else how many were dropped before it."""
        with self._lock:
            now = self._clock()
            if now - self._window >= 60:
                self._window, self._count = now, 0
            if self._count >= self._per_minute:
                self._dropped += 1
                return None
            self._count += 1
            dropped, self._dropped = self._dropped, 0
            return dropped


def _retry() -> int:
    raw = request.headers.get("X-Slack-Retry-Num", "0")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 1


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    if not values:
        raise KeyError(f"no {name} field")
    return values[0]


def _optional(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def _click(payload: dict[str, Any], retry: int) -> Click:
    user = payload["user"]["id"]
    actions = payload["actions"]
    if not isinstance(user, str) or not isinstance(actions, list) or not actions:
        raise ValueError("a block_actions payload names a user and an action")
    value = actions[0].get("value")
    message = payload.get("message") or {}
    channel = (payload.get("channel") or {}).get("id") or payload.get("container", {}).get(
        "channel_id"
    )
    blocks = message.get("blocks")
    return Click(
        slack_user=user,
        value=value if isinstance(value, str) else "",
        target=Target(
            slack_user=user,
            response_url=_text(payload.get("response_url")),
            channel=_text(channel),
            message_ts=_text(message.get("ts") or payload.get("container", {}).get("message_ts")),
            message_text=str(message.get("text") or "")[:3000],
        ),
        message_blocks=blocks if isinstance(blocks, list) else None,
        retry=retry,
    )


def _command(form: dict[str, list[str]], retry: int) -> Command:
    user = _field(form, "user_id")
    return Command(
        slack_user=user,
        text=_optional(form, "text")[:2000],
        target=Target(
            slack_user=user,
            response_url=_optional(form, "response_url") or None,
            channel=_optional(form, "channel_id") or None,
        ),
        retry=retry,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
