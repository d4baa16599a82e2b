"""Acknowledgements: who is on an alert group, kept in the database until the group resolves.

An acknowledged group stops its reminders: the notification dispatcher asks
`acknowledged(group_key)` where it decides whether `repeat_interval` has passed, and treats an
acknowledged group as news-only (a new firing alert in it still notifies; the same alerts are
not repeated). Nothing says "resolved" to this table, so `Acknowledgements.hook` looks: asked
about a group with nothing firing (its resolving flush), it forgets the group's
acknowledgements; and every `prune_every_s` it forgets those of groups it saw firing and that
have gone from the dispatcher since, and those older than `orphan_s` whose group is not firing
(a restart whose alerts never came back). A group whose resolution is silenced is not flushed and
keeps its acknowledgement until the next prune.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from controlplane.access import Permission, User, require
from controlplane.audit import AuditLog
from controlplane.notify.alerts import Alert, GroupKey
from controlplane.slack.tables import acknowledgements

log = logging.getLogger(__name__)


class GroupLike(Protocol):
    """A notification group as the dispatcher shows it (`notify.dispatch.GroupView`)."""

    @property
    def key(self) -> GroupKey: ...

    @property
    def alerts(self) -> Sequence[Alert]: ...


@dataclass(frozen=True, kw_only=True)
class Acknowledgement:
    group_key: str
    user: str
    slack_user: str | None
    at: float


def digest(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


class Acknowledgements:
    def __init__(
        self, engine: Engine, audit: AuditLog, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine, self._audit, self._clock = engine, audit, clock

    def acknowledge(self, user: User, group_key: str, *, slack_user: str | None = None) -> bool:
        """Record that `user` is on the group (False: they already were). Audited."""
        require(user, Permission.ACKNOWLEDGE)
        row = dict(
            group_digest=digest(group_key),
            user=user.name,
            group_key=group_key,
            slack_user=slack_user,
            acknowledged_at=self._clock(),
        )
        with self._engine.begin() as conn:
            if conn.execute(self._where(group_key, user.name)).first() is not None:
                return False
            conn.execute(acknowledgements.insert().values(**row))
        self._audit.append("acknowledged", {"group": group_key}, actor=user.name)
        return True

    def of(self, group_key: str) -> list[Acknowledgement]:
        query = (
            sa.select(acknowledgements)
            .where(acknowledgements.c.group_digest == digest(group_key))
            .order_by(acknowledgements.c.acknowledged_at)
        )
        with self._engine.connect() as conn:
            return [_ack(r) for r in conn.execute(query)]

    def all(self) -> list[Acknowledgement]:
        query = sa.select(acknowledgements).order_by(acknowledgements.c.acknowledged_at)
        with self._engine.connect() as conn:
            return [_ack(r) for r in conn.execute(query)]

    def forget(self, group_keys: Iterable[str]) -> int:
        digests = [digest(k) for k in group_keys]
        if not digests:
            return 0
        with self._engine.begin() as conn:
            done = conn.execute(
                acknowledgements.delete().where(acknowledgements.c.group_digest.in_(digests))
            )
        return int(done.rowcount or 0)

    def hook(
        self,
        groups: Callable[[], Sequence[GroupLike]],
        *,
        prune_every_s: float = 30.0,
        orphan_s: float = 24 * 3600.0,
    ) -> Callable[[GroupKey], bool]:
        """The dispatcher's `acknowledged` callable; it never raises (the dispatcher must
        keep notifying if the database does not answer: then nothing is acknowledged)."""
        seen_live: set[str] = set()
        last_prune = [0.0]
        lock = threading.Lock()

        def prune() -> None:
            now = self._clock()
            with lock:
                if now - last_prune[0] < prune_every_s:
                    return
                last_prune[0] = now
                live = _firing_keys(groups(), now)
                seen_live.update(live)
                gone = [
                    a.group_key
                    for a in self.all()
                    if a.group_key not in live
                    and (a.group_key in seen_live or now - a.at > orphan_s)
                ]
                seen_live.difference_update(gone)
            self.forget(gone)

        def acknowledged(key: GroupKey) -> bool:
            try:
                prune()
                text = str(key)
                if not self.of(text):
                    return False
                if text not in _firing_keys(groups(), self._clock()):
                    self.forget([text])  # its resolving flush asks: the episode is over
                    return False
                return True
            except Exception:  # the database boundary: notify as if nobody were on it
                log.exception("cannot read acknowledgements of %s", key)
                return False

        return acknowledged

    @staticmethod
    def _where(group_key: str, user: str) -> sa.Select[tuple[str]]:
        return sa.select(acknowledgements.c.user).where(
            acknowledgements.c.group_digest == digest(group_key),
            acknowledgements.c.user == user,
        )


def _firing_keys(groups: Sequence[GroupLike], now_s: float) -> set[str]:
    now = datetime.fromtimestamp(now_s, UTC)
    return {str(g.key) for g in groups if any(not a.resolved_at(now) for a in g.alerts)}


def _ack(row: sa.Row[tuple[object, ...]]) -> Acknowledgement:
    return Acknowledgement(
        group_key=str(row.group_key),
        user=str(row.user),
        slack_user=None if row.slack_user is None else str(row.slack_user),
        at=float(row.acknowledged_at),
    )
