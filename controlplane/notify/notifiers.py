"""Notifiers: where a group's notification goes. The dispatcher decides when; these only send.

`Notifier.notify(group_key, receiver, alerts, status)` sends one notification or raises
NotifyError (with `retryable`; RetryAfter when the receiver asks to wait), which the outbox's
sender (sender.py) retries with backoff. `alerts` are as of the flush: a firing alert has
`ends_at=None`, a resolved one carries its end. It is called from a sender thread, never from
the dispatcher's tick, and may be called again for a notification the receiver already
accepted (outbox.py says when), so a notifier that can make that harmless should.

A notifier may have `pace_key()` (or `pace_key(group_key, receiver)`): the sender sends at
most about one message a second per key (a Slack channel, a webhook URL). None: not paced.
Without the method, the integration is paced on its own.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import requests

from controlplane.notify.alerts import (
    Alert,
    AlertStatus,
    GroupKey,
    common,
    format_time,
    group_status,
)
from controlplane.notify.email import EmailNotifier
from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.message import retry_after_seconds
from controlplane.notify.pagerduty import PagerDutyNotifier
from controlplane.notify.receivers import (
    EmailConfig,
    IntegrationConfig,
    LogConfig,
    PagerDutyConfig,
    ReceiverConfig,
    SlackConfig,
    WebhookConfig,
)
from controlplane.notify.slack import SlackContext, build_notifier

_GO_REGEX_META = set("\\.+*?()|[]{}^$")
USER_AGENT = "casino-controlplane-notify/1"


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Delay before retry n (1-based): initial * factor**(n-1), at most `maximum`."""

    initial: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    maximum: timedelta = timedelta(seconds=60)

    def delay(self, attempt: int) -> timedelta:
        return min(self.initial * self.factor ** (attempt - 1), self.maximum)


class Notifier(Protocol):
    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Integration:
    """One configured sender of a receiver; `name` (e.g. `webhook[0]`) keys its notify log."""

    name: str
    notifier: Notifier
    send_resolved: bool = True


def pace_key(integration: Integration, group_key: GroupKey, receiver: str) -> str | None:
    """What the sender paces this integration's messages by (see the module's docstring)."""
    method = getattr(integration.notifier, "pace_key", None)
    if method is None:
        return f"{receiver}/{integration.name}"
    try:
        takes_args = len(inspect.signature(method).parameters) >= 2
        key = method(group_key, receiver) if takes_args else method()
    except Exception:  # the notifier boundary: pace it on its own rather than not notify
        logging.getLogger(__name__).exception("pace_key of %s failed", integration.name)
        return f"{receiver}/{integration.name}"
    return None if key is None else str(key)


def _quote_meta(text: str) -> str:
    # Alertmanager's template data runs the receiver name through Go's regexp.QuoteMeta
    return "".join("\\" + ch if ch in _GO_REGEX_META else ch for ch in text)


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "status": alert.notified_status.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(alert.ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def webhook_payload(
    *,
    group_key: GroupKey,
    receiver: str,
    alerts: Sequence[Alert],
    external_url: str = "",
    max_alerts: int = 0,
) -> dict[str, Any]:
    """Alertmanager's webhook message, version 4. As there, `max_alerts` truncates first and
    the status and common labels describe the alerts that are sent."""
    sent = list(alerts[:max_alerts]) if max_alerts else list(alerts)
    return {
        "version": "4",
        "groupKey": str(group_key),
        "truncatedAlerts": len(alerts) - len(sent),
        "status": group_status(sent).value,
        "receiver": _quote_meta(receiver),
        "groupLabels": dict(group_key.labels),
        "commonLabels": common([a.labels for a in sent]),
        "commonAnnotations": common([a.annotations for a in sent]),
        "externalURL": external_url,
        "alerts": [alert_json(a) for a in sent],
    }


class WebhookNotifier:
    """POSTs the version 4 JSON. 2xx is delivered; 5xx, 429 and network errors are worth
    retrying; other statuses are not (the receiver refuses this message)."""

    def __init__(
        self,
        *,
        url: str,
        session: requests.Session,
        external_url: str = "",
        max_alerts: int = 0,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._session = session
        self._external_url = external_url
        self._max_alerts = max_alerts
        self._timeout = timeout_s

    def pace_key(self) -> str:
        return f"webhook {self.url}"

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        payload = webhook_payload(
            group_key=group_key,
            receiver=receiver,
            alerts=alerts,
            external_url=self._external_url,
            max_alerts=self._max_alerts,
        )
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        try:
            response = self._session.post(
                self.url, data=json.dumps(payload), headers=headers, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise NotifyError(f"webhook {self.url!r}: {exc}", retryable=True) from exc
        with response:
            code = response.status_code
            if 200 <= code < 300:
                return
            excerpt = response.text[:200]
            wait = response.headers.get("Retry-After")
        if code == 429:
            # without Retry-After, wait one pace slot and let the backoff do the rest
            seconds = retry_after_seconds(wait, default=1.0)
            raise RetryAfter(f"webhook {self.url!r} answered 429: {excerpt!r}", seconds=seconds)
        raise NotifyError(
            f"webhook {self.url!r} answered {code}: {excerpt!r}", retryable=code >= 500
        )


class LogNotifier:
    """One log line per notification: the receiver of last resort, and the demo's default."""

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("controlplane.notify.log")

    def pace_key(self) -> None:
        return None  # a log line has nobody to overwhelm

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        level = logging.WARNING if status is AlertStatus.FIRING else logging.INFO
        names = sorted({dict(a.labels).get("alertname", "?") for a in alerts})
        self._log.log(
            level,
            "notification receiver=%s status=%s alerts=%d group=%s names=%s",
            receiver,
            status.value,
            len(alerts),
            group_key,
            ",".join(names),
        )


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    session: requests.Session
    external_url: str = ""
    logger: logging.Logger | None = None
    slack: SlackContext | None = None  # the Web API client and message store; None: no token


NotifierFactory = Callable[[IntegrationConfig, BuildContext], Notifier]


def _webhook(config: IntegrationConfig, ctx: BuildContext) -> Notifier:
    assert isinstance(config, WebhookConfig)
    return WebhookNotifier(
        url=config.url,
        session=ctx.session,
        external_url=ctx.external_url,
        max_alerts=config.max_alerts,
        timeout_s=config.timeout_s,
    )


def _log(config: IntegrationConfig, ctx: BuildContext) -> Notifier:
    assert isinstance(config, LogConfig)
    return LogNotifier(logger=ctx.logger)


def _pagerduty(config: IntegrationConfig, ctx: BuildContext) -> Notifier:
    assert isinstance(config, PagerDutyConfig)
    return PagerDutyNotifier(config, session=ctx.session, external_url=ctx.external_url)


def _email(config: IntegrationConfig, ctx: BuildContext) -> Notifier:
    assert isinstance(config, EmailConfig)
    return EmailNotifier(config, external_url=ctx.external_url)


def _slack(config: IntegrationConfig, ctx: BuildContext) -> Notifier:
    assert isinstance(config, SlackConfig)
    return build_notifier(config, ctx.slack, external_url=ctx.external_url)


FACTORIES: Mapping[str, NotifierFactory] = {
    "webhook": _webhook,
    "log": _log,
    "pagerduty": _pagerduty,
    "email": _email,
    "slack": _slack,
}


def build_integrations(
    receivers: Mapping[str, ReceiverConfig],
    ctx: BuildContext,
    factories: Mapping[str, NotifierFactory] = FACTORIES,
) -> dict[str, tuple[Integration, ...]]:
    """Receiver name -> its senders, built from `RoutingConfig.receivers`."""
    out: dict[str, tuple[Integration, ...]] = {}
    for name, receiver in receivers.items():
        built = []
        counts: dict[str, int] = {}
        for config in receiver.integrations:
            index = counts.get(config.kind, 0)
            counts[config.kind] = index + 1
            notifier = factories[config.kind](config, ctx)
            built.append(
                Integration(
                    name=f"{config.kind}[{index}]",
                    notifier=notifier,
                    send_resolved=config.send_resolved,
                )
            )
        out[name] = tuple(built)
    return out
