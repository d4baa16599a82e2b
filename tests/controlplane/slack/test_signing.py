"""Slack's request signature: checked over the raw body before anything is read; a request
that fails gets 401 JSON, is audited, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from slack_sdk.signature import SignatureVerifier

from controlplane.runbooks.store import State
from controlplane.slack.tables import slack_nonces
from tests.controlplane.slack.conftest import SECRET, SlackSide, SlackWorld, build_world
from tests.controlplane.slack.slackreq import (
    click_body,
    command_body,
    post,
    signature,
    value_of,
)


class _At:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_our_test_signatures_are_slacks() -> None:
    """Slack's documented example, and slack_sdk's verifier agrees with how the tests sign."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
        b"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    verifier = SignatureVerifier(SECRET, clock=_At(1531420618))  # type: ignore[arg-type]
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert signature(body, 1531420618) == expected
    assert verifier.is_valid(body, "1531420618", expected)
    assert not verifier.is_valid(body + b"x", "1531420618", expected)


def _nothing_changed(world: SlackWorld, ex_id: str) -> None:
    ex = world.executions.get(ex_id)
    assert ex is not None and ex.state is State.PENDING_APPROVAL and ex.approvals == ()
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(slack_nonces)).scalar() == 0
    assert world.slack_side.posts == [] and world.jobs == []


def _approve_body(world: SlackWorld, ex_id: str, user: str = "UALICE") -> bytes:
    ex = world.executions.get(ex_id)
    assert ex is not None
    value = value_of(world.slack.buttons.for_execution(ex), "cp:approve")
    return click_body(user=user, value=value, response_url=world.response_url)


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ({"secret": "not-the-secret"}, "bad_signature"),
        ({"timestamp_offset": -301}, "stale_timestamp"),
        ({"timestamp_offset": +400}, "stale_timestamp"),
    ],
)
def test_forged_or_stale_requests_get_401_and_change_nothing(
    world: SlackWorld, how: dict[str, object], code: str
) -> None:
    ex = world.pending_drain()
    body = _approve_body(world, ex.id)
    offset = int(how.get("timestamp_offset", 0))  # type: ignore[call-overload]
    secret = str(how.get("secret", SECRET))
    response = post(
        world, "/slack/actions", body, timestamp=int(world.clock.now) + offset, secret=secret
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == code
    world.settle()
    _nothing_changed(world, ex.id)
    assert [e["outcome"] for e in world.events("slack_click")] == [code]


def test_a_body_changed_after_signing_is_refused(world: SlackWorld) -> None:
    ex = world.pending_drain()
    body = _approve_body(world, ex.id, user="UVERA")
    headers = {"X-Slack-Signature": signature(body, int(world.clock.now))}
    forged = body.replace(b"UVERA", b"UBOB_")  # same length, another user
    client = world.app.test_client()
    response = client.post(
        "/slack/actions",
        data=forged,
        headers={
            **headers,
            "X-Slack-Request-Timestamp": str(int(world.clock.now)),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 401
    _nothing_changed(world, ex.id)


def test_unsigned_and_oversized_requests_are_refused(world: SlackWorld) -> None:
    client = world.app.test_client()
    unsigned = client.post("/slack/commands", data=b"text=pause", content_type="text/plain")
    assert unsigned.status_code == 401 and unsigned.get_json()["error"] == "unsigned"
    huge = b"payload=" + b"x" * (300 * 1024)
    assert post(world, "/slack/actions", huge).status_code == 413
    garbage = b"\xff\xfe" * 8
    assert post(world, "/slack/commands", garbage).status_code in (400, 401)
    assert world.slack_side.posts == []


def test_a_forged_slash_command_pauses_nothing(world: SlackWorld) -> None:
    body = command_body(user="UALICE", text="pause", response_url=world.response_url)
    response = post(world, "/slack/commands", body, secret="guess")
    assert response.status_code == 401
    world.settle()
    assert world.ops.switches.automation()[0] is False
    assert [e["outcome"] for e in world.events("slack_command")] == ["bad_signature"]


def test_without_a_signing_secret_every_slack_request_is_refused(
    tmp_path: Path, slack_side: SlackSide
) -> None:
    world = build_world(tmp_path, slack_side, secret=None)
    try:
        body = command_body(user="UALICE", text="pause", response_url=world.response_url)
        for path in ("/slack/actions", "/slack/commands"):
            response = post(world, path, body)
            assert response.status_code == 401
            assert "no signing secret" in response.get_json()["message"]
        assert world.ops.switches.automation()[0] is False
    finally:
        world.engine.dispose()
