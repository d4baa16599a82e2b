"""Silences: matchers that mute notifications for a time, kept in the control plane database.

A silence is pending before `starts_at`, active until `ends_at`, expired after; expiring one
sets `ends_at` to now (a pending one ends before it starts). As in Alertmanager, a new
silence never starts in the past, must end in the future and must have at least one matcher
that does not match the empty string (so it cannot silence everything by accident).

Tables live on the exported `metadata` so the Alembic migration can include them;
`create_tables()` is for tests and first runs before migrations exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from controlplane.model.regex import RegexError
from controlplane.model.series import Labels, Matcher, MatchOp
from controlplane.notify.errors import SilenceError, SilenceExpired, SilenceNotFound
from controlplane.notify.matchers import matcher_string, matches, matches_empty

metadata = sa.MetaData()

silences_table = sa.Table(
    "notify_silences",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", sa.JSON, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True, kw_only=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime
    created_by: str
    comment: str

    def state_at(self, now: datetime) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE if now < self.ends_at else SilenceState.EXPIRED

    def mutes(self, labels: Labels) -> bool:
        try:
            return matches(self.matchers, labels)
        except RegexError:
            # stored before matching moved to RE2, which refuses it: it mutes nothing, and
            # can still be listed and expired
            return False

    @property
    def matcher_strings(self) -> list[str]:
        return [matcher_string(m) for m in self.matchers]


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything written here is UTC
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _to_row(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": [
            {"name": m.name, "op": m.op.value, "value": m.value} for m in silence.matchers
        ],
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "updated_at": silence.updated_at,
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def _from_row(row: Any) -> Silence:
    return Silence(
        id=row.id,
        # checked when added; not again here, so that every stored silence stays readable
        matchers=tuple(
            Matcher(name=m["name"], op=MatchOp(m["op"]), value=m["value"]) for m in row.matchers
        ),
        starts_at=_utc(row.starts_at),
        ends_at=_utc(row.ends_at),
        updated_at=_utc(row.updated_at),
        created_by=row.created_by,
        comment=row.comment,
    )


class SilenceStore:
    """Silences in the database behind `engine` (SQLite file or PostgreSQL by URL)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._new_id = new_id

    def create_tables(self) -> None:
        metadata.create_all(self._engine)

    def add(
        self,
        *,
        matchers: Sequence[Matcher],
        ends_at: datetime,
        created_by: str,
        comment: str,
        starts_at: datetime | None = None,
    ) -> Silence:
        now = _utc(self._clock())
        starts = now if starts_at is None or starts_at < now else _utc(starts_at)
        silence = Silence(
            id=self._new_id(),
            matchers=tuple(matchers),
            starts_at=starts,
            ends_at=_utc(ends_at),
            updated_at=now,
            created_by=created_by,
            comment=comment,
        )
        _validate(silence, now)
        with self._engine.begin() as conn:
            conn.execute(silences_table.insert().values(**_to_row(silence)))
        return silence

    def get(self, silence_id: str) -> Silence:
        with self._engine.connect() as conn:
            row = conn.execute(
                silences_table.select().where(silences_table.c.id == silence_id)
            ).first()
        if row is None:
            raise SilenceNotFound(f"no silence with id {silence_id!r}")
        return _from_row(row)

    def list_silences(self, state: SilenceState | None = None) -> list[Silence]:
        now = _utc(self._clock())
        query = silences_table.select().order_by(silences_table.c.starts_at, silences_table.c.id)
        query = _state_filter(query, state, now)
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def active(self, now: datetime | None = None) -> list[Silence]:
        """The silences muting notifications at `now`."""
        now = _utc(self._clock() if now is None else now)
        query = _state_filter(silences_table.select(), SilenceState.ACTIVE, now)
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def expire(self, silence_id: str) -> Silence:
        now = _utc(self._clock())
        with self._engine.begin() as conn:
            row = conn.execute(
                silences_table.select().where(silences_table.c.id == silence_id).with_for_update()
            ).first()
            if row is None:
                raise SilenceNotFound(f"no silence with id {silence_id!r}")
            old = _from_row(row)
            if old.state_at(now) is SilenceState.EXPIRED:
                raise SilenceExpired(f"silence {silence_id!r} has already expired")
            starts = now if old.state_at(now) is SilenceState.PENDING else old.starts_at
            values = {"starts_at": starts, "ends_at": now, "updated_at": now}
            conn.execute(
                silences_table.update().where(silences_table.c.id == silence_id).values(**values)
            )
        return Silence(**{**_to_row(old), **values, "matchers": old.matchers})

    def delete_expired(self, retention: timedelta) -> int:
        """Forget silences that ended more than `retention` ago; returns how many."""
        cutoff = _utc(self._clock()) - retention
        with self._engine.begin() as conn:
            result = conn.execute(silences_table.delete().where(silences_table.c.ends_at < cutoff))
        return int(result.rowcount or 0)


def _state_filter(query: sa.Select[Any], state: SilenceState | None, now: datetime) -> Any:
    c = silences_table.c
    if state is SilenceState.PENDING:
        return query.where(c.starts_at > now)
    if state is SilenceState.ACTIVE:
        return query.where(c.starts_at <= now, c.ends_at > now)
    if state is SilenceState.EXPIRED:
        return query.where(c.ends_at <= now)
    return query


def _validate(silence: Silence, now: datetime) -> None:
    if not silence.matchers:
        raise SilenceError("a silence needs at least one matcher")
    if all(matches_empty(m) for m in silence.matchers):
        raise SilenceError(
            f"at least one matcher must not match the empty string: {silence.matcher_strings!r}"
        )
    if silence.ends_at <= silence.starts_at:
        raise SilenceError(
            f"ends_at {silence.ends_at.isoformat()!r} must be after starts_at "
            f"{silence.starts_at.isoformat()!r}"
        )
    if silence.ends_at <= now:
        raise SilenceError(f"ends_at {silence.ends_at.isoformat()!r} is in the past")
    if not silence.created_by.strip():
        raise SilenceError(f"created_by {silence.created_by!r} must name who creates it")
    if not silence.comment.strip():
        raise SilenceError(f"comment {silence.comment!r} must say why")
