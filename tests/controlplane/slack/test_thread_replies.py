"""Runbook progress lands in the thread of its alert's group message, off the runbook's thread."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from controlplane.notify.slack import SlackMessages, web_client
from controlplane.notify.slack_threads import SlackThreads, fan_out
from tests.controlplane.slack.standin_helpers import (
    TOKEN,
    Standin,
    alert,
    messages_on,
    notifier,
    send,
    served_standin,
)

PGSOFT = alert("pgsoft").fingerprint


@pytest.fixture
def standin() -> Iterator[Standin]:
    yield from served_standin()


def by_fingerprint(context: Mapping[str, Any]) -> str | None:
    fp = context.get("fingerprint")
    return str(fp) if fp else None


def threads_for(standin: Standin, messages: SlackMessages, **more: Any) -> SlackThreads:
    return SlackThreads(
        web_client(standin.api_url, TOKEN),
        messages,
        alert_of=by_fingerprint,
        external_url="http://cp.example:8000",
        **more,
    )


def replies(standin: Standin) -> list[dict[str, Any]]:
    return [m for m in standin.messages() if m["thread_ts"]]


def test_a_follow_up_is_a_reply_in_the_groups_thread(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    send(notifier(standin, messages), [alert("pgsoft"), alert("evolution")])
    threads = threads_for(standin, messages)
    threads.notify(
        "info",
        "runbook isolate on eu/pgsoft: running",
        {"fingerprint": PGSOFT, "execution_id": "ex1"},
    )
    assert threads.drain() == 0
    [group, reply] = standin.messages()
    assert reply["thread_ts"] == group["ts"] and reply["channel"] == group["channel"]
    assert reply["text"] == "runbook isolate on eu/pgsoft: running"
    assert reply["blocks"][1]["elements"][0]["text"] == (
        "<http://cp.example:8000/dash/executions/ex1|execution ex1>"
    )


def test_follow_ups_wait_for_their_message_and_keep_their_order(
    standin: Standin, tmp_path: Path
) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    threads = threads_for(standin, messages)
    for step in ("running", "steps step isolate done", "succeeded"):
        threads.notify("info", step, {"fingerprint": PGSOFT})
    assert threads.drain() == 3  # the runbook started within group_wait: no message yet
    send(notifier(standin, messages), [alert("pgsoft")])
    assert threads.drain() == 0
    assert [r["text"] for r in replies(standin)] == [
        "running",
        "steps step isolate done",
        "succeeded",
    ]


def test_what_no_alert_triggered_or_no_message_shows_is_dropped(
    standin: Standin, tmp_path: Path
) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    threads = threads_for(standin, messages, wait_s=0.0)
    threads.notify("info", "manual run", {})
    threads.notify("info", "never shown", {"fingerprint": PGSOFT})
    assert threads.drain() == 0
    assert standin.messages() == []


def test_a_refusal_streak_is_told_once(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    send(notifier(standin, messages), [alert("pgsoft")])
    threads = threads_for(standin, messages)
    for state in ("refused", "refused", "refused", "running", "refused"):
        threads.notify("warning", f"isolate: {state}", {"fingerprint": PGSOFT, "state": state})
    threads.drain()
    assert [r["text"] for r in replies(standin)] == [
        "isolate: refused",
        "isolate: running",
        "isolate: refused",
    ]


def test_a_failing_slack_is_retried_then_given_up(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    send(notifier(standin, messages), [alert("pgsoft")])
    threads = threads_for(standin, messages, attempts=2)
    standin.fault(500, count=3, methods=["chat.postMessage"])
    threads.notify("info", "first", {"fingerprint": PGSOFT})
    assert threads.drain() == 1  # tried once, kept
    assert threads.drain() == 0  # tried twice: given up
    threads.notify("info", "second", {"fingerprint": PGSOFT})
    threads.drain()  # the third fault
    threads.drain()
    assert [r["text"] for r in replies(standin)] == ["second"]


def test_the_worker_posts_without_blocking_the_caller(standin: Standin, tmp_path: Path) -> None:
    messages, _ = messages_on(tmp_path / "cp.db")
    send(notifier(standin, messages), [alert("pgsoft")])
    threads = threads_for(standin, messages, poll_s=0.05)
    threads.start()
    try:
        threads.notify("info", "running", {"fingerprint": PGSOFT})
        deadline = time.monotonic() + 10
        while not replies(standin):
            assert time.monotonic() < deadline, "the reply never came"
            time.sleep(0.02)
    finally:
        threads.stop()
    assert [r["text"] for r in replies(standin)] == ["running"]


def test_fan_out_tells_everyone_whatever_one_does() -> None:
    heard: list[str] = []

    def broken(severity: str, message: str, context: Mapping[str, Any]) -> None:
        raise RuntimeError("down")

    notify = fan_out(broken, lambda s, m, c: heard.append(m))
    notify("info", "hello", {})
    assert heard == ["hello"]
