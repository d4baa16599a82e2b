"""A notification as decided (`Message`, `Decision`: what the dispatcher hands the outbox, in
JSON there), and what the notifiers that write text share: Alertmanager's default texts and
Retry-After.

`subject` is Alertmanager's `__subject` template (email subjects, PagerDuty summaries),
`alert_list` its `__text_alert_list`, so a page reads the same from either. Notifiers import
this; it imports no notifier, so each notifier module stays a leaf.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey, common
from controlplane.notify.nflog import LogLine, utc


def subject(group_key: GroupKey, alerts: Sequence[Alert], status: AlertStatus) -> str:
    """`[FIRING:2] GroupValues (other common label values)`, as Alertmanager's `__subject`."""
    firing = sum(1 for a in alerts if a.notified_status is AlertStatus.FIRING)
    head = f"[{status.value.upper()}:{firing}]" if status is AlertStatus.FIRING else "[RESOLVED]"
    group = dict(group_key.labels)
    values = " ".join(v for _, v in sorted(group.items()))
    shared = common([a.labels for a in alerts])
    rest = [v for k, v in sorted(shared.items()) if k not in group]
    tail = f" ({' '.join(rest)})" if len(shared) > len(group) else ""
    return f"{head} {values}{tail}"


def alert_list(alerts: Sequence[Alert]) -> str:
    """Alertmanager's `__text_alert_list`: labels, annotations and source of each alert."""
    out: list[str] = []
    for alert in alerts:
        out.append("Labels:\n")
        out.extend(f" - {k} = {v}\n" for k, v in sorted(alert.labels))
        out.append("Annotations:\n")
        out.extend(f" - {k} = {v}\n" for k, v in sorted(alert.annotations))
        out.append(f"Source: {alert.generator_url}\n")
    return "".join(out)


def split(alerts: Sequence[Alert]) -> tuple[list[Alert], list[Alert]]:
    """(firing, resolved), each in the notification's order."""
    firing = [a for a in alerts if a.notified_status is AlertStatus.FIRING]
    return firing, [a for a in alerts if a.notified_status is AlertStatus.RESOLVED]


def text_body(
    group_key: GroupKey, alerts: Sequence[Alert], status: AlertStatus, external_url: str
) -> str:
    firing, resolved = split(alerts)
    parts = [subject(group_key, alerts, status), ""]
    for title, some in (("Firing", firing), ("Resolved", resolved)):
        if some:
            parts += [f"{title} alerts ({len(some)}):", alert_list(some)]
    if external_url:
        parts.append(f"Sent by {external_url}")
    return "\n".join(parts)


def html_body(
    group_key: GroupKey, alerts: Sequence[Alert], status: AlertStatus, external_url: str
) -> str:
    """A plain HTML rendering of the same content; every value escaped."""
    firing, resolved = split(alerts)
    parts = [f"<html><body><h2>{html.escape(subject(group_key, alerts, status))}</h2>"]
    for title, some in (("Firing", firing), ("Resolved", resolved)):
        if not some:
            continue
        parts.append(f"<h3>{title} alerts ({len(some)})</h3>")
        for alert in some:
            rows = [*sorted(alert.labels), *sorted(alert.annotations)]
            cells = "".join(
                f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows
            )
            link = html.escape(alert.generator_url, quote=True)
            parts.append(f'<table>{cells}</table><p><a href="{link}">Source</a></p>')
    if external_url:
        parts.append(f"<p>Sent by {html.escape(external_url)}</p>")
    parts.append("</body></html>")
    return "".join(parts)


def retry_after_seconds(value: str | None, *, default: float, now: datetime | None = None) -> float:
    """An HTTP Retry-After header (seconds, or an HTTP date) as seconds from now; `default`
    when absent or unreadable (a 429 without it still means "wait")."""
    if not value:
        return default
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, kw_only=True)
class Message:
    """What one integration of one receiver is to be told."""

    receiver: str
    integration: str
    group_key: GroupKey
    alerts: tuple[Alert, ...]
    status: AlertStatus
    pace_key: str | None = None  # None: not paced


@dataclass(frozen=True, kw_only=True)
class Decision:
    """One line of the notification log, and the message it decided (None: the log changes,
    nothing is sent, e.g. a resolution for an integration without send_resolved)."""

    line: LogLine
    message: Message | None


def alert_to_json(alert: Alert) -> dict[str, Any]:
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": utc(alert.starts_at).isoformat(),
        "endsAt": None if alert.ends_at is None else utc(alert.ends_at).isoformat(),
        "generatorURL": alert.generator_url,
    }


def alert_from_json(data: Mapping[str, Any]) -> Alert:
    ends = data.get("endsAt")
    return Alert.of(
        data["labels"],
        starts_at=datetime.fromisoformat(data["startsAt"]),
        ends_at=None if ends is None else datetime.fromisoformat(ends),
        annotations=data.get("annotations") or {},
        generator_url=data.get("generatorURL") or "",
    )
