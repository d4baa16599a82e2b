"""/dash/chat: what the control plane posted to Slack, read from the Slack stand-in
(controlplane/slack/standin.py), shown as Slack shows it; its buttons pressed as the person
signed in, so the ChatOps flow can be seen in a browser without a Slack workspace.

    base = standin_base(reads.slack_api_url)   # None: no Slack here, or Slack itself
    snap = fetch(base)                         # GET /stand-in/info and /stand-in/messages
    channel_rows(snap, viewer)                 # the channels, with what each holds
    channel_posts(snap, channel.id, viewer)    # its messages, newest first, with their threads
    page_body(snap, viewer=..., wanted=...)    # channels, messages, threads: components, pure
    post_card(post, viewer=..., now_s=...)     # one message: Block Kit -> components, pure
    mrkdwn_spans(text)                         # Slack's mrkdwn -> spans, pure
    press(base, ref, slack_id=..., ...)        # the stand-in sends Slack's signed payload

A press goes to the stand-in, which does what Slack does when a person clicks: it POSTs the
button's `block_actions` payload to the control plane's /slack/actions, signed with the app's
signing secret, with `user.id` the Slack id (config/access.yml `slack_id`) of the person signed
in here; the control plane answers through the payload's `response_url`, back to the
stand-in, and its ephemeral answer shows to that person only.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import dash_mantine_components as dmc
import requests
from dash import html

from controlplane.slack.standin import block_id_of, find_button
from dashboards import acting, text
from dashboards.acting import Acting, Outcome

Json = dict[str, Any]
ButtonId = Callable[[Mapping[str, Any], str], dict[str, str] | None]

FETCH_TIMEOUT_S = 2.0
PRESS_TIMEOUT_S = 8.0  # the stand-in waits up to 5 s for the control plane
MAX_POSTS = 50  # top-level messages shown per channel, the newest
SLACK_HOSTS = ("slack.com",)
BUTTON = "chat-button"
_COLOURS = {"primary": "green", "danger": "red"}
# the emoji the control plane's messages use, and a few more; others stay `:name:`
EMOJI = {
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "white_check_mark": "✅",
    "warning": "⚠️",
    "rotating_light": "🚨",
    "information_source": "\u2139\ufe0f",
    "gear": "⚙️",
    "double_vertical_bar": "⏸️",
    "small_red_triangle": "🔺",
    "no_entry": "⛔",
    "hourglass": "⌛",
    "x": "❌",
    "eyes": "👀",
    "fire": "🔥",
    "bell": "🔔",
    "mute": "🔇",
    "arrow_forward": "▶️",
    "heavy_check_mark": "✔️",
}


class ChatUnavailable(Exception):
    """The stand-in could not be read; the message says where and why."""


# -- where the stand-in is --------------------------------------------------------------------


def standin_base(api_url: str | None) -> str | None:
    """The stand-in's base URL from the Web API URL the control plane posts to; None when
    there is no Slack here (no bot token) or it is Slack itself."""
    if not api_url:
        return None
    parts = urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if not host or any(host == h or host.endswith("." + h) for h in SLACK_HOSTS):
        return None
    path = parts.path.rstrip("/")
    path = path.removesuffix("/api")
    return f"{parts.scheme}://{parts.netloc}{path}"


def not_shown(api_url: str | None) -> str:
    """Why there is nothing to show: Slack itself, or no Slack at all."""
    if not api_url:
        return (
            "Slack is not configured here (no CONTROLPLANE_SLACK_BOT_TOKEN): no message is "
            "posted, so there is nothing to show."
        )
    return (
        f"Messages go to Slack itself ({api_url}): read them, and press their buttons, in "
        "Slack. This page shows the Slack stand-in that `controlplane demo` runs, where no "
        "Slack workspace is needed."
    )


# -- what the stand-in holds ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Channel:
    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    channels: tuple[Channel, ...]
    messages: tuple[Json, ...]
    interactive: bool = False  # the stand-in sends presses (a request URL and a secret)
    request_url: str | None = None

    def digest(self) -> str:
        raw = json.dumps(
            [self.interactive, [c.id for c in self.channels], list(self.messages)],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True, kw_only=True)
class Viewer:
    """Who looks: signed in (a name) and known to Slack (a Slack id), or neither."""

    name: str | None = None
    slack_id: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # Slack id -> person, for <@U..>


def viewer_of(acting_: Acting | None) -> Viewer:
    """The person signed in to the dashboards, and the people of the access file by Slack id."""
    if acting_ is None:
        return Viewer()
    people = {u.slack_id: u.name for u in acting_.access().users if u.slack_id}
    found = acting.session(acting_)
    if found is None:
        return Viewer(names=people)
    return Viewer(name=found.user.name, slack_id=found.user.slack_id, names=people)


def fetch(base: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> Snapshot:
    try:
        info = _get_json(f"{base}/stand-in/info", timeout_s)
        found = _get_json(f"{base}/stand-in/messages", timeout_s)
        channels = tuple(
            Channel(id=str(c["id"]), name=str(c["name"])) for c in info.get("channels") or ()
        )
        messages = tuple(m for m in found.get("messages") or () if isinstance(m, dict))
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise ChatUnavailable(f"the Slack stand-in at {base} cannot be read: {exc}") from None
    return Snapshot(
        channels=channels,
        messages=messages,
        interactive=bool(info.get("interactive")),
        request_url=info.get("request_url") or None,
    )


def _get_json(url: str, timeout_s: float) -> Json:
    response = requests.get(url, timeout=timeout_s)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"{url} answered {type(body).__name__}, not an object")
    return body


# -- messages, threads, channels --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Post:
    channel: str
    ts: str
    text: str
    blocks: tuple[Json, ...] = ()
    posted_at: float = 0.0
    ephemeral: bool = False
    edits: int = 0
    edited_at: float | None = None
    deleted: bool = False
    replies: tuple[Post, ...] = ()


def ts_key(ts: str) -> tuple[int, int]:
    """Slack's ts (`1700000000.000123`) in order."""
    whole, _, part = str(ts).partition(".")
    try:
        return int(whole), int(part or 0)
    except ValueError:
        return 0, 0


def post_of(message: Mapping[str, Any], replies: Sequence[Post] = ()) -> Post:
    updates = [u for u in message.get("updates") or () if isinstance(u, dict)]
    blocks = message.get("blocks")
    return Post(
        channel=str(message.get("channel") or ""),
        ts=str(message.get("ts") or ""),
        text=str(message.get("text") or ""),
        blocks=tuple(b for b in blocks if isinstance(b, dict)) if isinstance(blocks, list) else (),
        posted_at=float(message.get("posted_at") or 0.0),
        ephemeral=bool(message.get("ephemeral")),
        edits=len(updates),
        edited_at=float(updates[-1].get("at") or 0.0) if updates else None,
        deleted=bool(message.get("deleted")),
        replies=tuple(replies),
    )


def visible(message: Mapping[str, Any], viewer: Viewer) -> bool:
    """Ephemeral messages show to the person they are for, and to nobody else."""
    return not message.get("ephemeral") or (
        viewer.slack_id is not None and message.get("user") == viewer.slack_id
    )


def channel_posts(
    snapshot: Snapshot, channel_id: str, viewer: Viewer, *, limit: int = MAX_POSTS
) -> list[Post]:
    """The channel's messages, newest first, each with its thread (replies by `thread_ts`,
    oldest first, as Slack shows a thread)."""
    mine = [m for m in snapshot.messages if m.get("channel") == channel_id and visible(m, viewer)]
    tops = {str(m["ts"]): m for m in mine if not m.get("thread_ts") or m["thread_ts"] == m["ts"]}
    threads: dict[str, list[Json]] = {}
    for m in mine:
        parent = m.get("thread_ts")
        if parent and parent != m["ts"]:
            if parent in tops:
                threads.setdefault(str(parent), []).append(m)
            else:  # a reply whose parent is not here: shown on its own
                tops[str(m["ts"])] = m
    posts = [
        post_of(m, [post_of(r) for r in sorted(threads.get(ts, []), key=lambda r: ts_key(r["ts"]))])
        for ts, m in tops.items()
    ]
    posts.sort(key=lambda p: ts_key(p.ts), reverse=True)
    return posts[:limit]


@dataclass(frozen=True, kw_only=True)
class ChannelRow:
    channel: Channel
    messages: int  # visible to the viewer, replies included
    latest: float | None  # when the latest was posted


def channel_rows(snapshot: Snapshot, viewer: Viewer) -> list[ChannelRow]:
    known = {c.id: c for c in snapshot.channels}
    for m in snapshot.messages:  # a channel the stand-in no longer lists keeps its messages
        cid = str(m.get("channel") or "")
        if cid and cid not in known:
            known[cid] = Channel(id=cid, name=str(m.get("channel_name") or cid))
    rows = []
    for channel in known.values():
        seen = [
            m for m in snapshot.messages if m.get("channel") == channel.id and visible(m, viewer)
        ]
        latest = max((float(m.get("posted_at") or 0) for m in seen), default=None)
        rows.append(ChannelRow(channel=channel, messages=len(seen), latest=latest))
    return rows


def chosen_channel(rows: Sequence[ChannelRow], wanted: str | None) -> Channel | None:
    """The channel asked for (by name, `#name` or id), else the one posted to last."""
    if wanted:
        name = wanted.removeprefix("#")
        for row in rows:
            if name in (row.channel.name, row.channel.id):
                return row.channel
    with_messages = [r for r in rows if r.latest is not None]
    if with_messages:
        return max(with_messages, key=lambda r: r.latest or 0.0).channel
    return rows[0].channel if rows else None


# -- mrkdwn -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A piece of mrkdwn: text, bold, italic, strike, code, pre, link or mention."""

    kind: str
    text: str = ""
    href: str | None = None
    children: tuple[Span, ...] = ()


_TOKEN = re.compile(
    r"```(?P<pre>.+?)```"
    r"|`(?P<code>[^`\n]+)`"
    r"|<(?P<angle>[^<>\n]+)>"
    r"|(?<![\w*])\*(?=\S)(?P<bold>[^*\n]+?)(?<=\S)\*(?![\w*])"
    r"|(?<![\w_])_(?=\S)(?P<italic>[^_\n]+?)(?<=\S)_(?![\w_])"
    r"|(?<![\w~])~(?=\S)(?P<strike>[^~\n]+?)(?<=\S)~(?![\w~])",
    re.DOTALL,
)
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_LINK_SCHEMES = ("http", "https", "mailto")


def unescape(value: str) -> str:
    """Slack's three escapes, and no others (`&nbsp;` stays as it is, as in Slack)."""
    return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emojify(value: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m[1], m[0]), value)


def mrkdwn_spans(source: str, names: Mapping[str, str] | None = None) -> list[Span]:
    """Slack's mrkdwn as spans: *bold*, _italic_, ~strike~, `code`, ```pre```, <url|label>
    links (http, https and mailto only), <@U..> people (their names when known), <#C..|name>
    channels, <!here>; emoji the messages use as characters."""
    names = names or {}
    spans: list[Span] = []
    at = 0
    for match in _TOKEN.finditer(source):
        if match.start() > at:
            spans.append(Span("text", emojify(unescape(source[at : match.start()]))))
        at = match.end()
        kind = match.lastgroup or "text"
        inner = match[kind]
        if kind in ("pre", "code"):
            spans.append(Span(kind, unescape(inner)))
        elif kind == "angle":
            spans.append(_angle(inner, names))
        else:
            spans.append(Span(kind, children=tuple(mrkdwn_spans(inner, names))))
    if at < len(source):
        spans.append(Span("text", emojify(unescape(source[at:]))))
    return spans


def _angle(inner: str, names: Mapping[str, str]) -> Span:
    target, _, label = inner.partition("|")
    label = unescape(label)
    if target.startswith("@"):
        who = target[1:]
        return Span("mention", "@" + (names.get(who) or label or who))
    if target.startswith("#"):
        return Span("mention", "#" + (label or target[1:]))
    if target.startswith("!"):
        word = target[1:].split("^", 1)[0]
        if word in ("here", "channel", "everyone"):
            return Span("mention", "@" + word)
        return Span("text", label or word)  # dates, user groups: their fallback text
    href = unescape(target)
    if urlsplit(href).scheme.lower() in _LINK_SCHEMES:
        return Span("link", label or href, href=href)
    return Span("text", label or href)


def plain(spans: Iterable[Span]) -> str:
    """The spans' text, as a screen reader or a notification would say it."""
    return "".join(s.text if not s.children else plain(s.children) for s in spans)


def span_components(spans: Iterable[Span]) -> list[Any]:
    out: list[Any] = []
    for span in spans:
        if span.kind == "text":
            out.append(span.text)
        elif span.kind == "bold":
            out.append(html.B(span_components(span.children)))
        elif span.kind == "italic":
            out.append(html.I(span_components(span.children)))
        elif span.kind == "strike":
            out.append(html.S(span_components(span.children)))
        elif span.kind == "code":
            out.append(html.Code(span.text, className="chat-code"))
        elif span.kind == "pre":
            out.append(html.Pre(span.text, className="chat-pre"))
        elif span.kind == "link":
            out.append(html.A(span.text, href=span.href, target="_blank", rel="noopener"))
        elif span.kind == "mention":
            out.append(html.Span(span.text, className="chat-mention", style=_MENTION))
    return out


_MENTION = {
    "background": "var(--mantine-color-yellow-light)",
    "borderRadius": 3,
    "padding": "0 2px",
    "fontWeight": 600,
}
_TEXT = {"whiteSpace": "pre-wrap", "overflowWrap": "anywhere"}


def text_object(obj: Any, names: Mapping[str, str]) -> list[Any]:
    """A Block Kit text object: mrkdwn parsed, plain_text as it is (emoji shown)."""
    if not isinstance(obj, dict):
        return []
    value = str(obj.get("text") or "")
    if obj.get("type") == "mrkdwn":
        return span_components(mrkdwn_spans(value, names))
    return [emojify(value) if obj.get("emoji", True) else value]


# -- Block Kit ------------------------------------------------------------------------------


def blocks_components(
    blocks: Sequence[Mapping[str, Any]], names: Mapping[str, str], button_id: ButtonId
) -> list[Any]:
    """Header, section (text, fields, a button accessory), context, actions, divider, image;
    others are named, not dropped silently."""
    out: list[Any] = []
    for index, block in enumerate(blocks):
        kind = block.get("type")
        bid = block_id_of(block, index)
        if kind == "header":
            out.append(dmc.Text(text_object(block.get("text"), names), fw=700, size="lg"))
        elif kind == "section":
            out.append(_section(block, bid, names, button_id))
        elif kind == "context":
            out.append(_context(block, names))
        elif kind == "actions":
            elements = [e for e in block.get("elements") or () if isinstance(e, dict)]
            out.append(dmc.Group([_element(e, bid, button_id) for e in elements], gap=6, my=4))
        elif kind == "divider":
            out.append(dmc.Divider(my=4))
        elif kind == "image":
            label = str(block.get("alt_text") or "image")
            out.append(html.A(label, href=str(block.get("image_url") or ""), target="_blank"))
        else:
            out.append(dmc.Text(f"[{kind} block]", size="xs", c="dimmed"))
    return out


def _section(
    block: Mapping[str, Any], bid: str, names: Mapping[str, str], button_id: ButtonId
) -> Any:
    parts: list[Any] = []
    if block.get("text"):
        parts.append(html.Div(text_object(block["text"], names), style=_TEXT))
    fields = [f for f in block.get("fields") or () if isinstance(f, dict)]
    if fields:
        parts.append(
            dmc.SimpleGrid(
                [html.Div(text_object(f, names), style=_TEXT) for f in fields],
                cols=2,
                spacing="xs",
                verticalSpacing=4,
                mt=4,
            )
        )
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        parts.append(_element(accessory, bid, button_id))
    return html.Div(parts, className="chat-section", style={"margin": "4px 0"})


def _context(block: Mapping[str, Any], names: Mapping[str, str]) -> Any:
    items: list[Any] = []
    for element in block.get("elements") or ():
        if not isinstance(element, dict):
            continue
        if element.get("type") == "image":
            items.append(html.Span(str(element.get("alt_text") or "")))
        else:
            items.append(html.Span(text_object(element, names), style=_TEXT))
    return dmc.Group(
        items, gap=10, className="chat-context", style={"fontSize": 12, "opacity": 0.75}
    )


def _element(element: Mapping[str, Any], bid: str, button_id: ButtonId) -> Any:
    label = emojify(str((element.get("text") or {}).get("text") or element.get("action_id") or ""))
    if element.get("type") != "button":
        return dmc.Badge(f"{element.get('type')}: {label}", color="gray", variant="outline")
    style = element.get("style")
    props: dict[str, Any] = {
        "size": "xs",
        "color": _COLOURS.get(str(style), "gray"),
        "variant": "filled" if style in _COLOURS else "default",
        "className": BUTTON,
    }
    if element.get("url"):  # a link button: it opens its URL
        return dmc.Anchor(dmc.Button(label, **props), href=str(element["url"]), target="_blank")
    ident = button_id(element, bid)
    if ident is None:
        return dmc.Button(label, disabled=True, **props)
    return dmc.Button(label, id=ident, **props)


def button_ids(channel: str, ts: str, *, enabled: bool) -> ButtonId:
    """Pattern-matching ids naming a button: the press callback finds it again by these."""

    def ident(element: Mapping[str, Any], bid: str) -> dict[str, str] | None:
        action_id = element.get("action_id")
        if not enabled or not isinstance(action_id, str):
            return None
        return {"type": BUTTON, "channel": channel, "ts": ts, "action": action_id, "block": bid}

    return ident


# -- a message, a channel, the page -----------------------------------------------------------


def post_card(
    post: Post, *, viewer: Viewer, now_s: float, interactive: bool, reply: bool = False
) -> Any:
    head: list[Any] = [
        dmc.Text("controlplane", fw=700, size="sm"),
        dmc.Badge("app", size="xs", variant="light", color="gray", radius="sm"),
        dmc.Text(text.clock(post.posted_at, now_s), size="xs", c="dimmed"),
    ]
    if post.edits:
        when = text.clock(post.edited_at, now_s)
        head.append(
            dmc.Tooltip(
                dmc.Text("(edited)", size="xs", c="dimmed", className="chat-edited"),
                label=f"edited {post.edits} time{'s' if post.edits != 1 else ''}, last at {when}",
            )
        )
    if post.ephemeral:
        head.append(
            dmc.Text("Only visible to you", size="xs", c="blue", fw=600, className="chat-ephemeral")
        )
    if post.deleted:
        body: list[Any] = [
            dmc.Text("This message was deleted.", size="sm", c="dimmed", fs="italic")
        ]
    elif post.blocks:
        ids = button_ids(post.channel, post.ts, enabled=interactive and not post.ephemeral)
        body = blocks_components(post.blocks, viewer.names, ids)
    else:
        body = [html.Div(span_components(mrkdwn_spans(post.text, viewer.names)), style=_TEXT)]
    children: list[Any] = [dmc.Group(head, gap=6), *body]
    if post.replies:
        count = len(post.replies)
        children.append(
            html.Div(
                [
                    dmc.Text(
                        f"{count} repl{'ies' if count != 1 else 'y'}", size="xs", c="blue", fw=600
                    ),
                    *[
                        post_card(
                            r, viewer=viewer, now_s=now_s, interactive=interactive, reply=True
                        )
                        for r in post.replies
                    ],
                ],
                className="chat-thread",
                style={
                    "borderLeft": "3px solid var(--mantine-color-gray-4)",
                    "paddingLeft": 12,
                    "marginTop": 8,
                },
            )
        )
    style = {"background": "var(--mantine-color-blue-light)"} if post.ephemeral else None
    return dmc.Paper(
        children,
        p=6 if reply else "sm",
        mt=6 if reply else 0,
        withBorder=not reply,
        radius="md",
        className="chat-message chat-reply" if reply else "chat-message",
        style=style,
    )


def who_note(viewer: Viewer, snapshot: Snapshot) -> Any:
    if not snapshot.interactive:
        message = (
            "Buttons are shown but send nothing: the stand-in has no request URL or signing "
            "secret to send presses with (python -m controlplane.slack.standin --request-url "
            "... --signing-secret ...)."
        )
        return dmc.Alert(message, color="gray", variant="light", p="xs")
    if viewer.name is None:
        message = (
            "Sign in to press buttons: a press is sent to the control plane as the Slack id "
            "(config/access.yml slack_id) of the person signed in."
        )
        return dmc.Alert(message, color="yellow", variant="light", p="xs", id="chat-who")
    if not viewer.slack_id:
        message = (
            f"{viewer.name} has no slack_id in config/access.yml: the control plane would not "
            "know who pressed, and refuses the press."
        )
        return dmc.Alert(message, color="orange", variant="light", p="xs", id="chat-who")
    message = (
        f"Buttons press as {viewer.name} ({viewer.slack_id}): the stand-in sends Slack's signed "
        f"block_actions payload to {snapshot.request_url}, and the control plane answers you "
        "there, as in Slack."
    )
    return dmc.Alert(message, color="blue", variant="light", p="xs", id="chat-who")


def channel_nav(
    rows: Sequence[ChannelRow], chosen: Channel | None, params: Mapping[str, str]
) -> Any:
    links = [
        dmc.NavLink(
            label=f"#{row.channel.name}",
            href=text.link("/chat", {**params, "channel": row.channel.name}),
            active=chosen is not None and row.channel.id == chosen.id,
            rightSection=dmc.Badge(str(row.messages), size="xs", variant="light", color="gray"),
            className="chat-channel",
            py=4,
        )
        for row in sorted(rows, key=lambda r: r.channel.name)
    ]
    return dmc.Stack(
        [dmc.Text("Channels", size="xs", fw=700, c="dimmed", tt="uppercase"), *links], gap=2
    )


def page_body(
    snapshot: Snapshot,
    *,
    viewer: Viewer,
    wanted: str | None,
    params: Mapping[str, str],
    now_s: float,
) -> list[Any]:
    rows = channel_rows(snapshot, viewer)
    chosen = chosen_channel(rows, wanted)
    if chosen is None:
        posts: list[Post] = []
        messages: list[Any] = [_empty("The stand-in has no channel.")]
    else:
        posts = channel_posts(snapshot, chosen.id, viewer)
        messages = [
            dmc.Text(f"#{chosen.name}", fw=700, size="lg", id="chat-channel"),
            dmc.Text(
                "newest first; threads under their message, oldest first",
                size="xs",
                c="dimmed",
                mb="xs",
            ),
        ]
        messages += [
            post_card(p, viewer=viewer, now_s=now_s, interactive=snapshot.interactive)
            for p in posts
        ] or [_empty(f"Nothing posted to #{chosen.name} yet.")]
    return [
        who_note(viewer, snapshot),
        dmc.Grid(
            [
                dmc.GridCol(channel_nav(rows, chosen, params), span={"base": 12, "md": 3}),
                dmc.GridCol(dmc.Stack(messages, gap="sm"), span={"base": 12, "md": 9}),
            ],
            mt="sm",
        ),
    ]


def _empty(message: str) -> Any:
    return dmc.Text(message, c="dimmed", size="sm", py="xs")


# -- pressing a button ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ButtonRef:
    channel: str
    ts: str
    action_id: str
    block_id: str

    @classmethod
    def of(cls, ident: Mapping[str, Any]) -> ButtonRef:
        return cls(
            channel=str(ident.get("channel") or ""),
            ts=str(ident.get("ts") or ""),
            action_id=str(ident.get("action") or ""),
            block_id=str(ident.get("block") or ""),
        )

    def as_data(self) -> dict[str, str]:
        return {
            "channel": self.channel,
            "ts": self.ts,
            "action": self.action_id,
            "block": self.block_id,
        }


def button_of(snapshot: Snapshot, ref: ButtonRef) -> Json | None:
    """The button as the message holds it now (None: gone, or the message changed)."""
    for message in snapshot.messages:
        if message.get("channel") == ref.channel and message.get("ts") == ref.ts:
            found = find_button(message.get("blocks"), ref.action_id, ref.block_id or None)
            return found[0] if found else None
    return None


def label_of(button: Mapping[str, Any]) -> str:
    return emojify(str((button.get("text") or {}).get("text") or button.get("action_id") or ""))


def confirm_of(button: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """A button's confirmation dialog (title, text, confirm, deny), if it asks for one."""
    confirm = button.get("confirm")
    if not isinstance(confirm, dict):
        return None

    def part(key: str, default: str) -> str:
        value = confirm.get(key)
        return str(value.get("text")) if isinstance(value, dict) and value.get("text") else default

    return (
        part("title", "Are you sure?"),
        part("text", ""),
        part("confirm", "Yes"),
        part("deny", "Cancel"),
    )


def press(
    base: str,
    ref: ButtonRef,
    *,
    slack_id: str,
    name: str,
    label: str,
    timeout_s: float = PRESS_TIMEOUT_S,
) -> Outcome:
    """Ask the stand-in to press `ref` as `slack_id`: it sends the signed payload, as Slack."""
    body = {
        "channel": ref.channel,
        "ts": ref.ts,
        "action_id": ref.action_id,
        "block_id": ref.block_id or None,
        "user": slack_id,
        "user_name": name,
    }
    try:
        response = requests.post(f"{base}/stand-in/interactions", json=body, timeout=timeout_s)
        answer = response.json()
    except (requests.RequestException, ValueError) as exc:
        return Outcome(ok=False, message=f"the Slack stand-in at {base} did not answer: {exc}")
    if not isinstance(answer, dict):
        return Outcome(ok=False, message=f"the Slack stand-in answered {answer!r}")
    return press_outcome(answer, who=f"{name} ({slack_id})", label=label)


def press_outcome(answer: Mapping[str, Any], *, who: str, label: str) -> Outcome:
    """What the stand-in said about a press, for the person who pressed."""
    error = answer.get("error")
    if error == "interactivity_off":
        return Outcome(ok=False, message="the stand-in sends no presses: no request URL or secret")
    if error in ("button_not_found", "message_not_found", "channel_not_found"):
        return Outcome(ok=False, message=f"“{label}” is no longer there: the message changed")
    if error == "request_failed":
        return Outcome(
            ok=False,
            message=f"the stand-in could not reach the control plane: {answer.get('detail')}",
        )
    if error:
        return Outcome(ok=False, message=f"the stand-in refused the press: {error}")
    status = answer.get("status")
    if not answer.get("ok"):
        said = str(answer.get("answer") or "")[:300]
        return Outcome(
            ok=False,
            message=f"pressed “{label}” as {who}: the control plane answered {status} {said}",
        )
    return Outcome(
        ok=True,
        message=f"pressed “{label}” as {who}: the control plane answered {status}; "
        "its answer shows in the channel",
    )


def wait_for_change(
    base: str,
    before: str,
    *,
    timeout_s: float = 3.0,
    every_s: float = 0.15,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Until what the stand-in holds differs from `before` (a digest): the control plane
    answers on its worker, a moment after it acknowledged the press."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if fetch(base).digest() != before:
                return True
        except ChatUnavailable:
            return False
        sleep(every_s)
    return False
