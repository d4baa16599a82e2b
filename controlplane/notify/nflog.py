"""The notification log: what each integration of each group was last told, and when.

It is Alertmanager's DedupStage: a flush only becomes a notification when there is news (a
firing alert the receiver has not heard of, or a resolution it wants), or when
`repeat_interval` has passed since the last one. Kept in memory: after a restart a group may
notify once more, never less.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: datetime


def needs_update(
    entry: LogEntry | None,
    *,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
    repeat_interval: timedelta,
    now: datetime,
) -> bool:
    """Alertmanager's `DedupStage.needsUpdate`, on alert fingerprints."""
    if entry is None:
        # a group nobody has heard of, with nothing firing: nothing to say
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        # all resolved: tell a receiver that heard of firing alerts, whatever send_resolved,
        # so that the log forgets them; one that only saw them resolve needs nothing
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.sent_at < now - repeat_interval


class NotificationLog:
    def __init__(self, retention: timedelta = timedelta(hours=120)) -> None:
        self._entries: dict[Hashable, LogEntry] = {}
        self._retention = retention

    def get(self, key: Hashable) -> LogEntry | None:
        return self._entries.get(key)

    def log(self, key: Hashable, entry: LogEntry) -> None:
        self._entries[key] = entry

    def gc(self, now: datetime) -> None:
        cutoff = now - self._retention
        for key in [k for k, e in self._entries.items() if e.sent_at < cutoff]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
