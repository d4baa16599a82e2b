"""The Alert value as Alertmanager sees it, and the Go renderings its wire formats depend on.

An alert is firing until its `ends_at` has passed; `ends_at=None` means "until told otherwise".
The fingerprint is Alertmanager's (prometheus/common `LabelSet.Fingerprint`: FNV-1a 64 over the
sorted label names and values, each followed by the 0xff separator byte), printed as 16 hex
digits, so fingerprints here and in a real Alertmanager agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property, lru_cache

from controlplane.model.series import Labels, labels_from

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF
# Go's zero time.Time, which Alertmanager writes as the endsAt of a firing alert
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES.update({"\v": "\\v", "\\": "\\\\", '"': '\\"'})


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@lru_cache(maxsize=65536)
def fingerprint(labels: Labels) -> str:
    """Alertmanager's fingerprint of a label set, as the 16 hex digits of its API."""
    h = _FNV_OFFSET
    for name, value in sorted(labels):
        for chunk in (name.encode(), value.encode()):
            for byte in chunk:
                h = ((h ^ byte) * _FNV_PRIME) & _MASK64
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK64
    return f"{h:016x}"


def go_quote(text: str) -> str:
    """Go's strconv.Quote, which Alertmanager uses in group keys and matcher strings."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def label_set_string(labels: Labels) -> str:
    """prometheus/common `LabelSet.String()`: `{a="1", b="2"}`, the tail of a group key."""
    return "{" + ", ".join(f"{name}={go_quote(value)}" for name, value in sorted(labels)) + "}"


def format_time(moment: datetime | None) -> str:
    """RFC 3339 as Go marshals a time.Time (fraction without trailing zeros), always in UTC."""
    if moment is None:
        return GO_ZERO_TIME
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime | None:
    """RFC 3339 with an offset, in UTC; Go's zero time is None. ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or "T" not in text.upper():
        raise ValueError(f"{text!r} is not an RFC 3339 time with an offset")
    moment = moment.astimezone(UTC)
    return None if moment.year <= 1 else moment


def pairs(mapping: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """Annotations as a sorted tuple; unlike labels, an empty value is kept."""
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple(sorted(items))


@dataclass(frozen=True, kw_only=True)
class Alert:
    labels: Labels
    starts_at: datetime
    ends_at: datetime | None = None
    annotations: Labels = ()
    generator_url: str = ""

    @classmethod
    def of(
        cls,
        labels: Mapping[str, str],
        *,
        starts_at: datetime,
        ends_at: datetime | None = None,
        annotations: Mapping[str, str] | None = None,
        generator_url: str = "",
    ) -> Alert:
        return cls(
            labels=labels_from(labels),
            starts_at=starts_at,
            ends_at=ends_at,
            annotations=pairs(annotations or {}),
            generator_url=generator_url,
        )

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def resolved_at(self, now: datetime) -> bool:
        return self.ends_at is not None and self.ends_at <= now

    def status_at(self, now: datetime) -> AlertStatus:
        return AlertStatus.RESOLVED if self.resolved_at(now) else AlertStatus.FIRING

    @property
    def notified_status(self) -> AlertStatus:
        """The status of an alert inside a notification, where firing alerts carry no end."""
        return AlertStatus.FIRING if self.ends_at is None else AlertStatus.RESOLVED


def merge(old: Alert, new: Alert) -> Alert:
    """The newer report of the same alert wins, but keeps the earliest start when the two
    overlap in time (Alertmanager's `Alert.Merge`): a re-sent alert is the same incident."""
    overlaps = old.ends_at is None or new.starts_at <= old.ends_at
    if overlaps and old.starts_at < new.starts_at:
        return replace(new, starts_at=old.starts_at)
    return new


def sort_key(alert: Alert) -> tuple[object, ...]:
    """Alertmanager's AlertSlice order: by job, then instance (absent last), then labels."""
    labels = alert.label_map
    key: list[object] = []
    for name in ("job", "instance"):
        value = labels.get(name)
        key.append((value is None, value or ""))
    key.append((len(alert.labels), alert.labels))
    return tuple(key)


def common(items: Sequence[Labels]) -> dict[str, str]:
    """The pairs every item shares (commonLabels / commonAnnotations)."""
    if not items:
        return {}
    shared = dict(items[0])
    for item in items[1:]:
        other = dict(item)
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    return shared


def group_status(alerts: Iterable[Alert]) -> AlertStatus:
    firing = any(a.notified_status is AlertStatus.FIRING for a in alerts)
    return AlertStatus.FIRING if firing else AlertStatus.RESOLVED


@dataclass(frozen=True, kw_only=True)
class GroupKey:
    """Identifies an aggregation group; `str()` is Alertmanager's group key
    (`{}/{severity="page"}:{alertname="X", region="eu"}`), the webhook's `groupKey`."""

    route_key: str
    labels: Labels

    def __str__(self) -> str:
        return f"{self.route_key}:{label_set_string(self.labels)}"
