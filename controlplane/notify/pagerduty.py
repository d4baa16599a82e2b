"""PagerDuty's Events API v2: a group's firing notification triggers, its resolution resolves.

The dedup_key is the SHA-256 of the group key, as Alertmanager computes it, so every
notification of a group (repeats, updates, retries of one the receiver may already have
accepted) lands on the same PagerDuty alert: a retry after the outbox's unavoidable window
(outbox.py) is harmless here. Answers: 202 delivered; 429 is RetryAfter (Retry-After, else
30 s); 5xx and network errors are retryable; any other 4xx is a refusal (bad key or event).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.message import alert_list, retry_after_seconds, split, subject
from controlplane.notify.receivers import PagerDutyConfig

USER_AGENT = "casino-controlplane-notify/1"
SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries; Alertmanager does the same
RATE_LIMIT_DEFAULT_S = 30.0


def dedup_key(group_key: GroupKey) -> str:
    """Alertmanager's `notify.Key(groupKey).Hash()`."""
    return hashlib.sha256(str(group_key).encode()).hexdigest()


def event(
    config: PagerDutyConfig,
    *,
    routing_key: str,
    group_key: GroupKey,
    alerts: Sequence[Alert],
    status: AlertStatus,
    external_url: str = "",
) -> dict[str, Any]:
    """The Events API v2 body of one notification."""
    base = {"routing_key": routing_key, "dedup_key": dedup_key(group_key)}
    if status is AlertStatus.RESOLVED:
        return {**base, "event_action": "resolve"}
    firing, resolved = split(alerts)
    details: dict[str, Any] = {
        "firing": alert_list(firing),
        "resolved": alert_list(resolved),
        "num_firing": str(len(firing)),
        "num_resolved": str(len(resolved)),
        **config.details,
    }
    summary = config.description or subject(group_key, alerts, status)
    payload = {
        "summary": summary[:SUMMARY_MAX],
        "source": config.source,
        "severity": config.severity,
        "custom_details": details,
    }
    for key, value in (("class", config.class_), ("component", config.component)):
        if value:
            payload[key] = value
    if config.group:
        payload["group"] = config.group
    return {
        **base,
        "event_action": "trigger",
        "payload": payload,
        "client": config.client,
        "client_url": config.client_url or external_url,
    }


class PagerDutyNotifier:
    def __init__(
        self, config: PagerDutyConfig, *, session: requests.Session, external_url: str = ""
    ) -> None:
        self._config = config
        self._session = session
        self._external_url = external_url

    def pace_key(self) -> str:
        # PagerDuty limits each integration key; a file-held key is paced by its path
        key = self._config.routing_key_file or self._config.routing_key
        return f"pagerduty {self._config.url} {key}"

    def notify(
        self, group_key: GroupKey, receiver: str, alerts: Sequence[Alert], status: AlertStatus
    ) -> None:
        body = event(
            self._config,
            routing_key=self._routing_key(),
            group_key=group_key,
            alerts=alerts,
            status=status,
            external_url=self._external_url,
        )
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        url = self._config.url
        try:
            response = self._session.post(
                url, data=json.dumps(body), headers=headers, timeout=self._config.timeout_s
            )
        except requests.RequestException as exc:
            raise NotifyError(f"pagerduty {url!r}: {exc}", retryable=True) from exc
        with response:
            code = response.status_code
            if 200 <= code < 300:
                return
            excerpt = response.text[:200]
            wait = response.headers.get("Retry-After")
        if code == 429:
            seconds = retry_after_seconds(wait, default=RATE_LIMIT_DEFAULT_S)
            raise RetryAfter(f"pagerduty {url!r} answered 429: {excerpt!r}", seconds=seconds)
        raise NotifyError(f"pagerduty {url!r} answered {code}: {excerpt!r}", retryable=code >= 500)

    def _routing_key(self) -> str:
        if self._config.routing_key:
            return self._config.routing_key
        path = self._config.routing_key_file or ""
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            # a missing file is a deployment mistake: no retry fixes it before the next flush
            raise NotifyError(
                f"pagerduty routing_key_file {path!r}: {exc}", retryable=False
            ) from exc
