"""One Slack message per alert group: the real slack_sdk WebClient against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.receivers import SlackConfig
from controlplane.notify.slack import (
    SlackError,
    SlackNotifier,
    StoredMessage,
    Unconfigured,
    build_notifier,
    web_client,
)
from controlplane.notify.slack_blocks import MessageView
from tests.conftest import free_port
from tests.controlplane.slack.standin_helpers import (
    KEY,
    T0,
    TOKEN,
    Standin,
    alert,
    messages_on,
    notifier,
    send,
    served_standin,
)


@pytest.fixture
def standin() -> Iterator[Standin]:
    yield from served_standin()


def header(message: dict[str, Any]) -> str:
    return str(message["blocks"][0]["text"]["text"])


def test_first_posts_then_edits_the_same_message_until_resolved(
    standin: Standin, tmp_path: Path
) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    slack = notifier(standin, messages)
    send(slack, [alert("pgsoft")])
    [posted] = standin.messages()
    assert posted["channel_name"] == "alerts" and "[FIRING:1] ProviderDown" in header(posted)

    send(slack, [alert("pgsoft"), alert("evolution")])  # an alert joins the group
    ended = T0 + timedelta(minutes=9)
    send(slack, [alert("pgsoft", ends_at=ended), alert("evolution", ends_at=ended)])

    [message] = standin.messages()
    assert message["ts"] == posted["ts"]
    assert [u["text"].split(": ")[0] for u in message["updates"]] == [
        "[FIRING:2] ProviderDown (region=eu)",
        "[RESOLVED] ProviderDown (region=eu)",
    ]
    assert "RESOLVED" in header(message) and ":white_check_mark:" in header(message)
    assert standin.calls() == ["chat.postMessage", "chat.update", "chat.update"]


def test_a_restart_edits_the_message_it_posted_before(standin: Standin, tmp_path: Path) -> None:
    before, engine = messages_on(tmp_path / "cp.db")
    send(notifier(standin, before), [alert("pgsoft")])
    engine.dispose()  # the process ends; a new one opens the same database

    after, _ = messages_on(tmp_path / "cp.db")
    send(notifier(standin, after), [alert("pgsoft"), alert("evolution")])

    [message] = standin.messages()
    assert len(message["updates"]) == 1 and "FIRING:2" in message["text"]
    stored = after.get(str(KEY), "oncall", "#alerts")
    assert stored is not None and stored.ts == message["ts"]
    assert stored.channel == message["channel"]  # the id Slack answered, not "#alerts"
    assert stored.fingerprints == {alert("pgsoft").fingerprint, alert("evolution").fingerprint}


def test_firing_again_after_resolving_is_a_new_message(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    slack = notifier(standin, messages)
    send(slack, [alert("pgsoft")])
    send(slack, [alert("pgsoft", ends_at=T0 + timedelta(minutes=5))])
    send(slack, [alert("pgsoft")])
    first, second = standin.messages()
    assert len(first["updates"]) == 1 and second["updates"] == []
    assert "FIRING" in second["text"]


def test_a_message_that_cannot_be_edited_is_posted_anew(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    slack = notifier(standin, messages)
    send(slack, [alert("pgsoft")])
    [posted] = standin.messages()
    gone = StoredMessage(
        channel=posted["channel"],
        ts="1.000001",  # deleted in Slack meanwhile
        status="firing",
        fingerprints=frozenset({alert("pgsoft").fingerprint}),
        started_at=T0.timestamp(),
    )
    messages.save(str(KEY), "oncall", "#alerts", gone)
    send(slack, [alert("pgsoft"), alert("evolution")])
    assert len(standin.messages()) == 2
    stored = messages.get(str(KEY), "oncall", "#alerts")
    assert stored is not None and stored.ts == standin.messages()[1]["ts"]


def test_a_429_is_retry_after_the_seconds_slack_asked(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    standin.fault(429, retry_after=7, methods=["chat.postMessage"])
    with pytest.raises(RetryAfter) as caught:
        send(notifier(standin, messages), [alert("pgsoft")])
    assert caught.value.seconds == 7.0 and caught.value.retryable
    assert messages.get(str(KEY), "oncall", "#alerts") is None
    send(notifier(standin, messages), [alert("pgsoft")])  # the retry posts it
    assert len(standin.messages()) == 1


def test_a_5xx_on_an_edit_is_worth_retrying(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    slack = notifier(standin, messages)
    send(slack, [alert("pgsoft")])
    standin.fault(500, methods=["chat.update"])
    with pytest.raises(NotifyError) as caught:
        send(slack, [alert("pgsoft"), alert("evolution")])
    assert caught.value.retryable and not isinstance(caught.value, RetryAfter)
    send(slack, [alert("pgsoft"), alert("evolution")])
    [message] = standin.messages()  # retried as an edit, never a second post
    assert len(message["updates"]) == 1


def test_a_bad_token_is_not_worth_retrying(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    with pytest.raises(SlackError) as caught:
        send(notifier(standin, messages, token="xoxb-wrong"), [alert("pgsoft")])
    assert caught.value.code == "invalid_auth" and not caught.value.retryable


def test_an_unknown_channel_is_not_worth_retrying(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    with pytest.raises(SlackError) as caught:
        send(notifier(standin, messages, channel="#nowhere"), [alert("pgsoft")])
    assert caught.value.code == "channel_not_found" and not caught.value.retryable


def test_slack_out_of_reach_is_worth_retrying(tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    slack = SlackNotifier(
        config=SlackConfig(channel="#alerts"),
        client=web_client(f"http://127.0.0.1:{free_port()}/api/", TOKEN, timeout_s=2),
        messages=messages,
    )
    with pytest.raises(NotifyError) as caught:
        send(slack, [alert("pgsoft")])
    assert caught.value.retryable


def test_paced_by_channel_and_buttons_from_the_hook(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    seen: list[MessageView] = []

    def buttons(view: MessageView) -> list[dict[str, Any]]:
        seen.append(view)
        return [
            {"type": "button", "action_id": "cp:ack", "text": {"type": "plain_text", "text": "Ack"}}
        ]

    slack = SlackNotifier(
        config=SlackConfig(channel="#alerts"),
        client=web_client(standin.api_url, TOKEN),
        messages=messages,
        actions=buttons,
    )
    assert slack.pace_key() == "slack #alerts"
    send(slack, [alert("pgsoft")])
    [message] = standin.messages()
    assert message["blocks"][-1]["type"] == "actions"
    assert seen[0].key == KEY and [a.fingerprint for a in seen[0].alerts] == [
        alert("pgsoft").fingerprint
    ]


def test_failing_buttons_leave_a_message_without_them(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")

    def broken(view: MessageView) -> list[dict[str, Any]]:
        raise RuntimeError("signer down")

    slack = SlackNotifier(
        config=SlackConfig(channel="#alerts"),
        client=web_client(standin.api_url, TOKEN),
        messages=messages,
        actions=broken,
    )
    send(slack, [alert("pgsoft")])
    [message] = standin.messages()
    assert all(b["type"] != "actions" for b in message["blocks"])


def test_without_a_token_every_notification_fails_for_good() -> None:
    built = build_notifier(SlackConfig(channel="#alerts"), None)
    assert isinstance(built, Unconfigured)
    with pytest.raises(NotifyError, match="no Slack bot token") as caught:
        send(built, [alert("pgsoft")])  # type: ignore[arg-type]
    assert not caught.value.retryable
