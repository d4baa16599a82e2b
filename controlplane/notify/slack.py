"""Slack: ONE message per alert group and channel, posted once and edited in place after.

    client = web_client(config.slack.api_url, config.slack.bot_token)
    notifier = SlackNotifier(config=slack_config, client=client, messages=SlackMessages(engine))
    threads = SlackThreads(client, messages, alert_of=...)    # runbook progress (slack_threads.py)

The first notification of a group posts it (chat.postMessage); every later one (alerts joining,
resolving, or leaving it once silenced) edits it (chat.update). The channel id and `ts` Slack
answered are kept in `slack_messages` (migration 0005), keyed by the group key, the receiver and
the channel as configured, with the fingerprints of every alert the message has shown, so a
restart or another replica edits the same message and a runbook's follow-ups find its thread.
A group that fires again after it resolved gets a new message: people are told of a new
incident by a post (which notifies), never by an edit (which does not).

Errors: Slack's 429 is RetryAfter (its Retry-After seconds); 5xx, Slack's transient errors and
network errors are retryable NotifyErrors; other refusals (invalid_auth, channel_not_found...)
are not. The client has no retry handler of its own: whoever calls `notify` retries, paced per
channel (`pace_key`), so no call sleeps inside the SDK.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any

import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.message import retry_after_seconds
from controlplane.notify.receivers import SlackConfig
from controlplane.notify.slack_blocks import Actions, Automation, MessageView, render

log = logging.getLogger(__name__)

# Slack's own "try again later" answers, given with HTTP 200 and ok=false
TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# an edit that cannot be made: the message (or its channel) is gone, or too old to edit
REPOST = frozenset(
    {"message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found"}
)
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without the header: Slack's per-channel pace, one a second
RETENTION_S = 30 * 86400.0  # a message not edited for this long is forgotten
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")

metadata = sa.MetaData()

slack_messages = sa.Table(
    "slack_messages",
    metadata,
    # sha256 of (group key, receiver, channel as configured): group keys can be long
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("receiver", sa.String(200), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),  # the channel as configured
    sa.Column("channel", sa.String(64), nullable=False),  # its id, as Slack answered
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fingerprints", sa.Text, nullable=False),  # JSON list: every alert it has shown
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False, index=True),
)

AutomationOf = Callable[[Sequence[Alert]], Automation | None]
"""The automation state of a group's alerts (the kill switch, their executions), if wired."""


class SlackError(NotifyError):
    """Slack refused a call; `code` is its error (`channel_not_found`), `status` the HTTP one."""

    def __init__(self, message: str, *, code: str, status: int, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.code, self.status = code, status


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    channel: str
    ts: str
    status: str
    fingerprints: frozenset[str]
    started_at: float


@dataclass(frozen=True, kw_only=True)
class SlackContext:
    """What building a Slack integration needs beyond its config (notifiers.BuildContext)."""

    client: WebClient
    messages: SlackMessages
    actions: Actions | None = None
    automation: AutomationOf | None = None


def web_client(api_url: str, token: str, *, timeout_s: int = 10) -> WebClient:
    return WebClient(token=token, base_url=api_url, timeout=timeout_s, retry_handlers=[])


def call(method: str, send: Callable[[], SlackResponse]) -> SlackResponse:
    """One Web API call, its failures as NotifyErrors that say whether to try again."""
    try:
        return send()
    except SlackApiError as exc:
        raise api_error(method, exc) from exc
    except (SlackClientError, OSError, HTTPException) as exc:  # refused, reset, timed out
        raise NotifyError(f"slack {method}: {type(exc).__name__}: {exc}", retryable=True) from exc


def api_error(method: str, exc: SlackApiError) -> NotifyError:
    response = exc.response
    status = int(response.status_code)
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"http_{status}")
    where = f"slack {method} answered {status} {code[:200]}"
    if status == 429 or code == "ratelimited":
        return RetryAfter(where, seconds=retry_after(response.headers))
    retryable = status >= 500 or code in TRANSIENT
    return SlackError(where, code=code, status=status, retryable=retryable)


def retry_after(headers: Mapping[str, Any]) -> float:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    raw = value[0] if isinstance(value, list) and value else value
    return retry_after_seconds(None if raw is None else str(raw), default=DEFAULT_RETRY_AFTER_S)


def message_id(group_key: str, receiver: str, target: str) -> str:
    return hashlib.sha256("\x00".join((group_key, receiver, target)).encode()).hexdigest()


class SlackMessages:
    """Where each group's message is: one row per (group key, receiver, channel)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine, self._clock = engine, clock

    def create_tables(self) -> None:
        """For runs without the Alembic migrations (tests)."""
        metadata.create_all(self._engine)

    def get(self, group_key: str, receiver: str, target: str) -> StoredMessage | None:
        query = sa.select(slack_messages).where(
            slack_messages.c.id == message_id(group_key, receiver, target)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return StoredMessage(
            channel=row["channel"],
            ts=row["ts"],
            status=row["status"],
            fingerprints=frozenset(json.loads(row["fingerprints"])),
            started_at=row["started_at"],
        )

    def save(self, group_key: str, receiver: str, target: str, message: StoredMessage) -> None:
        now = self._clock()
        key = message_id(group_key, receiver, target)
        values = dict(
            channel=message.channel,
            ts=message.ts,
            status=message.status,
            fingerprints=json.dumps(sorted(message.fingerprints)),
            started_at=message.started_at,
            updated_at=now,
        )
        update = sa.update(slack_messages).where(slack_messages.c.id == key).values(**values)
        with self._engine.begin() as conn:
            if conn.execute(update).rowcount:
                return
        row = dict(values, id=key, group_key=group_key, receiver=receiver, target=target)
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(slack_messages).values(**row, created_at=now))
        except IntegrityError:  # another replica saved it meanwhile: ours is as new
            with self._engine.begin() as conn:
                conn.execute(update)

    def threads_of(self, fingerprint: str) -> list[tuple[str, str]]:
        """(channel id, ts) of the messages that have shown this alert, newest first."""
        if not _FINGERPRINT.fullmatch(fingerprint):
            return []  # ours are 16 hex digits: nothing else can be in the JSON list
        query = (
            sa.select(slack_messages.c.channel, slack_messages.c.ts)
            .where(slack_messages.c.fingerprints.like(f'%"{fingerprint}"%'))
            .order_by(slack_messages.c.updated_at.desc())
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return list(dict.fromkeys((str(r.channel), str(r.ts)) for r in rows))

    def gc(self, retention_s: float = RETENTION_S) -> int:
        cutoff = self._clock() - retention_s
        with self._engine.begin() as conn:
            done = conn.execute(
                sa.delete(slack_messages).where(slack_messages.c.updated_at < cutoff)
            )
        return int(done.rowcount or 0)


class SlackNotifier:
    """The Notifier of one `slack_configs` entry."""

    def __init__(
        self,
        *,
        config: SlackConfig,
        client: WebClient,
        messages: SlackMessages,
        external_url: str = "",
        actions: Actions | None = None,
        automation: AutomationOf | None = None,
    ) -> None:
        self._config, self._client, self._messages = config, client, messages
        self._external_url = external_url
        self._actions, self._automation = actions, automation

    def pace_key(self) -> str:
        """Slack allows about one post a second per channel: the sender paces by it."""
        return f"slack {self._config.channel}"

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        key, target = str(group_key), self._config.channel
        stored = self._messages.get(key, receiver, target)
        if stored is not None and stored.status == "resolved" and status is AlertStatus.FIRING:
            stored = None  # fired again after it resolved: a new incident, a new message
        view = self._view(group_key, receiver, alerts, status, stored)
        text, blocks = render(view, self._safe_actions())
        where = self._edit(stored, text, blocks) if stored is not None else None
        if where is None:
            where = self._post(text, blocks)
            stored = None
            self._messages.gc()  # rarely: once per new message
        shown = frozenset(a.fingerprint for a in alerts)
        self._messages.save(
            key,
            receiver,
            target,
            StoredMessage(
                channel=where[0],
                ts=where[1],
                status=status.value,
                fingerprints=shown | (stored.fingerprints if stored else frozenset()),
                started_at=view.started_at.timestamp(),
            ),
        )

    def _view(
        self,
        group_key: GroupKey,
        receiver: str,
        alerts: Sequence[Alert],
        status: AlertStatus,
        stored: StoredMessage | None,
    ) -> MessageView:
        starts = [a.starts_at for a in alerts]
        if stored is not None:
            starts.append(datetime.fromtimestamp(stored.started_at, UTC))
        return MessageView(
            key=group_key,
            receiver=receiver,
            status=status,
            alerts=tuple(alerts),
            started_at=min(starts),
            external_url=self._external_url,
            title=self._config.title,
            text=self._config.text,
            mention=self._config.mention,
            max_alerts=self._config.max_alerts,
            automation=self._automation_of(alerts),
        )

    def _post(self, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        response = call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=self._config.channel,
                text=text,
                blocks=blocks,
                link_names=self._config.link_names,
                unfurl_links=False,
            ),
        )
        return str(response["channel"]), str(response["ts"])

    def _edit(
        self, stored: StoredMessage, text: str, blocks: list[dict[str, Any]]
    ) -> tuple[str, str] | None:
        """Edit the stored message; None when it cannot be edited any more (post anew)."""
        try:
            call(
                "chat.update",
                lambda: self._client.chat_update(
                    channel=stored.channel, ts=stored.ts, text=text, blocks=blocks
                ),
            )
        except SlackError as exc:
            if exc.code not in REPOST:
                raise
            log.warning(
                "slack message %s in %s cannot be edited (%s): posting a new one",
                stored.ts,
                stored.channel,
                exc.code,
            )
            return None
        return stored.channel, stored.ts

    def _safe_actions(self) -> Actions | None:
        hook = self._actions
        if hook is None:
            return None

        def actions(view: MessageView) -> list[dict[str, Any]]:
            try:
                return list(hook(view))
            except Exception:  # the buttons' boundary: a page without buttons beats no page
                log.exception("slack buttons failed for %s", view.key)
                return []

        return actions

    def _automation_of(self, alerts: Sequence[Alert]) -> Automation | None:
        if self._automation is None:
            return None
        try:
            return self._automation(alerts)
        except Exception:  # the database boundary: the message goes out without it
            log.exception("automation state unavailable for the slack message")
            return None


class Unconfigured:
    """A `slack_configs` entry with no bot token: every notification fails, non-retryable,
    so it is logged as an error and counted as failed, and nothing waits on it."""

    def __init__(self, channel: str) -> None:
        self._channel = channel
        log.warning(
            "slack_configs channel %s: no Slack bot token (slack.bot_token or "
            "CONTROLPLANE_SLACK_BOT_TOKEN): its notifications will fail",
            channel,
        )

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        raise NotifyError(
            f"slack {self._channel}: no Slack bot token configured (slack.bot_token)",
            retryable=False,
        )


def build_notifier(
    config: SlackConfig, ctx: SlackContext | None, *, external_url: str = ""
) -> SlackNotifier | Unconfigured:
    if ctx is None:
        return Unconfigured(config.channel)
    return SlackNotifier(
        config=config,
        client=ctx.client,
        messages=ctx.messages,
        external_url=external_url,
        actions=ctx.actions,
        automation=ctx.automation,
    )
