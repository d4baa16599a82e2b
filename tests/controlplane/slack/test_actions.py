"""Button clicks, signed as Slack signs them: accepted ones act through Operations; refused
ones are answered to the clicker alone, audited, and change nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from slack_sdk import WebClient

from controlplane.notify.alerts import Alert, GroupKey
from controlplane.runbooks.store import State
from controlplane.slack.respond import Responder
from controlplane.slack.standin import StandinConfig, channel_id, create_app
from tests.conftest import ServedApp
from tests.controlplane.slack.conftest import REGION_DOWN, SlackSide, SlackWorld, build_world
from tests.controlplane.slack.slackreq import click, click_body, post, trigger, value_of


def approve_value(world: SlackWorld, ex_id: str) -> str:
    ex = world.executions.get(ex_id)
    assert ex is not None
    return value_of(world.slack.buttons.for_execution(ex), "cp:approve")


def message_blocks(world: SlackWorld, ex_id: str) -> list[dict[str, Any]]:
    ex = world.executions.get(ex_id)
    assert ex is not None
    block = world.slack.buttons.execution_block(ex)
    assert block is not None
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "drain eu?"}}, block]


def outcomes(world: SlackWorld) -> list[tuple[str | None, str]]:
    return [(e["user"], e["outcome"]) for e in world.events("slack_click")]


def group(world: SlackWorld) -> tuple[GroupKey, list[dict[str, Any]]]:
    alert = Alert.of(REGION_DOWN, starts_at=world.clock.utc() - timedelta(minutes=2))
    key = GroupKey(route_key="{}", labels=(("alertname", "RegionDown"), ("region", "eu")))
    return key, world.slack.buttons.for_group(_View(key, (alert,)))


def test_two_approvers_clicks_make_a_pending_execution_run(world: SlackWorld) -> None:
    ex = world.pending_drain()
    value, blocks = approve_value(world, ex.id), message_blocks(world, ex.id)
    assert click(world, "UALICE", value, blocks=blocks).status_code == 200
    half = world.executions.get(ex.id)
    assert half is not None and half.state is State.PENDING_APPROVAL and world.jobs == []
    assert "waiting for another approver" in world.slack_side.texts()[0]
    click(world, "UBOB", value, blocks=blocks)  # the same button: per-person nonces
    done = world.executions.get(ex.id)
    assert done is not None and done.state is State.RUNNING and len(world.jobs) == 1
    assert [a["user"] for a in done.approvals] == ["alice", "bob"]
    assert outcomes(world) == [("alice", "accepted"), ("bob", "accepted")]
    last = world.slack_side.replaced()[-1]  # the message, for everyone: no buttons left
    assert [b["type"] for b in last] == ["section", "context"]
    assert "approved by alice, bob" in last[1]["elements"][0]["text"]
    ephemeral = [b for _p, b in world.slack_side.posts if b.get("response_type") == "ephemeral"]
    assert len(ephemeral) == 2 and all(b["replace_original"] is False for b in ephemeral)


def test_the_same_approver_twice_is_refused_and_does_not_block_the_other(
    world: SlackWorld,
) -> None:
    ex = world.pending_drain()
    value = approve_value(world, ex.id)
    click(world, "UALICE", value)
    click(world, "UALICE", value)  # a second click by the same approver
    after = world.executions.get(ex.id)
    assert after is not None and [a["user"] for a in after.approvals] == ["alice"]
    assert after.state is State.PENDING_APPROVAL and world.jobs == []
    assert "already approved" in world.slack_side.texts()[-1]
    click(world, "UCAROL", value)  # the second person's click still counts
    done = world.executions.get(ex.id)
    assert done is not None and done.state is State.RUNNING
    assert outcomes(world) == [
        ("alice", "accepted"),
        ("alice", "already_approved"),
        ("carol", "accepted"),
    ]


def test_a_viewer_an_unknown_user_and_the_requester_are_refused(world: SlackWorld) -> None:
    own = world.ops.run(
        world.access().by_name("alice"),  # type: ignore[arg-type]
        "drain-region",
        labels={"region": "latam"},
        params={},
        dry_run=False,
    )
    assert own.state is State.PENDING_APPROVAL and own.requested_by == "alice"
    value = approve_value(world, own.id)
    for who in ("UVERA", "UNOBODY", "UALICE"):
        click(world, who, value)
    after = world.executions.get(own.id)
    assert after is not None and after.approvals == () and after.state is State.PENDING_APPROVAL
    assert outcomes(world) == [
        ("vera", "forbidden"),
        (None, "unknown_user"),
        ("alice", "forbidden"),
    ]
    texts = world.slack_side.texts()
    assert "vera (viewer) may not approve" in texts[0]
    assert "not in the control plane's access file" in texts[1]
    assert "you requested" in texts[2]
    assert all(b["response_type"] == "ephemeral" for _p, b in world.slack_side.posts)
    click(world, "UBOB", value)  # nothing above used the button up
    assert [a["user"] for a in world.executions.get(own.id).approvals] == ["bob"]  # type: ignore[union-attr]


def test_an_expired_approval_does_nothing(world: SlackWorld) -> None:
    ex = world.pending_drain()
    value = approve_value(world, ex.id)
    world.clock.now += 601  # past the runbook's approval_timeout
    click(world, "UALICE", value)
    after = world.executions.get(ex.id)
    assert after is not None and after.approvals == ()
    assert outcomes(world) == [(None, "expired")]
    assert "expired" in world.slack_side.texts()[0]


def test_a_decided_request_says_so_and_does_nothing(world: SlackWorld) -> None:
    ex = world.pending_drain()
    value, blocks = approve_value(world, ex.id), message_blocks(world, ex.id)
    reject = value_of(world.slack.buttons.for_execution(ex), "cp:reject")
    click(world, "UCAROL", reject, blocks=blocks)
    click(world, "UALICE", value, blocks=blocks)
    after = world.executions.get(ex.id)
    assert after is not None and after.state is State.REJECTED and after.approvals == ()
    assert outcomes(world) == [("carol", "accepted"), ("alice", "decided")]
    assert "already decided" in world.slack_side.ephemerals()[-1]
    assert "rejected by carol" in world.slack_side.replaced()[-1][1]["elements"][0]["text"]


def test_a_retried_request_acts_once(world: SlackWorld) -> None:
    ex = world.pending_drain()
    value, again = approve_value(world, ex.id), trigger()
    click(world, "UALICE", value, trigger_id=again)
    response = click(world, "UALICE", value, trigger_id=again, headers={"X-Slack-Retry-Num": "1"})
    assert response.status_code == 200  # acknowledged
    after = world.executions.get(ex.id)
    assert after is not None and [a["user"] for a in after.approvals] == ["alice"]
    assert [e["outcome"] for e in world.events("slack_click")] == ["accepted", "duplicate"]
    assert len(world.slack_side.posts) == 1  # answered once


def test_a_replayed_single_use_button_does_nothing(world: SlackWorld) -> None:
    _key, elements = group(world)
    silence = value_of(elements, "cp:silence_1h")
    click(world, "UONCALL", silence)
    click(world, "UBOB", silence)  # anyone's second press of a single-use button
    assert outcomes(world) == [("oncall", "accepted"), ("bob", "replayed")]
    silences = world.ops.silencing.silences.list_silences()  # type: ignore[union-attr]
    assert len(silences) == 1
    assert silences[0].matcher_strings == [
        'alertname="RegionDown"',
        'region="eu"',
        'severity="page"',
    ]  # what the group's alerts share
    assert silences[0].created_by == "oncall"


def test_run_and_pause_buttons(world: SlackWorld) -> None:
    _key, elements = group(world)
    click(world, "UVERA", value_of(elements, "cp:run:drain-region"))  # a viewer: refused
    click(world, "UONCALL", value_of(elements, "cp:run:drain-region"))
    click(world, "UBOB", value_of(elements, "cp:run:drain-region"))  # single use
    runs = world.executions.find(runbook="drain-region")
    assert len(runs) == 1 and runs[0].requested_by == "oncall"
    assert runs[0].state is State.PENDING_APPROVAL  # approval mode: asks for two people
    click(world, "UONCALL", value_of(elements, "cp:pause"))
    assert world.ops.switches.automation()[:3] == (True, "paused from Slack", "oncall")
    assert [o for _u, o in outcomes(world)] == ["forbidden", "accepted", "replayed", "accepted"]


def test_acknowledge_stops_reminders_until_the_group_resolves(world: SlackWorld) -> None:
    key, elements = group(world)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "RegionDown"}}]
    click(world, "UONCALL", value_of(elements, "cp:acknowledge"), blocks=blocks)
    assert [a.user for a in world.slack.acks.of(str(key))] == ["oncall"]
    assert "on it: oncall" in world.slack_side.replaced()[-1][-1]["elements"][0]["text"]
    firing = Alert.of(REGION_DOWN, starts_at=world.clock.utc())
    live = [_View(key, (firing,))]
    hook = world.slack.acks.hook(lambda: live)
    assert hook(key) is True
    live[:] = [
        _View(key, (Alert.of(REGION_DOWN, starts_at=firing.starts_at, ends_at=firing.starts_at),))
    ]
    assert hook(key) is False  # resolved: forgotten
    assert world.slack.acks.of(str(key)) == []
    assert world.events("acknowledged") == [{"group": str(key)}]


def test_a_value_we_did_not_sign_is_refused(world: SlackWorld) -> None:
    ex = world.pending_drain()
    forged = approve_value(world, ex.id).replace('"a":"approve"', '"a":"reject"')
    click(world, "UALICE", forged)
    assert (world.executions.get(ex.id) or ex).state is State.PENDING_APPROVAL
    assert outcomes(world) == [(None, "bad_token")]


def test_answers_follow_only_slacks_own_hosts() -> None:
    responder = Responder(api_url="http://127.0.0.1:9999/api/")
    assert responder.allowed("https://hooks.slack.com/actions/T1/1/x")
    assert responder.allowed("http://127.0.0.1:9999/hooks/x")
    for url in (
        "http://hooks.slack.com/actions/T1/1/x",
        "https://hooks.slack.com.evil.example/x",
        "https://evil.example/hooks.slack.com",
        "http://127.0.0.1:9998/hooks/x",
        "http://169.254.169.254/latest/meta-data",
        None,
    ):
        assert not responder.allowed(url)


class _View:
    def __init__(self, key: GroupKey, alerts: tuple[Alert, ...]) -> None:
        self.key, self.alerts = key, alerts


def test_without_a_usable_response_url_answers_go_through_the_web_api(
    tmp_path: Path, slack_side: SlackSide
) -> None:
    """Against the Web API stand-in: the ephemeral answer by chat.postEphemeral, the decided
    message by chat.update; a response_url on a foreign host is never followed."""
    standin = ServedApp(create_app(StandinConfig(token="xoxb-test", channels=("oncall",))))
    world = build_world(tmp_path, slack_side, api_url=f"{standin.url}/api/")
    try:
        ex = world.pending_drain()
        blocks = message_blocks(world, ex.id)
        web = WebClient(token="xoxb-test", base_url=f"{standin.url}/api/")
        posted = web.chat_postMessage(channel="oncall", text="drain eu?", blocks=blocks)
        for who in ("UALICE", "UBOB"):
            body = click_body(
                user=who,
                value=approve_value(world, ex.id),
                response_url="https://evil.example/hooks/x",
                blocks=blocks,
                channel=channel_id("oncall"),
                ts=str(posted["ts"]),
            )
            post(world, "/slack/actions", body)
            world.settle()
        messages = requests.get(f"{standin.url}/stand-in/messages", timeout=5).json()["messages"]
        ephemeral = [m for m in messages if m["ephemeral"]]
        assert [m["user"] for m in ephemeral] == ["UALICE", "UBOB"]
        assert ephemeral[1]["text"] == "approved: now running"
        [original] = [m for m in messages if not m["ephemeral"]]
        assert "approved by alice, bob" in original["blocks"][-1]["elements"][0]["text"]
        assert slack_side.posts == []  # nothing went to a response_url
    finally:
        world.slack.close()
        world.engine.dispose()
        standin.close()
