"""A stand-in for Slack's Web API: the methods the control plane calls, kept in memory, so the
demo and the tests run the real slack_sdk client against something that answers as Slack does.

    app = create_app(StandinConfig(token="xoxb-standin", channels=("alerts", "oncall")))
    python -m controlplane.slack.standin --port 8300 --channel alerts --channel oncall

Web API at `/api/<method>` (POST, or GET with a query; JSON or form bodies; the bot token as
`Authorization: Bearer`): auth.test, chat.postMessage, chat.update, chat.postEphemeral,
conversations.info, conversations.list. Refusals are HTTP 200 with `{"ok": false, "error"}`
(not_authed, invalid_auth, channel_not_found, message_not_found, no_text), as Slack's are;
chat.update and conversations.info take a channel id only, as Slack's do.

For tests and the dashboards (read only, no token):
    GET    /stand-in/messages[?channel=C...]  every message: channel, ts, thread_ts, text,
                                              blocks and its edits (`updates`)
    GET    /stand-in/info                     team, channels, whether buttons can be pressed
    GET    /stand-in/calls                    the Web API calls, in order
    POST   /stand-in/faults                   {"status": 429, "retry_after": 3, "count": 1,
                                               "methods": ["chat.update"]}: the next matching
                                              calls answer that (429 with Retry-After, 5xx)
    DELETE /stand-in/faults                   no more faults
    POST   /stand-in/reset                    no messages, calls or faults

Pressing a button, as Slack does when a person clicks (the demo's /dash/chat page asks):
    POST   /stand-in/interactions             {"channel", "ts", "action_id", "block_id"?,
                                               "user": "U...", "user_name"?}: the button's
                                              block_actions payload, POSTed to the app's
                                              interactivity Request URL (`request_url`) as a
                                              `payload` form field, signed with the app's
                                              signing secret (X-Slack-Signature v0 over the raw
                                              body, X-Slack-Request-Timestamp); answers what the
                                              app answered
    POST   /actions/<team>/<n>/<secret>       the payload's `response_url` (Slack's is on
                                              hooks.slack.com): ephemeral (to the presser),
                                              in_channel, replace_original, delete_original;
                                              good for 30 minutes and five uses, as Slack's
Like the rest of the stand-in these take no token: it listens on 127.0.0.1 for the demo and
the tests, and whoever can reach it can press as anyone (as whoever holds the signing secret
could).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, Response, jsonify, request
from slack_sdk.signature import SignatureVerifier

DEFAULT_TOKEN = "xoxb-standin"
DEFAULT_CHANNELS = ("alerts", "oncall", "tickets", "controlplane")
DEFAULT_PORT = 8300
EXTENSION = "slack_standin"
TEAM_ID, APP_ID, BOT_USER, BOT_ID = "T0STANDIN", "A0STANDIN", "U0STANDIN", "B0STANDIN"
RESPONSE_TTL_S, RESPONSE_USES = 1800.0, 5  # a response_url's life, as Slack's
INTERACTION_TIMEOUT_S = 5.0  # Slack gives up after 3 s; a little more for a loaded demo
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
Json = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StandinConfig:
    token: str = DEFAULT_TOKEN
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    team: str = "Stand-in"
    # interactivity, as a Slack app's `settings.interactivity.request_url` and signing secret:
    # where a pressed button's payload goes, and the key it is signed with (both: buttons work)
    request_url: str | None = None
    signing_secret: str | None = None

    @property
    def interactive(self) -> bool:
        return bool(self.request_url and self.signing_secret)


@dataclass(kw_only=True)
class Fault:
    status: int
    count: int = 1
    retry_after: float = 1.0
    methods: tuple[str, ...] = ()  # () is every method


class SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def channel_id(name: str) -> str:
    return "C" + hashlib.sha256(name.encode()).hexdigest()[:10].upper()


@dataclass(kw_only=True)
class Workspace:
    """What the stand-in remembers; every method takes the lock."""

    config: StandinConfig
    clock: Callable[[], float] = time.time
    messages: list[Json] = field(default_factory=list)
    calls: list[Json] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    responses: dict[str, Json] = field(default_factory=dict)  # response_url secret -> target
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0
    _triggers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def channels(self) -> dict[str, str]:
        return {channel_id(n): n for n in self.config.channels}

    def next_ts(self) -> str:
        self._seq += 1  # unique and increasing within the process, as Slack's are per channel
        return f"{int(self.clock())}.{self._seq:06d}"

    def fault_for(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.count > 0 and (not fault.methods or method in fault.methods):
                fault.count -= 1
                return fault
        return None

    def resolve(self, channel: Any, *, by_name: bool = True) -> str:
        """A channel id from an id, or (where Slack allows names) `#name` or `name`."""
        text = str(channel or "")
        if text in self.channels:
            return text
        name = text.removeprefix("#")
        if by_name and name in self.config.channels:
            return channel_id(name)
        raise SlackError("channel_not_found")

    def find(self, channel: str, ts: str) -> Json:
        for message in self.messages:
            if message["channel"] == channel and message["ts"] == ts:
                return message
        raise SlackError("message_not_found")


# -- the Web API methods: (workspace, params) -> the answer's fields ----------------------


def _content(params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    text, blocks = str(params.get("text") or ""), params.get("blocks") or []
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if not text and not blocks:
        raise SlackError("no_text")
    return text, blocks


def auth_test(ws: Workspace, params: Mapping[str, Any]) -> Json:
    return {
        "url": "https://standin.slack.com/",
        "team": ws.config.team,
        "user": "controlplane",
        "team_id": "T0STANDIN",
        "user_id": "U0STANDIN",
        "bot_id": "B0STANDIN",
    }


def post_message(ws: Workspace, params: Mapping[str, Any], *, ephemeral: bool = False) -> Json:
    channel = ws.resolve(params.get("channel"))
    text, blocks = _content(params)
    if ephemeral and not params.get("user"):
        raise SlackError("user_not_found")
    message: Json = {
        "channel": channel,
        "channel_name": ws.channels[channel],
        "ts": ws.next_ts(),
        "thread_ts": params.get("thread_ts") or None,
        "text": text,
        "blocks": blocks,
        "user": params.get("user") if ephemeral else "U0STANDIN",
        "ephemeral": ephemeral,
        "posted_at": ws.clock(),
        "updates": [],
    }
    ws.messages.append(message)
    if ephemeral:
        return {"message_ts": message["ts"]}
    shown = {k: message[k] for k in ("text", "blocks", "ts", "user")}
    if message["thread_ts"]:
        shown["thread_ts"] = message["thread_ts"]
    return {"channel": channel, "ts": message["ts"], "message": shown}


def update_message(ws: Workspace, params: Mapping[str, Any]) -> Json:
    channel = ws.resolve(params.get("channel"), by_name=False)
    message = ws.find(channel, str(params.get("ts") or ""))
    text, blocks = _content(params)
    message["updates"].append({"text": text, "blocks": blocks, "at": ws.clock()})
    message["text"], message["blocks"] = text, blocks
    return {"channel": channel, "ts": message["ts"], "text": text, "message": {"text": text}}


def conversation_json(ws: Workspace, channel: str) -> Json:
    return {
        "id": channel,
        "name": ws.channels[channel],
        "is_channel": True,
        "is_member": True,
        "is_archived": False,
    }


def conversations_info(ws: Workspace, params: Mapping[str, Any]) -> Json:
    channel = ws.resolve(params.get("channel"), by_name=False)
    return {"channel": conversation_json(ws, channel)}


def conversations_list(ws: Workspace, params: Mapping[str, Any]) -> Json:
    channels = [conversation_json(ws, c) for c in ws.channels]
    return {"channels": channels, "response_metadata": {"next_cursor": ""}}


METHODS: Mapping[str, Callable[[Workspace, Mapping[str, Any]], Json]] = {
    "auth.test": auth_test,
    "chat.postMessage": post_message,
    "chat.postEphemeral": lambda ws, p: post_message(ws, p, ephemeral=True),
    "chat.update": update_message,
    "conversations.info": conversations_info,
    "conversations.list": conversations_list,
}


# -- interactivity: a person presses a button, Slack tells the app ---------------------------


@dataclass(frozen=True, kw_only=True)
class Press:
    """Who pressed which button of which message (the chat page's ask)."""

    channel: str
    ts: str
    action_id: str
    user: str
    user_name: str = ""
    block_id: str | None = None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Press:
        fields = {k: body.get(k) for k in ("channel", "ts", "action_id", "user")}
        missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
        if missing:
            raise SlackError(f"missing {', '.join(missing)}")
        block_id = body.get("block_id")
        return cls(
            channel=str(fields["channel"]),
            ts=str(fields["ts"]),
            action_id=str(fields["action_id"]),
            user=str(fields["user"]),
            user_name=str(body.get("user_name") or ""),
            block_id=block_id if isinstance(block_id, str) and block_id else None,
        )


def block_id_of(block: Mapping[str, Any], index: int) -> str:
    """A block's id; Slack gives one to every block posted without, so the stand-in does."""
    given = block.get("block_id")
    return given if isinstance(given, str) and given else f"b{index}"


def find_button(
    blocks: Any, action_id: str, block_id: str | None = None
) -> tuple[Json, str] | None:
    """The button `action_id` (in block `block_id`, if given) and its block's id."""
    for index, block in enumerate(blocks if isinstance(blocks, list) else []):
        if not isinstance(block, dict):
            continue
        bid = block_id_of(block, index)
        if block_id is not None and bid != block_id:
            continue
        elements = block.get("elements") if block.get("type") == "actions" else None
        candidates = elements if isinstance(elements, list) else [block.get("accessory")]
        for element in candidates:
            if (
                isinstance(element, dict)
                and element.get("type") == "button"
                and element.get("action_id") == action_id
            ):
                return element, bid
    return None


def block_actions_payload(
    message: Mapping[str, Any],
    button: Mapping[str, Any],
    block_id: str,
    *,
    user: str,
    user_name: str = "",
    response_url: str,
    trigger_id: str,
    now: float,
) -> Json:
    """What Slack sends an app's Request URL when `user` presses `button` in `message`: a
    `block_actions` interaction payload, with the message as it is now."""
    container: Json = {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": message["channel"],
        "is_ephemeral": bool(message.get("ephemeral")),
    }
    shown: Json = {
        "type": "message",
        "user": BOT_USER,
        "bot_id": BOT_ID,
        "ts": message["ts"],
        "text": message.get("text") or "",
        "blocks": message.get("blocks") or [],
    }
    if message.get("thread_ts"):
        container["thread_ts"] = shown["thread_ts"] = message["thread_ts"]
    action: Json = {
        "type": "button",
        "action_id": button.get("action_id"),
        "block_id": block_id,
        "text": button.get("text") or {"type": "plain_text", "text": ""},
        "value": button.get("value") or "",
        "action_ts": f"{now:.6f}",
    }
    if button.get("style"):
        action["style"] = button["style"]
    name = user_name or user.lower()
    return {
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "stand-in-verification-token",  # Slack's deprecated verification token
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": "standin"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": message["channel"], "name": message.get("channel_name") or ""},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def signed_request(secret: str, payload: Mapping[str, Any], timestamp: int) -> tuple[bytes, Json]:
    """The form body Slack POSTs (`payload=<JSON>`) and its headers: the signature is
    slack_sdk's, `v0=` HMAC-SHA256 of `v0:<timestamp>:<raw body>` keyed by the secret."""
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "User-Agent": USER_AGENT,
    }
    return body, headers


def prepare_press(ws: Workspace, press: Press, base_url: str) -> tuple[str, bytes, Json]:
    """(URL, body, headers) of the interaction `press` makes; a response_url is issued."""
    if not ws.config.interactive:
        raise SlackError("interactivity_off")
    channel = ws.resolve(press.channel)
    message = ws.find(channel, press.ts)
    found = find_button(message.get("blocks"), press.action_id, press.block_id)
    if found is None or message.get("deleted"):
        raise SlackError("button_not_found")
    button, block_id = found
    now = ws.clock()
    secret = secrets.token_urlsafe(18)
    n = next(ws._triggers)
    ws.responses[secret] = {
        "channel": channel,
        "ts": message["ts"],
        "thread_ts": message.get("thread_ts"),
        "user": press.user,
        "expires_at": now + RESPONSE_TTL_S,
        "uses": 0,
    }
    payload = block_actions_payload(
        message,
        button,
        block_id,
        user=press.user,
        user_name=press.user_name,
        response_url=f"{base_url.rstrip('/')}/actions/{TEAM_ID}/{n}/{secret}",
        trigger_id=f"{n}.{int(now)}.{secrets.token_hex(16)}",
        now=now,
    )
    ws.calls.append({"method": "interaction", "channel": channel, "at": now})
    body, headers = signed_request(str(ws.config.signing_secret), payload, int(now))
    return str(ws.config.request_url), body, headers


def respond(ws: Workspace, secret: str, body: Mapping[str, Any]) -> Json:
    """A POST to a response_url: an ephemeral answer to the presser (the default), a message
    for the channel, or the pressed message replaced or deleted."""
    target = ws.responses.get(secret)
    if target is None or ws.clock() >= target["expires_at"]:
        raise SlackError("expired_url")
    if target["uses"] >= RESPONSE_USES:
        raise SlackError("used_url")
    target["uses"] += 1
    ws.calls.append({"method": "response_url", "channel": target["channel"], "at": ws.clock()})
    where = {"channel": target["channel"], "thread_ts": target["thread_ts"]}
    if body.get("delete_original"):
        ws.find(target["channel"], target["ts"])["deleted"] = True
        return {}
    if body.get("replace_original"):
        update_message(ws, {**body, "channel": target["channel"], "ts": target["ts"]})
        return {}
    if body.get("response_type") == "in_channel":
        post_message(ws, {**body, **where})
        return {}
    post_message(ws, {**body, **where, "user": target["user"]}, ephemeral=True)
    return {}


def press_button(ws: Workspace, body: Mapping[str, Any], base_url: str) -> tuple[Json, int]:
    """Prepare under the lock, POST outside it: the app's answer may need the stand-in."""
    try:
        press = Press.of(body)
        with ws.lock:
            url, raw, headers = prepare_press(ws, press, base_url)
    except SlackError as exc:
        status = {"interactivity_off": 409, "button_not_found": 404}.get(exc.code, 400)
        if exc.code in ("channel_not_found", "message_not_found"):
            status = 404
        return {"ok": False, "error": exc.code}, status
    try:
        answer = requests.post(
            url, data=raw, headers=headers, timeout=INTERACTION_TIMEOUT_S, allow_redirects=False
        )
    except requests.RequestException as exc:
        return {"ok": False, "error": "request_failed", "detail": str(exc)[:300]}, 502
    return {
        "ok": answer.status_code < 300,
        "status": answer.status_code,
        "answer": answer.text[:500],
        "request_url": url,
    }, 200


# -- HTTP ---------------------------------------------------------------------------------


def _params() -> dict[str, Any]:
    params: dict[str, Any] = dict(request.args.items())
    params.update(request.form.items())
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict):
        params.update(body)
    return params


def _token(params: Mapping[str, Any]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return str(params["token"]) if params.get("token") else None


def _call(ws: Workspace, method: str) -> Response | tuple[Response, int]:
    params = _params()
    token = _token(params)
    with ws.lock:
        ws.calls.append({"method": method, "channel": params.get("channel"), "at": ws.clock()})
        if method not in METHODS:
            return jsonify(ok=False, error="unknown_method")
        if token is None:
            return jsonify(ok=False, error="not_authed")
        if token != ws.config.token:
            return jsonify(ok=False, error="invalid_auth")
        fault = ws.fault_for(method)
        if fault is not None:
            return _fault_response(fault)
        try:
            return jsonify(ok=True, **METHODS[method](ws, params))
        except SlackError as exc:
            return jsonify(ok=False, error=exc.code)


def _fault_response(fault: Fault) -> Response:
    if fault.status == 429:
        response = jsonify(ok=False, error="ratelimited")
        response.status_code = 429
        response.headers["Retry-After"] = f"{fault.retry_after:g}"
        return response
    # Slack's 5xx are HTML pages from its edge, not JSON: the client must cope with that too
    return Response(
        f"<html>stand-in fault {fault.status}</html>", fault.status, mimetype="text/html"
    )


def _add_fault(ws: Workspace) -> tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    try:
        fault = Fault(
            status=int(body.get("status", 500)),
            count=int(body.get("count", 1)),
            retry_after=float(body.get("retry_after", 1)),
            methods=tuple(str(m) for m in body.get("methods") or ()),
        )
    except (TypeError, ValueError) as exc:
        return jsonify(error=f"bad fault: {exc}"), 400
    if fault.status != 429 and not 500 <= fault.status <= 599:
        return jsonify(error="status must be 429 or 5xx"), 400
    with ws.lock:
        ws.faults.append(fault)
    return jsonify(added=fault.__dict__ | {"methods": list(fault.methods)}), 201


def create_app(
    config: StandinConfig | None = None, *, clock: Callable[[], float] = time.time
) -> Flask:
    ws = Workspace(config=config or StandinConfig(), clock=clock)
    app = Flask(__name__)
    app.extensions[EXTENSION] = ws

    @app.route("/api/<method>", methods=["GET", "POST"])
    def web_api(method: str) -> Response | tuple[Response, int]:
        return _call(ws, method)

    @app.post("/actions/<team>/<int:n>/<secret>")
    def response_url(team: str, n: int, secret: str) -> tuple[Response, int]:
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict):
            return jsonify(ok=False, error="invalid_payload"), 400
        with ws.lock:
            try:
                return jsonify(ok=True, **respond(ws, secret, body)), 200
            except SlackError as exc:
                status = 404 if exc.code in ("expired_url", "used_url") else 400
                return jsonify(ok=False, error=exc.code), status

    @app.get("/readyz")
    def readyz() -> Response:
        return jsonify(ok=True)

    _add_stand_in_routes(app, ws)
    return app


def _add_stand_in_routes(app: Flask, ws: Workspace) -> None:
    """What tests and the dashboards read, and the faults they ask for."""

    @app.get("/stand-in/messages")
    def messages() -> Response:
        wanted = request.args.get("channel")
        with ws.lock:
            found = [m for m in ws.messages if wanted in (None, m["channel"], m["channel_name"])]
            return jsonify(messages=json.loads(json.dumps(found)))

    @app.get("/stand-in/info")
    def info() -> Response:
        return jsonify(
            team=ws.config.team,
            team_id=TEAM_ID,
            channels=[{"id": cid, "name": name} for cid, name in ws.channels.items()],
            interactive=ws.config.interactive,
            request_url=ws.config.request_url,
        )

    @app.post("/stand-in/interactions")
    def interactions() -> tuple[Response, int]:
        answer, status = press_button(ws, request.get_json(silent=True) or {}, request.host_url)
        return jsonify(answer), status

    @app.get("/stand-in/calls")
    def calls() -> Response:
        with ws.lock:
            return jsonify(calls=list(ws.calls))

    @app.post("/stand-in/faults")
    def add_fault() -> tuple[Response, int]:
        return _add_fault(ws)

    @app.delete("/stand-in/faults")
    def clear_faults() -> Response:
        with ws.lock:
            ws.faults.clear()
        return jsonify(ok=True)

    @app.post("/stand-in/reset")
    def reset() -> Response:
        with ws.lock:
            ws.messages.clear()
            ws.calls.clear()
            ws.faults.clear()
            ws.responses.clear()
        return jsonify(ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane.slack.standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--token",
        default=os.environ.get("CONTROLPLANE_SLACK_BOT_TOKEN") or DEFAULT_TOKEN,
        help="the bot token it accepts (default $CONTROLPLANE_SLACK_BOT_TOKEN, else xoxb-standin)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        help=f"a channel name, repeated (default: {', '.join(DEFAULT_CHANNELS)})",
    )
    parser.add_argument(
        "--signing-secret",
        default=os.environ.get("CONTROLPLANE_SLACK_SIGNING_SECRET") or None,
        help="signs the button presses it sends (default $CONTROLPLANE_SLACK_SIGNING_SECRET)",
    )
    parser.add_argument(
        "--request-url",
        default=None,
        help="where pressed buttons are POSTed, as a Slack app's interactivity Request URL "
        "(the control plane's /slack/actions); without it and a secret, buttons do nothing",
    )
    args = parser.parse_args(argv)
    from waitress import serve  # the process's server only: importing the app needs none

    config = StandinConfig(
        token=args.token,
        channels=tuple(args.channel or DEFAULT_CHANNELS),
        request_url=args.request_url,
        signing_secret=args.signing_secret,
    )
    channels = ", ".join(config.channels)
    print(f"Slack stand-in: http://{args.host}:{args.port}/api/ ({channels})", flush=True)
    if config.interactive:
        print(f"Slack stand-in: buttons pressed are POSTed to {config.request_url}", flush=True)
    serve(create_app(config), host=args.host, port=args.port, threads=8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
