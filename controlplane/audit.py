"""The audit log: append-only and hash-chained.

Every row carries the SHA-256 of its own content and of the previous row, so editing or deleting
any row breaks the chain, and `verify` says where. A one-row head table holds the latest hash,
updated in the same transaction, so dropping rows from the end is caught too. Database triggers
refuse UPDATE and DELETE on the log, so the application cannot rewrite it by mistake; the chain
catches whoever bypasses them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

metadata = sa.MetaData()

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("execution_id", sa.String(64), nullable=True, index=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

GENESIS = "0" * 64

APPEND_ONLY_DDL = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
        "DROP TRIGGER IF EXISTS audit_no_change ON audit_events",
        "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    ],
}


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    seq: int
    at: float
    actor: str
    kind: str
    execution_id: str | None
    data: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, kw_only=True)
class Verification:
    ok: bool
    checked: int
    problems: tuple[str, ...]


def install(engine: Engine) -> None:
    """Create the tables and the append-only triggers (idempotent; migrations call it too)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in APPEND_ONLY_DDL.get(engine.dialect.name, []):
            conn.exec_driver_sql(statement)


def _digest(
    prev: str, seq: int, at: float, actor: str, kind: str, execution_id: str | None, data: str
) -> str:
    body = json.dumps([prev, seq, repr(at), actor, kind, execution_id, data], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        # writers queue rather than race: in-process here, across processes by the head-row
        # lock (FOR UPDATE on PostgreSQL; SQLite has one writer at a time anyway)
        self._lock = threading.Lock()

    def append(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        actor: str = "controlplane",
        execution_id: str | None = None,
    ) -> AuditEvent:
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        with self._lock:
            for attempt in range(20):
                try:
                    with self._engine.begin() as conn:
                        return self._append(conn, kind, payload, actor, execution_id)
                except (IntegrityError, OperationalError):
                    # only the very first row (no head to lock yet), or SQLite busy, gets here
                    time.sleep(0.005 * (attempt + 1))
        raise RuntimeError("audit append kept conflicting with concurrent writers")

    def _append(
        self, conn: Connection, kind: str, payload: str, actor: str, execution_id: str | None
    ) -> AuditEvent:
        head = conn.execute(
            sa.select(audit_head.c.seq, audit_head.c.hash)
            .where(audit_head.c.id == 1)
            .with_for_update()
        ).first()
        seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
        at = float(self._clock())
        digest = _digest(prev, seq, at, actor, kind, execution_id, payload)
        conn.execute(
            audit_events.insert().values(
                seq=seq,
                at=at,
                actor=actor,
                kind=kind,
                execution_id=execution_id,
                data=payload,
                prev_hash=prev,
                hash=digest,
            )
        )
        if head is None:
            conn.execute(audit_head.insert().values(id=1, seq=seq, hash=digest))
        else:
            done = conn.execute(
                audit_head.update()
                .where(audit_head.c.id == 1)
                .where(audit_head.c.seq == head.seq)
                .values(seq=seq, hash=digest)
            )
            if done.rowcount != 1:
                raise IntegrityError("audit head moved", None, Exception("concurrent append"))
        return AuditEvent(
            seq=seq,
            at=at,
            actor=actor,
            kind=kind,
            execution_id=execution_id,
            data=json.loads(payload),
            prev_hash=prev,
            hash=digest,
        )

    def events(
        self, *, execution_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        query = (
            sa.select(audit_events)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        if execution_id is not None:
            query = query.where(audit_events.c.execution_id == execution_id)
        with self._engine.connect() as conn:
            return [_event(row) for row in conn.execute(query)]

    def verify(self) -> Verification:
        problems: list[str] = []
        prev, expected_seq, checked = GENESIS, 1, 0
        with self._engine.connect() as conn:
            for row in self._rows(conn):
                checked += 1
                if row.seq != expected_seq:
                    problems.append(f"rows {expected_seq}..{row.seq - 1} are missing")
                if row.prev_hash != prev:
                    problems.append(f"row {row.seq}: previous-hash link broken")
                digest = _digest(
                    row.prev_hash, row.seq, row.at, row.actor, row.kind, row.execution_id, row.data
                )
                if digest != row.hash:
                    problems.append(f"row {row.seq}: content does not match its hash (edited)")
                prev, expected_seq = row.hash, row.seq + 1
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
            problems.append(
                f"head says row {head.seq} is last, the log ends at {expected_seq - 1}"
                " (rows removed from the end?)"
            )
        return Verification(ok=not problems, checked=checked, problems=tuple(problems))

    @staticmethod
    def _rows(conn: Connection) -> Iterator[Any]:
        yield from conn.execution_options(yield_per=1000).execute(
            sa.select(audit_events).order_by(audit_events.c.seq)
        )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        execution_id=row.execution_id,
        data=json.loads(row.data),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
