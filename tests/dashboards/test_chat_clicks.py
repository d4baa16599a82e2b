"""A press from /dash/chat's server side, end to end over HTTP: the stand-in sends Slack's
signed block_actions payload to a real /slack/actions (the control plane's Slack wiring over a
real Remediator and Operations: tests/controlplane/slack/conftest.py), which acts as the person
and answers through the response_url, back to the stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from slack_sdk import WebClient

from controlplane.access.session import Sessions
from controlplane.notify.alerts import Alert, GroupKey
from controlplane.runbooks.store import State
from controlplane.slack.standin import EXTENSION, StandinConfig, Workspace, create_app
from dashboards import ReadModels, chat, create_dash
from dashboards.acting import Acting
from tests.conftest import ServedApp
from tests.controlplane.slack.conftest import (
    REGION_DOWN,
    SECRET,
    SlackSide,
    SlackWorld,
    build_world,
)

BOT_TOKEN = "xoxb-test"  # build_world's
CHANNEL = "casino-oncall"


@dataclass
class Chat:
    """The stand-in and a control plane's Slack side, each served, wired to each other."""

    world: SlackWorld
    standin: ServedApp
    controlplane: ServedApp

    @property
    def base(self) -> str:
        return self.standin.url

    def web(self) -> WebClient:
        return WebClient(token=BOT_TOKEN, base_url=f"{self.base}/api/", retry_handlers=[])

    def snapshot(self) -> chat.Snapshot:
        return chat.fetch(self.base)

    def press(self, ts: str, action_id: str, who: str) -> chat.Outcome:
        """As the page does for the person signed in (their access slack_id)."""
        user = self.world.access().by_name(who)
        assert user is not None and user.slack_id
        ref = next(r for r in refs(self.snapshot(), ts) if r.action_id == action_id)
        done = chat.press(self.base, ref, slack_id=user.slack_id, name=who, label=action_id)
        self.world.settle()  # the control plane acts on its worker, then answers
        return done


def refs(snapshot: chat.Snapshot, ts: str) -> list[chat.ButtonRef]:
    """The buttons the page draws for a message, as the refs a press sends back."""
    message = next(m for m in snapshot.messages if m["ts"] == ts)
    post = chat.post_of(message)
    ids = chat.button_ids(post.channel, post.ts, enabled=True)
    found = []
    for index, block in enumerate(post.blocks):
        for element in block.get("elements") or ():
            ident = ids(element, chat.block_id_of(block, index))
            if ident is not None:
                found.append(chat.ButtonRef.of(ident))
    return found


def wire(tmp_path: Path, *, dash: bool = False) -> Chat:
    """The stand-in served, then the control plane's Slack side (and, with `dash`, the
    dashboards, acting as people of tests/people.py) pointed at it and served, then the
    stand-in's app settings: its Request URL and signing secret, as the demo passes them."""
    standin_app: Flask = create_app(StandinConfig(token=BOT_TOKEN, channels=(CHANNEL,)))
    standin = ServedApp(standin_app)
    api_url = f"{standin.url}/api/"
    world = build_world(tmp_path, SlackSide(), api_url=api_url)
    if dash:
        reads = ReadModels(
            querier=cast(Any, None),  # the chat page queries nothing
            slos=(),
            alerts=tuple,
            executions=world.executions,
            automation=world.ops.switches,
            audit=world.log,
            clock=world.clock,
            acting=Acting(ops=world.ops, access=world.access, sessions=Sessions(lambda: "k")),
            slack_api_url=api_url,
        )
        create_dash(world.app, reads=reads)
    controlplane = ServedApp(world.app)
    workspace: Workspace = standin_app.extensions[EXTENSION]
    workspace.config = dataclasses.replace(
        workspace.config, request_url=f"{controlplane.url}/slack/actions", signing_secret=SECRET
    )
    return Chat(world, standin, controlplane)


def unwire(wired: Chat) -> None:
    wired.world.slack.close()
    wired.controlplane.close()
    wired.standin.close()
    wired.world.engine.dispose()


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Chat]:
    made = wire(tmp_path)
    yield made
    unwire(made)


def region_down_message(wired: Chat) -> str:
    """A RegionDown group's message with its buttons (Silence, Acknowledge, Pause...)."""
    world = wired.world
    alert = Alert.of(REGION_DOWN, starts_at=world.clock.utc() - timedelta(minutes=2))
    key = GroupKey(route_key="{}", labels=(("alertname", "RegionDown"), ("region", "eu")))
    elements = world.slack.buttons.for_group(_Group(key, (alert,)))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*RegionDown* eu"}},
        {"type": "actions", "elements": elements},
    ]
    posted = wired.web().chat_postMessage(channel=f"#{CHANNEL}", text="RegionDown", blocks=blocks)
    return str(posted["ts"])


class _Group:
    def __init__(self, key: GroupKey, alerts: tuple[Alert, ...]) -> None:
        self.key, self.alerts = key, alerts


def test_pause_automation_pressed_from_the_page_pauses_it_as_that_person(wired: Chat) -> None:
    world, ts = wired.world, region_down_message(wired)
    done = wired.press(ts, "cp:pause", "oncall")
    assert done.ok, done.message
    paused, _reason, by, _at = world.ops.switches.automation()
    assert (paused, by) == (True, "oncall")
    clicks = world.events("slack_click")
    assert [(c["user"], c["outcome"]) for c in clicks] == [("oncall", "accepted")]
    snap = wired.snapshot()
    oncall = chat.Viewer(name="oncall", slack_id="UONCALL")
    answer, message = chat.channel_posts(snap, snap.channels[0].id, oncall)  # newest first
    assert (answer.ephemeral, message.ts) == (True, ts)
    assert "paused" in answer.text.lower()
    # nobody else sees the answer
    alice = chat.Viewer(name="alice", slack_id="UALICE")
    assert [p.ts for p in chat.channel_posts(snap, snap.channels[0].id, alice)] == [ts]


def test_two_approvers_press_approve_in_the_thread_and_the_drain_runs(wired: Chat) -> None:
    world = wired.world
    ex = world.pending_drain()
    parent = wired.web().chat_postMessage(channel=f"#{CHANNEL}", text="[FIRING:1] RegionDown")
    block = world.slack.buttons.execution_block(ex)
    assert block is not None
    reply = wired.web().chat_postMessage(
        channel=parent["channel"],
        thread_ts=parent["ts"],
        text="drain-region asks for approval",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "drain eu?"}}, block],
    )
    approve, _reject = refs(wired.snapshot(), reply["ts"])
    assert wired.press(reply["ts"], "cp:approve", "alice").ok
    half = world.executions.get(ex.id)
    assert half is not None and half.state is State.PENDING_APPROVAL
    assert wired.press(reply["ts"], "cp:approve", "bob").ok
    done = world.executions.get(ex.id)
    assert done is not None and done.state is State.RUNNING and len(world.jobs) == 1
    assert [a["user"] for a in done.approvals] == ["alice", "bob"]

    snap = wired.snapshot()
    bob = chat.Viewer(name="bob", slack_id="UBOB")
    (thread,) = chat.channel_posts(snap, parent["channel"], bob)
    asked, answer = thread.replies  # bob sees his answer in the thread, not alice's
    assert answer.ephemeral and "approve" in answer.text.lower()
    assert asked.edits >= 1  # replaced through the response_url: decided, no buttons left
    assert [b["type"] for b in asked.blocks] == ["section", "context"]
    assert "approved by alice, bob" in chat.plain(
        chat.mrkdwn_spans(asked.blocks[1]["elements"][0]["text"])
    )
    late = chat.press(wired.base, approve, slack_id="UCAROL", name="carol", label="Approve")
    assert not late.ok and "no longer there" in late.message
