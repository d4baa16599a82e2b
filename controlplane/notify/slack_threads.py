"""Runbook progress as replies in the thread of the Slack message that shows its alert.

    threads = SlackThreads(client, messages, alert_of=execution_alert, external_url=url)
    runbooks' notify = fan_out(log_notification, threads.notify)   # never blocks the runbook
    threads.start() ... threads.stop()

`notify(severity, message, context)` has the runbooks' Notify signature (runbooks/act.py) and
only queues: a worker thread finds the alert that triggered the execution (`alert_of`, from the
context's execution id), the messages that have shown it (`SlackMessages.threads_of`, by
fingerprint), and replies in each thread (chat.postMessage with thread_ts). A runbook usually
starts before its group's message exists (group_wait), so a reply whose message is not posted
yet waits for it, up to `wait_s`, and the replies of one alert keep their order; a refusal
repeated while the alert fires is told once. A 429 pauses the worker for its Retry-After;
other retryable failures are tried `attempts` times. Follow-ups of executions no alert
triggered (manual runs) have no thread and are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from slack_sdk import WebClient

from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.slack import SlackMessages, call
from controlplane.notify.slack_blocks import Block, reply

log = logging.getLogger(__name__)

AlertOf = Callable[[Mapping[str, Any]], str | None]
"""A follow-up's context -> the fingerprint of the alert that triggered its execution."""
ReplyActions = Callable[[Mapping[str, Any]], list[Block]]
"""A follow-up's context -> blocks to add (the Approve and Reject buttons of a pending one)."""


@dataclass(frozen=True, kw_only=True)
class FollowUp:
    severity: str
    message: str
    context: Mapping[str, Any]
    queued_at: float
    fingerprint: str | None = None  # found by the worker, once
    attempts: int = 0


def fan_out(
    *targets: Callable[[str, str, Mapping[str, Any]], None],
) -> Callable[[str, str, Mapping[str, Any]], None]:
    """One Notify that tells every target, each failure its own (logged, never raised)."""

    def notify(severity: str, message: str, context: Mapping[str, Any]) -> None:
        for target in targets:
            try:
                target(severity, message, context)
            except Exception:  # telling people must never fail the runbook
                log.exception("notification %r to %r failed", message, target)

    return notify


class SlackThreads:
    def __init__(
        self,
        client: WebClient,
        messages: SlackMessages,
        *,
        alert_of: AlertOf,
        external_url: str = "",
        reply_actions: ReplyActions | None = None,
        wait_s: float = 600.0,
        attempts: int = 3,
        capacity: int = 1000,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client, self._messages, self._alert_of = client, messages, alert_of
        self._external_url = external_url.rstrip("/")
        self._reply_actions = reply_actions
        self._wait_s, self._attempts, self._poll_s = wait_s, attempts, poll_s
        self._clock = clock
        self._queue: queue.Queue[FollowUp] = queue.Queue(maxsize=capacity)
        self._waiting: list[FollowUp] = []  # the worker's only
        self._last_state: dict[str, str] = {}  # fingerprint -> its last follow-up's state
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, severity: str, message: str, context: Mapping[str, Any]) -> None:
        """Queue a follow-up; a full queue drops it (the log has it) rather than wait."""
        item = FollowUp(
            severity=severity, message=message, context=dict(context), queued_at=self._clock()
        )
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("slack follow-up queue full: %r not posted", message)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="slack-threads", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def drain(self) -> int:
        """Take what is queued and post all that can be posted now; how many still wait.
        The worker's step; tests call it instead of starting the worker."""
        while True:
            try:
                self._waiting.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._waiting = self._post_due(self._waiting)
        return len(self._waiting)

    def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(queue.Empty):  # nothing new: what waits is tried again
                self._waiting.append(self._queue.get(timeout=self._poll_s))
            try:
                self.drain()
            except Exception:  # a database hiccup: what waits is tried again next round
                log.exception("slack follow-ups failed")

    def _post_due(self, items: list[FollowUp]) -> list[FollowUp]:
        """Post in order; keep what cannot be posted yet, and what follows it for its alert."""
        kept: list[FollowUp] = []
        held: set[str] = set()
        for item in items:
            fingerprint = item.fingerprint
            if fingerprint is None:  # a new one: whose alert, and is it news
                fingerprint = self._alert_of(item.context)
                if fingerprint is None or self._repeated_refusal(item, fingerprint):
                    continue  # no alert triggered it (no thread), or already told
                item = replace(item, fingerprint=fingerprint)
            later = item if fingerprint in held else self._try(item, fingerprint)
            if later is None:
                continue
            if self._clock() - later.queued_at < self._wait_s and later.attempts < self._attempts:
                kept.append(later)
                held.add(fingerprint)
            else:
                log.info("slack follow-up %r dropped: no message to reply to", item.message)
        return kept

    def _repeated_refusal(self, item: FollowUp, fingerprint: str) -> bool:
        """A refused runbook is tried again every few seconds while its alert fires: its
        thread hears of the first refusal of a streak only."""
        state = str(item.context.get("state") or "")
        last = self._last_state.get(fingerprint)
        if len(self._last_state) > 10_000:
            self._last_state.clear()
        self._last_state[fingerprint] = state
        return state == "refused" and last == "refused"

    def _try(self, item: FollowUp, fingerprint: str) -> FollowUp | None:
        """Post one follow-up in every thread of its alert: None once done, else what to keep."""
        threads = self._messages.threads_of(fingerprint)
        if not threads:
            return item  # its group's message is not posted yet
        text, blocks = self._content(item)
        for channel, ts in threads:
            try:
                post = self._client.chat_postMessage
                call(
                    "chat.postMessage",
                    partial(post, channel=channel, thread_ts=ts, text=text, blocks=blocks),
                )
            except RetryAfter as exc:
                self._stopping.wait(min(exc.seconds, 60.0))  # Slack asked the worker to wait
                return item
            except NotifyError as exc:
                if exc.retryable:
                    return replace(item, attempts=item.attempts + 1)
                log.warning("slack follow-up %r not posted in %s: %s", item.message, channel, exc)
        return None

    def _content(self, item: FollowUp) -> tuple[str, list[Block]]:
        execution = item.context.get("execution_id")
        link = None
        if execution and self._external_url:
            link = (f"{self._external_url}/dash/executions/{execution}", f"execution {execution}")
        text, blocks = reply(item.severity, item.message, link)
        if self._reply_actions is not None:
            try:
                blocks.extend(self._reply_actions(item.context))
            except Exception:  # the buttons' boundary: the line goes out without them
                log.exception("slack follow-up buttons failed")
        return text, blocks
