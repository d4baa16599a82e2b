"""/dash/chat below the browser: where the stand-in is, Slack's mrkdwn and Block Kit made
readable, threads, edits and answers only their person sees, and the stand-in's side of a
press (the block_actions payload, signed as Slack signs it, and its response_url)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dash_mantine_components as dmc
import pytest
from dash import html
from flask import Flask
from flask.testing import FlaskClient
from slack_sdk.signature import Clock, SignatureVerifier

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.slack_blocks import MessageView, render
from controlplane.slack.standin import (
    EXTENSION,
    Press,
    StandinConfig,
    Workspace,
    channel_id,
    create_app,
    post_message,
    prepare_press,
    update_message,
)
from dashboards import ReadModels, chat, create_dash

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-chat-test"
ONCALL = channel_id("casino-oncall")
T0 = datetime(2026, 3, 2, 11, 15, 30, tzinfo=UTC)
PAUSE = {
    "type": "button",
    "action_id": "cp:pause",
    "text": {"type": "plain_text", "text": "Pause automation"},
    "value": '{"signed":"pause"}',
    "confirm": {
        "title": {"type": "plain_text", "text": "Pause automation?"},
        "text": {"type": "plain_text", "text": "No runbook acts by itself until resumed."},
        "confirm": {"type": "plain_text", "text": "Yes"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    },
}
APPROVE = {
    "type": "button",
    "action_id": "cp:approve",
    "text": {"type": "plain_text", "text": "Approve"},
    "value": '{"signed":"approve"}',
    "style": "primary",
}


def texts(component: Any) -> str:
    """Every string a component tree shows, in order."""
    if component is None or isinstance(component, bool):
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return "".join(texts(c) for c in component)
    return texts(getattr(component, "children", None))


def find(component: Any, kind: type) -> list[Any]:
    """The components of `kind` in a tree."""
    found: list[Any] = []
    if isinstance(component, list | tuple):
        for child in component:
            found += find(child, kind)
    elif component is not None and not isinstance(component, str | int | float | bool):
        if isinstance(component, kind):
            found.append(component)
        found += find(getattr(component, "children", None), kind)
        for prop in ("rightSection", "label"):
            found += find(getattr(component, prop, None), kind)
    return found


@pytest.fixture(scope="module")
def dash_app() -> Flask:
    """The dashboards mounted on reads nothing here touches: links need Dash's prefix."""
    server = Flask("chat-test")
    nothing: Any = None
    create_dash(
        server,
        reads=ReadModels(
            querier=nothing,
            slos=(),
            alerts=tuple,
            executions=nothing,
            automation=nothing,
            audit=nothing,
        ),
    )
    return server


def test_the_page_is_served_and_named_in_the_navigation(dash_app: Flask) -> None:
    client = dash_app.test_client()
    assert client.get("/dash/chat").status_code == 200
    layout = json.dumps(client.get("/dash/_dash-layout").get_json())
    assert '"label": "Chat"' in layout and '"href": "/dash/chat"' in layout


def buttons(component: Any) -> list[Any]:
    return [b for b in find(component, object) if getattr(b, "className", None) == chat.BUTTON]


def test_the_stand_in_is_where_the_web_api_is_and_never_slack_itself() -> None:
    assert chat.standin_base("http://127.0.0.1:8400/api/") == "http://127.0.0.1:8400"
    assert chat.standin_base("http://h:1/under/api") == "http://h:1/under"
    for real in ("https://slack.com/api/", "https://acme.slack.com/api/", None, ""):
        assert chat.standin_base(real) is None
    assert "no CONTROLPLANE_SLACK_BOT_TOKEN" in chat.not_shown(None)
    assert "Slack itself (https://slack.com/api/)" in chat.not_shown("https://slack.com/api/")


def test_mrkdwn_reads_as_slack_shows_it() -> None:
    source = (
        "*Severity* `page` · *Status* firing: <http://cp/dash/incidents/1|Incident timeline>\n"
        ":red_circle: <!here> <@U0ALICE> <@U9> <#C1|casino-oncall> _slow_ ~gone~ slo_id_x "
        "&lt;b&gt; &amp; <javascript:alert(1)|click> :no_such_emoji: ```a *b*```"
    )
    spans = chat.mrkdwn_spans(source, {"U0ALICE": "alice"})
    kinds = [s.kind for s in spans if s.kind != "text"]
    assert kinds == [
        "bold", "code", "bold", "link", "mention", "mention", "mention", "mention",
        "italic", "strike", "pre",
    ]  # fmt: skip
    assert chat.plain(spans) == (
        "Severity page · Status firing: Incident timeline\n"
        "🔴 @here @alice @U9 #casino-oncall slow gone slo_id_x <b> & click :no_such_emoji: a *b*"
    )
    link = next(s for s in spans if s.kind == "link")
    assert (link.text, link.href) == ("Incident timeline", "http://cp/dash/incidents/1")
    shown = html.Div(chat.span_components(spans))
    assert [a.href for a in find(shown, html.A)] == ["http://cp/dash/incidents/1"]  # no script
    assert [texts(b) for b in find(shown, html.B)] == ["Severity", "Status"]


def message_view() -> MessageView:
    alert = Alert.of(
        {"alertname": "ProviderDown", "region": "eu", "severity": "page", "provider": "evolution"},
        starts_at=T0,
        annotations={"summary": "evolution is down", "runbook_url": "http://docs/ProviderDown"},
    )
    return MessageView(
        key=GroupKey(route_key="{}", labels=(("alertname", "ProviderDown"), ("region", "eu"))),
        receiver="oncall",
        status=AlertStatus.FIRING,
        alerts=(alert,),
        started_at=T0,
        external_url="http://cp.example:8000",
        mention="<!here>",
    )


def test_the_control_planes_message_renders_readably_with_working_buttons() -> None:
    fallback, blocks = render(message_view(), actions=lambda _v: [PAUSE, APPROVE])
    post = chat.Post(channel=ONCALL, ts="1.000001", text=fallback, blocks=tuple(blocks))
    card = chat.post_card(post, viewer=chat.Viewer(), now_s=T0.timestamp(), interactive=True)
    shown = texts(card)
    assert "🔴 [FIRING:1] ProviderDown (region=eu)" in shown  # the header, emoji shown
    assert "@here" in shown and "Severity page" in shown and "evolution is down" in shown
    assert "provider\nevolution" in shown  # a field: its name in bold, its value below
    assert "(edited)" not in shown and "Only visible to you" not in shown
    assert [texts(b) for b in find(card, html.B)][:3] == ["Severity", "Status", "evolution is down"]
    links = {texts(a): a.href for a in find(card, html.A)}
    assert links["Incident timeline"] == "http://cp.example:8000/dash/incidents/20260302-1115"
    assert links["Runbook"] == "http://docs/ProviderDown"
    pause, approve = buttons(card)
    assert (texts(pause), approve.color, approve.variant) == ("Pause automation", "green", "filled")
    assert pause.id == {
        "type": chat.BUTTON,
        "channel": ONCALL,
        "ts": "1.000001",
        "action": "cp:pause",
        "block": f"b{len(blocks) - 1}",  # the actions block has no id: Slack's way of naming it
    }
    off = chat.post_card(post, viewer=chat.Viewer(), now_s=0, interactive=False)
    assert all(b.disabled for b in buttons(off))


def snapshot() -> chat.Snapshot:
    def message(ts: str, text: str, **more: Any) -> dict[str, Any]:
        return {
            "channel": ONCALL,
            "channel_name": "casino-oncall",
            "ts": ts,
            "thread_ts": None,
            "text": text,
            "blocks": [],
            "ephemeral": False,
            "posted_at": float(ts.split(".")[0]),
            "updates": [],
            **more,
        }

    return chat.Snapshot(
        channels=(
            chat.Channel(id=ONCALL, name="casino-oncall"),
            chat.Channel(id="CT", name="casino-tickets"),
        ),
        messages=(
            message("100.000001", "*first*", updates=[{"text": "*first*", "at": 105.0}]),
            message("101.000002", "in the thread", thread_ts="100.000001"),
            message(
                "102.000003", "only alice", thread_ts="100.000001", ephemeral=True, user="U0ALICE"
            ),
            message("103.000004", "only bob", ephemeral=True, user="U0BOB"),
            message("104.000005", "second"),
            message("90.000006", "a ticket", channel="CT", channel_name="casino-tickets"),
        ),
        interactive=True,
        request_url="http://cp/slack/actions",
    )


def test_threads_edits_and_answers_only_their_person_sees(dash_app: Flask) -> None:
    snap = snapshot()
    alice = chat.Viewer(name="alice", slack_id="U0ALICE")
    second, first = chat.channel_posts(snap, ONCALL, alice)  # newest first
    assert (second.text, first.text, first.edits, first.edited_at) == ("second", "*first*", 1, 105)
    assert [(r.text, r.ephemeral) for r in first.replies] == [
        ("in the thread", False),
        ("only alice", True),
    ]
    card = texts(chat.post_card(first, viewer=alice, now_s=200, interactive=True))
    assert "(edited)" in card and "2 replies" in card and "Only visible to you" in card
    bob = chat.Viewer(name="bob", slack_id="U0BOB")
    assert [p.text for p in chat.channel_posts(snap, ONCALL, bob)] == [
        "second",
        "only bob",
        "*first*",
    ]
    assert [len(p.replies) for p in chat.channel_posts(snap, ONCALL, chat.Viewer())] == [0, 1]
    rows = chat.channel_rows(snap, alice)
    assert [(r.channel.name, r.messages) for r in rows] == [
        ("casino-oncall", 4),
        ("casino-tickets", 1),
    ]
    assert chat.chosen_channel(rows, None).name == "casino-oncall"  # type: ignore[union-attr]
    assert chat.chosen_channel(rows, "#casino-tickets").id == "CT"  # type: ignore[union-attr]
    with dash_app.test_request_context("/dash/chat"):
        body = chat.page_body(snap, viewer=alice, wanted="casino-tickets", params={}, now_s=200)
        anonymous = chat.page_body(snap, viewer=chat.Viewer(), wanted=None, params={}, now_s=200)
    assert "a ticket" in texts(body) and "only alice" not in texts(body)
    assert "Buttons press as alice (U0ALICE)" in texts(body)
    nav = [(link.label, link.href, link.active) for link in find(body, dmc.NavLink)]
    assert nav == [
        ("#casino-oncall", "/dash/chat?channel=casino-oncall", False),
        ("#casino-tickets", "/dash/chat?channel=casino-tickets", True),
    ]
    assert "Sign in to press buttons" in texts(anonymous)


@pytest.fixture
def standin() -> Iterator[tuple[FlaskClient, Workspace]]:
    config = StandinConfig(
        token=TOKEN,
        channels=("casino-oncall",),
        request_url="http://cp.example/slack/actions",
        signing_secret=SECRET,
    )
    app = create_app(config, clock=lambda: 1_700_000_000.0)
    yield app.test_client(), app.extensions[EXTENSION]


def answer(response: Any) -> Any:
    return json.loads(response.data)


def posted(ws: Workspace, **params: Any) -> dict[str, Any]:
    with ws.lock:
        return post_message(ws, {"channel": "#casino-oncall", "text": "drain eu?", **params})


def test_a_press_is_a_block_actions_payload_signed_as_slack_signs(
    standin: tuple[FlaskClient, Workspace],
) -> None:
    _client, ws = standin
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "drain eu?"}},
        {"type": "actions", "block_id": "cp-approval:e1", "elements": [APPROVE]},
    ]
    parent = posted(ws)
    reply = posted(ws, thread_ts=parent["ts"], blocks=blocks)
    press = Press(channel=ONCALL, ts=reply["ts"], action_id="cp:approve", user="U0ALICE")
    url, body, headers = prepare_press(ws, press, "http://standin.example:8400/")
    assert url == "http://cp.example/slack/actions"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    # what the control plane checks: slack_sdk's verifier, over the raw body, in the window
    verifier = SignatureVerifier(SECRET, clock=_At(1_700_000_030))
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("another secret", clock=_At(1_700_000_030)).is_valid_request(
        body, headers
    )
    assert not verifier.is_valid_request(body + b"&x=1", headers)
    assert headers["X-Slack-Request-Timestamp"] == "1700000000"
    (raw,) = parse_qs(body.decode())["payload"]
    payload = json.loads(raw)
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": "U0ALICE",
        "username": "u0alice",
        "name": "u0alice",
        "team_id": "T0STANDIN",
    }
    assert payload["actions"][0] | {"action_ts": "-"} == {
        "type": "button",
        "action_id": "cp:approve",
        "block_id": "cp-approval:e1",
        "text": APPROVE["text"],
        "value": APPROVE["value"],  # the control plane's signed token, as it gave it
        "style": "primary",
        "action_ts": "-",
    }
    assert payload["container"] == {
        "type": "message",
        "message_ts": reply["ts"],
        "channel_id": ONCALL,
        "is_ephemeral": False,
        "thread_ts": parent["ts"],
    }
    assert payload["channel"] == {"id": ONCALL, "name": "casino-oncall"}
    assert payload["message"]["blocks"] == blocks and payload["message"]["ts"] == reply["ts"]
    answer = urlsplit(payload["response_url"])
    assert (answer.netloc, answer.path.split("/")[1:3]) == (
        "standin.example:8400",
        ["actions", "T0STANDIN"],
    )
    again = json.loads(parse_qs(prepare_press(ws, press, "http://s/")[1].decode())["payload"][0])
    assert again["trigger_id"] != payload["trigger_id"]  # each press is a new interaction


class _At(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_answers_through_the_response_url_reach_the_presser_or_the_message(
    standin: tuple[FlaskClient, Workspace],
) -> None:
    client, ws = standin
    blocks = [{"type": "actions", "elements": [PAUSE]}]
    parent = posted(ws, blocks=blocks)
    with ws.lock:
        press = Press(channel="casino-oncall", ts=parent["ts"], action_id="cp:pause", user="U0BOB")
        payload = json.loads(
            parse_qs(prepare_press(ws, press, "http://localhost/")[1].decode())["payload"][0]
        )
        later = json.loads(
            parse_qs(prepare_press(ws, press, "http://localhost/")[1].decode())["payload"][0]
        )
    path = urlsplit(payload["response_url"]).path
    said = client.post(path, json={"response_type": "ephemeral", "text": "paused by bob"})
    assert said.status_code == 200 and answer(said) == {"ok": True}
    gone = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "paused by bob"}]}]
    replaced = client.post(path, json={"replace_original": True, "text": "x", "blocks": gone})
    assert replaced.status_code == 200
    client.post(path, json={"response_type": "in_channel", "text": "for everyone"})
    original, ephemeral, public = answer(client.get("/stand-in/messages"))["messages"]
    assert (original["blocks"], len(original["updates"])) == (gone, 1)
    assert (ephemeral["ephemeral"], ephemeral["user"], ephemeral["text"]) == (
        True,
        "U0BOB",
        "paused by bob",
    )
    assert (public["ephemeral"], public["text"]) == (False, "for everyone")
    client.post(path, json={"text": "4"})
    client.post(path, json={"text": "5"})
    assert answer(client.post(path, json={"text": "6"})) == {"ok": False, "error": "used_url"}
    assert client.post("/actions/T0STANDIN/9/nope", json={"text": "x"}).status_code == 404
    ws.clock = lambda: 1_700_000_000.0 + 3600  # an hour later: Slack's are good for 30 minutes
    expired = client.post(urlsplit(later["response_url"]).path, json={"text": "late"})
    assert (expired.status_code, answer(expired)["error"]) == (404, "expired_url")


def test_a_press_the_stand_in_cannot_make_is_refused_with_why(
    standin: tuple[FlaskClient, Workspace],
) -> None:
    client, ws = standin
    parent = posted(ws, blocks=[{"type": "actions", "elements": [PAUSE]}])
    ask = {"channel": ONCALL, "ts": parent["ts"], "action_id": "cp:gone", "user": "U0BOB"}
    assert client.post("/stand-in/interactions", json=ask).status_code == 404
    assert answer(client.post("/stand-in/interactions", json={"channel": ONCALL})) == {
        "ok": False,
        "error": "missing ts, action_id, user",
    }
    info = answer(client.get("/stand-in/info"))
    assert info["interactive"] and info["channels"] == [{"id": ONCALL, "name": "casino-oncall"}]
    assert "signing_secret" not in json.dumps(info) and SECRET not in json.dumps(info)
    quiet = create_app(StandinConfig(token=TOKEN, channels=("casino-oncall",))).test_client()
    assert answer(quiet.post("/stand-in/interactions", json=ask))["error"] == "interactivity_off"
    assert quiet.get("/readyz").status_code == 200
    with ws.lock:
        update_message(ws, {"channel": ONCALL, "ts": parent["ts"], "text": "no buttons now"})
    ask["action_id"] = "cp:pause"
    assert answer(client.post("/stand-in/interactions", json=ask))["error"] == "button_not_found"


def test_what_a_press_came_to_is_said_to_the_person() -> None:
    said = chat.press_outcome({"ok": True, "status": 200}, who="alice (U0ALICE)", label="Approve")
    assert said.ok and said.message.startswith("pressed “Approve” as alice (U0ALICE)")
    refused = chat.press_outcome(
        {"ok": False, "status": 401, "answer": '{"error": "bad_signature"}'}, who="a", label="x"
    )
    assert (
        not refused.ok and "answered 401" in refused.message and "bad_signature" in refused.message
    )
    assert (
        "no longer there"
        in chat.press_outcome({"error": "button_not_found"}, who="", label="x").message
    )
    assert (
        "no request URL"
        in chat.press_outcome({"error": "interactivity_off"}, who="", label="").message
    )
    assert chat.confirm_of(PAUSE) == (
        "Pause automation?",
        "No runbook acts by itself until resumed.",
        "Yes",
        "Cancel",
    )
    assert chat.confirm_of(APPROVE) is None
