"""The notification outbox: decided notifications, in the database until they are delivered.

The dispatcher never sends. It writes its decision (the notification log entry, nflog.py) and
one outbox row per notification in ONE transaction (`record`), so after a crash either both
exist or neither does: a decision is never lost, and never made twice. Sender threads
(sender.py), in this process or another replica, then `claim` due rows, call the notifier and
`mark_sent`.

Claiming is a compare-and-set: the row's lease (owner, token, until) is taken by an UPDATE
whose WHERE requires it free, so two senders never hold the same row; a sender that dies
leaves a lease that simply expires, and the row is claimed again. Every later write names the
token, so a sender that outlived its lease cannot overwrite the new holder's outcome.

Pacing: each row carries a pace key (a Slack channel, a webhook URL, hashed: they may hold
secrets). `notify_pace` keeps, per key, the earliest time the next message may go; a claim
reserves the slot in the same transaction as the lease, so replicas share one pace. A 429's
Retry-After holds the whole key. Rows of one group and integration go out in order: a row
waits while an older one of the same log key is pending.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from controlplane.notify.alerts import AlertStatus, GroupKey
from controlplane.notify.message import Decision, Message, alert_from_json, alert_to_json
from controlplane.notify.nflog import (
    NotificationLog,
    dialect_insert,
    metadata,
    utc,
)


class State(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


outbox_table = sa.Table(
    "notify_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("log_key", sa.String(64), nullable=False, index=True),
    sa.Column("receiver", sa.String(255), nullable=False),
    sa.Column("integration", sa.String(100), nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("route_key", sa.Text, nullable=False),
    sa.Column("group_labels", sa.JSON, nullable=False),
    sa.Column("alerts", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pace_key", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_token", sa.String(32), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_notify_outbox_due", "state", "next_attempt_at"),
)

pace_table = sa.Table(
    "notify_pace",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A row this sender holds the lease of, until it reports the outcome."""

    id: int
    token: str
    attempts: int  # including this one
    log_key: str
    receiver: str
    integration: str
    group_key: str
    pace_key: str | None
    created_at: datetime
    content: Mapping[str, Any]  # route_key, group_labels, alerts, status: as stored

    def message(self) -> Message:
        """The message as decided (ValueError or KeyError if the row cannot be read)."""
        labels = tuple((str(n), str(v)) for n, v in self.content["group_labels"])
        return Message(
            receiver=self.receiver,
            integration=self.integration,
            group_key=GroupKey(route_key=self.content["route_key"], labels=labels),
            alerts=tuple(alert_from_json(a) for a in self.content["alerts"]),
            status=AlertStatus(self.content["status"]),
        )


@dataclass(frozen=True, kw_only=True)
class Row:
    """A row as a person inspecting the outbox sees it."""

    id: int
    receiver: str
    integration: str
    group_key: str
    state: State
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, kw_only=True)
class Stats:
    depth: int  # pending rows
    oldest: datetime | None  # the oldest pending row's creation
    dead: int  # dead letters still kept


class _Lost(Exception):
    """The row was claimed by someone else between the look and the claim."""


def hash_pace_key(key: str | None) -> str | None:
    return None if key is None else hashlib.sha256(key.encode()).hexdigest()


class Outbox:
    def __init__(self, engine: Engine, *, nflog: NotificationLog | None = None) -> None:
        self._engine = engine
        self.nflog = nflog or NotificationLog(engine)
        self.wakeup = threading.Event()  # set when rows were added: senders look at once

    def create_tables(self) -> None:
        metadata.create_all(self._engine)

    # -- the dispatcher's side -------------------------------------------------------------

    def record(self, decisions: Sequence[Decision], now: datetime) -> list[int]:
        """Write the decisions' log entries and their outbox rows in one transaction; the
        ids of the rows added."""
        ids: list[int] = []
        with self._engine.begin() as conn:
            for decision in decisions:
                outbox_id = None
                if decision.message is not None:
                    values = _new_row(decision.line.key, decision.message, utc(now))
                    result = conn.execute(outbox_table.insert().values(**values))
                    outbox_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                    ids.append(outbox_id)
                self.nflog.write(conn, decision.line, outbox_id)
        if ids:
            self.wakeup.set()
        return ids

    # -- the senders' side -----------------------------------------------------------------

    def claim(
        self, owner: str, now: datetime, *, lease: timedelta, pace: timedelta
    ) -> Claimed | None:
        """Take the lease of the next due row whose pace key has a free slot, reserving that
        slot (`pace` ahead); None when nothing can go now."""
        now = utc(now)
        for row_id, pace_key in self._candidates(now):
            token = uuid.uuid4().hex
            try:
                with self._engine.begin() as conn:
                    paced = pace_key is not None and pace > timedelta(0)
                    if paced and not _reserve(conn, str(pace_key), now, now + pace):
                        continue
                    row = self._take(conn, row_id, owner, token, now, now + lease)
            except _Lost:
                continue
            return _claimed(row, token)
        return None

    def mark_sent(self, claimed: Claimed, now: datetime) -> bool:
        """Delivered. False if the lease had passed to another sender (which may send too)."""
        with self._engine.begin() as conn:
            done = conn.execute(
                _held(claimed).values(state=State.SENT, finished_at=utc(now), **_NO_LEASE)
            )
        return done.rowcount == 1

    def retry(self, claimed: Claimed, *, at: datetime, error: str, hold_key: bool = False) -> bool:
        """Try again at `at`; `hold_key` keeps every row of its pace key back until then too
        (the receiver said to wait)."""
        with self._engine.begin() as conn:
            done = conn.execute(
                _held(claimed).values(next_attempt_at=utc(at), last_error=error, **_NO_LEASE)
            )
            if done.rowcount == 1 and hold_key and claimed.pace_key is not None:
                _hold(conn, claimed.pace_key, utc(at))
        return done.rowcount == 1

    def dead_letter(self, claimed: Claimed, now: datetime, error: str) -> bool:
        """Give up on the row, and forget its log entry so that the next flush decides anew."""
        with self._engine.begin() as conn:
            done = conn.execute(
                _held(claimed).values(
                    state=State.DEAD, finished_at=utc(now), last_error=error, **_NO_LEASE
                )
            )
            if done.rowcount == 1:
                self.nflog.forget(conn, claimed.log_key, claimed.id)
        return done.rowcount == 1

    def next_due(self) -> datetime | None:
        """When a row next becomes claimable (its attempt time, or its lease's end)."""
        c = outbox_table.c
        pending = c.state == State.PENDING
        query = sa.select(
            sa.func.min(sa.case((c.lease_until.is_(None), c.next_attempt_at))),
            sa.func.min(c.lease_until),
        ).where(pending)
        with self._engine.connect() as conn:
            free, leased = conn.execute(query).one()
        times = [utc(t) for t in (free, leased) if t is not None]
        return min(times, default=None)

    # -- inspection and upkeep -------------------------------------------------------------

    def stats(self) -> Stats:
        c = outbox_table.c
        query = sa.select(
            sa.func.count().filter(c.state == State.PENDING),
            sa.func.min(c.created_at).filter(c.state == State.PENDING),
            sa.func.count().filter(c.state == State.DEAD),
        )
        with self._engine.connect() as conn:
            depth, oldest, dead = conn.execute(query).one()
        return Stats(depth=int(depth), oldest=None if oldest is None else utc(oldest), dead=dead)

    def rows(self, state: State | None = None) -> list[Row]:
        c = outbox_table.c
        query = sa.select(outbox_table).order_by(c.id)
        if state is not None:
            query = query.where(c.state == state)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def gc(self, now: datetime, *, keep_sent: timedelta, keep_dead: timedelta) -> None:
        """Forget delivered rows after `keep_sent`, dead letters after `keep_dead`, and pace
        slots long past (a claim recreates them)."""
        now = utc(now)
        c = outbox_table.c
        with self._engine.begin() as conn:
            for state, keep in ((State.SENT, keep_sent), (State.DEAD, keep_dead)):
                conn.execute(
                    outbox_table.delete().where(c.state == state, c.finished_at < now - keep)
                )
            conn.execute(pace_table.delete().where(pace_table.c.next_at < now - timedelta(hours=1)))
        self.nflog.gc(now)

    # -- internals -------------------------------------------------------------------------

    def _candidates(self, now: datetime) -> list[tuple[int, str | None]]:
        with self._engine.connect() as conn:
            return [(int(r.id), r.pace_key) for r in conn.execute(_CANDIDATES, {"now": now})]

    def _take(
        self, conn: Connection, row_id: int, owner: str, token: str, now: datetime, until: datetime
    ) -> Any:
        c = outbox_table.c
        done = conn.execute(
            outbox_table.update()
            .where(c.id == row_id, c.state == State.PENDING, c.next_attempt_at <= now)
            .where(sa.or_(c.lease_until.is_(None), c.lease_until <= now))
            .values(
                lease_owner=owner, lease_token=token, lease_until=until, attempts=c.attempts + 1
            )
        )
        if done.rowcount != 1:
            raise _Lost()  # rolls the pace reservation back with it
        return conn.execute(sa.select(outbox_table).where(c.id == row_id)).one()


_NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_token": None, "lease_until": None}


def _candidates_query(limit: int = 20) -> sa.Select[Any]:
    """Due rows, oldest first: free (or with an expired lease), their pace key's slot free,
    and no older pending row of their log key. Built once: it is asked every idle second."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    o, p = outbox_table.alias("o"), outbox_table.alias("p")
    older = (
        sa.select(p.c.id)
        .where(p.c.log_key == o.c.log_key, p.c.state == State.PENDING, p.c.id < o.c.id)
        .exists()
    )
    paced = (
        sa.select(pace_table.c.key)
        .where(pace_table.c.key == o.c.pace_key, pace_table.c.next_at > now)
        .exists()
    )
    return (
        sa.select(o.c.id, o.c.pace_key)
        .where(o.c.state == State.PENDING, o.c.next_attempt_at <= now)
        .where(sa.or_(o.c.lease_until.is_(None), o.c.lease_until <= now))
        .where(~older, ~paced)
        .order_by(o.c.next_attempt_at, o.c.id)
        .limit(limit)
    )


_CANDIDATES = _candidates_query()


def _held(claimed: Claimed) -> Any:
    c = outbox_table.c
    return outbox_table.update().where(
        c.id == claimed.id, c.lease_token == claimed.token, c.state == State.PENDING
    )


def _reserve(conn: Connection, key: str, now: datetime, until: datetime) -> bool:
    """Take the key's next slot if it is free at `now`: one statement, so two senders racing
    for it serialise on the row and only one sees it free."""
    insert = dialect_insert(conn, pace_table).values(key=key, next_at=until)
    statement = insert.on_conflict_do_update(
        index_elements=["key"], set_={"next_at": until}, where=pace_table.c.next_at <= now
    )
    # RETURNING, not rowcount: drivers need not report a rowcount for an INSERT (psycopg)
    return conn.execute(statement.returning(pace_table.c.key)).first() is not None


def _hold(conn: Connection, key: str, until: datetime) -> None:
    insert = dialect_insert(conn, pace_table).values(key=key, next_at=until)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["key"], set_={"next_at": until}, where=pace_table.c.next_at < until
        )
    )


def _new_row(log_key: str, message: Message, now: datetime) -> dict[str, Any]:
    return {
        "log_key": log_key,
        "receiver": message.receiver,
        "integration": message.integration,
        "group_key": str(message.group_key),
        "route_key": message.group_key.route_key,
        "group_labels": [list(p) for p in message.group_key.labels],
        "alerts": [alert_to_json(a) for a in message.alerts],
        "status": message.status.value,
        "pace_key": hash_pace_key(message.pace_key),
        "created_at": now,
        "state": State.PENDING.value,
        "next_attempt_at": now,
        "attempts": 0,
    }


def _claimed(row: Any, token: str) -> Claimed:
    return Claimed(
        id=int(row.id),
        token=token,
        attempts=int(row.attempts),
        log_key=row.log_key,
        receiver=row.receiver,
        integration=row.integration,
        group_key=row.group_key,
        pace_key=row.pace_key,
        created_at=utc(row.created_at),
        content={
            "route_key": row.route_key,
            "group_labels": row.group_labels,
            "alerts": row.alerts,
            "status": row.status,
        },
    )


def _row(row: Any) -> Row:
    return Row(
        id=int(row.id),
        receiver=row.receiver,
        integration=row.integration,
        group_key=row.group_key,
        state=State(row.state),
        attempts=int(row.attempts),
        created_at=utc(row.created_at),
        finished_at=None if row.finished_at is None else utc(row.finished_at),
        last_error=row.last_error,
    )
