"""The notification log: what each integration of each group was last told, and when.

It is Alertmanager's DedupStage: a flush only becomes a notification when there is news (a
firing alert the receiver has not heard of, or a resolution it wants), or when
`repeat_interval` has passed since the last one. `needs_update` is that decision, pure.

The log lives in the control plane database (`notify_log`, on the exported `metadata` with the
outbox's tables), so a restart, or another replica taking over, neither repeats a notification
nor forgets one. An entry is written in the same transaction as the outbox row that will carry
the notification (outbox.py): the log records what was decided, and the outbox guarantees the
decision is delivered or dead-lettered. A dead-lettered row takes its entry with it, so the
next flush decides again, as Alertmanager retries a failed notification at its next flush.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from controlplane.model.series import Labels

metadata = sa.MetaData()

nflog_table = sa.Table(
    "notify_log",
    metadata,
    # sha256 of (route path, group labels, receiver, integration): see `log_key`
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("receiver", sa.String(255), nullable=False),
    sa.Column("integration", sa.String(100), nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),  # for people reading the table
    sa.Column("firing", sa.JSON, nullable=False),  # fingerprints
    sa.Column("resolved", sa.JSON, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False, index=True),
    # the outbox row carrying this decision; a dead letter forgets only its own entry
    sa.Column("outbox_id", sa.BigInteger, nullable=True),
)


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


def log_key(route_path: Sequence[int], labels: Labels, receiver: str, integration: str) -> str:
    """The stable key of one line of the log. The route's position, not its matchers, names
    the group, as the dispatcher's groups do (two siblings may share their matchers)."""
    text = json.dumps([list(route_path), [list(p) for p in labels], receiver, integration])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class LogLine:
    """An entry as written, with what a person reading the table needs to place it."""

    key: str
    receiver: str
    integration: str
    group_key: str
    entry: LogEntry


def utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything written here is UTC
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class NotificationLog:
    """The log in the database behind `engine`; writes take the caller's connection, so they
    join the transaction that also writes the outbox row."""

    def __init__(self, engine: Engine, retention: timedelta = timedelta(hours=120)) -> None:
        self._engine = engine
        self._retention = retention

    def get(self, key: str) -> LogEntry | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, LogEntry]:
        wanted = list(keys)
        if not wanted:
            return {}
        query = sa.select(nflog_table).where(nflog_table.c.key.in_(wanted))
        with self._engine.connect() as conn:
            return {row.key: _entry(row) for row in conn.execute(query)}

    def write(self, conn: Connection, line: LogLine, outbox_id: int | None) -> None:
        values = {
            "key": line.key,
            "receiver": line.receiver,
            "integration": line.integration,
            "group_key": line.group_key,
            "firing": sorted(line.entry.firing),
            "resolved": sorted(line.entry.resolved),
            "sent_at": utc(line.entry.sent_at),
            "outbox_id": outbox_id,
        }
        upsert(conn, nflog_table, values, key="key")

    def forget(self, conn: Connection, key: str, outbox_id: int) -> None:
        """Drop the entry `outbox_id` wrote, unless a later decision has replaced it."""
        c = nflog_table.c
        conn.execute(nflog_table.delete().where(c.key == key, c.outbox_id == outbox_id))

    def gc(self, now: datetime) -> int:
        cutoff = utc(now) - self._retention
        with self._engine.begin() as conn:
            done = conn.execute(nflog_table.delete().where(nflog_table.c.sent_at < cutoff))
        return int(done.rowcount or 0)

    def __len__(self) -> int:
        with self._engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(nflog_table)).scalar()
        return int(count or 0)


def _entry(row: Any) -> LogEntry:
    return LogEntry(
        firing=frozenset(row.firing), resolved=frozenset(row.resolved), sent_at=utc(row.sent_at)
    )


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT, which both supported databases (SQLite, PostgreSQL) speak."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"notifications need SQLite or PostgreSQL, not {name}")


def upsert(conn: Connection, table: sa.Table, values: dict[str, Any], *, key: str) -> None:
    """Insert, or overwrite the row with the same `key`, in one statement."""
    statement = dialect_insert(conn, table).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[key], set_={k: v for k, v in values.items() if k != key}
        )
    )
