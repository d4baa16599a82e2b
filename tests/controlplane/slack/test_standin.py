"""The Slack stand-in answers as Slack's Web API does, to the real slack_sdk client."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from controlplane.slack.standin import channel_id, create_app
from tests.conftest import ROOT, free_port, stop_process
from tests.controlplane.slack.standin_helpers import TOKEN, Standin, served_standin


@pytest.fixture
def standin() -> Iterator[Standin]:
    yield from served_standin()


def client(standin: Standin, token: str = TOKEN) -> WebClient:
    return WebClient(token=token, base_url=standin.api_url, retry_handlers=[])


def test_messages_threads_edits_and_ephemerals_are_recorded(standin: Standin) -> None:
    web = client(standin)
    assert web.auth_test()["user_id"] == "U0STANDIN"
    posted = web.chat_postMessage(channel="#alerts", text="hello", blocks=[{"type": "divider"}])
    assert posted["channel"] == channel_id("alerts")
    web.chat_postMessage(channel=posted["channel"], thread_ts=posted["ts"], text="in the thread")
    web.chat_update(channel=posted["channel"], ts=posted["ts"], text="edited")
    web.chat_postEphemeral(channel="#oncall", user="U1", text="only you")

    first, reply, ephemeral = standin.messages()
    assert (first["text"], first["updates"][0]["text"]) == ("edited", "edited")
    assert reply["thread_ts"] == posted["ts"] and not reply["ephemeral"]
    assert ephemeral["ephemeral"] and ephemeral["user"] == "U1"
    assert [m["text"] for m in standin.messages("oncall")] == ["only you"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda w: w.chat_postMessage(channel="#nowhere", text="x"), "channel_not_found"),
        # as in Slack: edits and lookups take the channel's id, never its name
        (lambda w: w.chat_update(channel="#alerts", ts="1.1", text="x"), "channel_not_found"),
        (
            lambda w: w.chat_update(channel=channel_id("alerts"), ts="1.1", text="x"),
            "message_not_found",
        ),
        (lambda w: w.conversations_info(channel="#alerts"), "channel_not_found"),
    ],
)
def test_refusals_are_slacks(standin: Standin, call: object, error: str) -> None:
    with pytest.raises(SlackApiError) as caught:
        call(client(standin))  # type: ignore[operator]
    assert caught.value.response.status_code == 200 and caught.value.response["error"] == error


def test_the_bearer_token_is_checked(standin: Standin) -> None:
    with pytest.raises(SlackApiError) as caught:
        client(standin, "xoxb-other").auth_test()
    assert caught.value.response["error"] == "invalid_auth"
    body = requests.post(f"{standin.api_url}auth.test", timeout=5).json()
    assert body == {"ok": False, "error": "not_authed"}


def test_faults_on_demand(standin: Standin) -> None:
    standin.fault(429, retry_after=3, count=1, methods=["chat.postMessage"])
    standin.fault(503, count=1)
    web = client(standin)
    with pytest.raises(SlackApiError) as limited:
        web.chat_postMessage(channel="#alerts", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "3"
    with pytest.raises(SlackApiError) as down:
        web.auth_test()
    assert down.value.response.status_code == 503
    assert web.chat_postMessage(channel="#alerts", text="x")["ok"]
    assert requests.delete(f"{standin.url}/stand-in/faults", timeout=5).ok
    bad = requests.post(f"{standin.url}/stand-in/faults", json={"status": 404}, timeout=5)
    assert bad.status_code == 400


def test_the_factory_defaults_and_reset() -> None:
    app = create_app()
    http = app.test_client()
    headers = {"Authorization": "Bearer xoxb-standin"}
    listed = http.get("/api/conversations.list", headers=headers).get_json()
    assert [c["name"] for c in listed["channels"]] == [
        "alerts",
        "oncall",
        "tickets",
        "controlplane",
    ]
    empty = http.post("/api/chat.postMessage", data={"channel": "#alerts"}, headers=headers)
    assert empty.get_json() == {"ok": False, "error": "no_text"}
    http.post("/api/chat.postMessage", json={"channel": "#alerts", "text": "x"}, headers=headers)
    assert len(http.get("/stand-in/messages").get_json()["messages"]) == 1
    http.post("/stand-in/reset")
    assert http.get("/stand-in/messages").get_json()["messages"] == []


def test_it_runs_as_a_process_on_localhost(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "controlplane.slack.standin", "--port", str(port)]
    with (tmp_path / "standin.log").open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--token", TOKEN], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = WebClient(
                    token=TOKEN, base_url=f"http://127.0.0.1:{port}/api/"
                ).auth_test()
                break
            except OSError:
                assert time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.1)
        assert answer["ok"]
    finally:
        stop_process(proc)
