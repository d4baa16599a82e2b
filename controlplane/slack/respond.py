"""After the acknowledgement: a small bounded worker does the work, and the answer goes back
through the interaction's `response_url`, or the Web API when there is none.

Slack shows an error unless a request is answered within three seconds, so the endpoints answer
at once and hand the work to `Worker`; a full queue is said so at once rather than waited on.
A `response_url` comes from the request body: it is followed only to Slack's own hosts
(hooks.slack.com over HTTPS, or the configured Web API's scheme and host, which is the
stand-in's in the demo and the tests), never wherever a body points.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)
SLACK_HOOKS = "hooks.slack.com"


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where an interaction came from, to answer it there."""

    slack_user: str
    response_url: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    message_text: str = ""


@dataclass(frozen=True, kw_only=True)
class Reply:
    text: str  # shown only to the person who clicked or typed
    replace_blocks: Sequence[dict[str, Any]] | None = None  # the message, rewritten for all


class Responder:
    def __init__(
        self,
        *,
        api_url: str,
        bot_token: str | None = None,
        session: requests.Session | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        api = urlsplit(api_url)
        self._api = (api.scheme, api.netloc)
        self._session = session or requests.Session()
        self._timeout = timeout_s
        self._web = WebClient(token=bot_token, base_url=api_url) if bot_token else None

    def allowed(self, url: str | None) -> bool:
        if not url:
            return False
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname == SLACK_HOOKS and not parts.port:
            return True
        return (parts.scheme, parts.netloc) == self._api

    def send(self, target: Target, reply: Reply) -> None:
        """Best effort: an answer that cannot be delivered is logged, never raised (the work
        it reports is done and audited either way)."""
        try:
            self._ephemeral(target, reply.text)
            if reply.replace_blocks is not None:
                self._replace(target, reply.replace_blocks)
        except (requests.RequestException, SlackApiError) as exc:
            log.warning("cannot answer Slack user %s: %s", target.slack_user, exc)

    def _ephemeral(self, target: Target, text: str) -> None:
        if self.allowed(target.response_url):
            body = {"response_type": "ephemeral", "replace_original": False, "text": text}
            self._post(str(target.response_url), body)
        elif self._web is not None and target.channel:
            self._web.chat_postEphemeral(channel=target.channel, user=target.slack_user, text=text)
        else:
            log.warning("no way to answer Slack user %s: %s", target.slack_user, text)

    def _replace(self, target: Target, blocks: Sequence[dict[str, Any]]) -> None:
        text = target.message_text or "updated"
        if self.allowed(target.response_url):
            body = {"replace_original": True, "text": text, "blocks": list(blocks)}
            self._post(str(target.response_url), body)
        elif self._web is not None and target.channel and target.message_ts:
            self._web.chat_update(
                channel=target.channel, ts=target.message_ts, text=text, blocks=list(blocks)
            )

    def _post(self, url: str, body: dict[str, Any]) -> None:
        response = self._session.post(url, json=body, timeout=self._timeout, allow_redirects=False)
        if response.status_code >= 300:
            log.warning("response_url answered %s: %s", response.status_code, response.text[:200])


class Worker:
    """A few threads over a bounded queue: Slack's requests are answered at once and done
    here. `submit` is False when the queue is full: the caller says so to the person."""

    def __init__(self, *, threads: int = 2, capacity: int = 64, name: str = "slack") -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=capacity)
        self._threads_wanted, self._name = threads, name
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> bool:
        self._start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every submitted job is done (tests, and a graceful stop)."""
        deadline = time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def close(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=5)

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._threads_wanted:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # one bad job must not end the worker
                log.exception("Slack job failed")
            finally:
                self._queue.task_done()
