"""The hash chain: rows, the head row, append, read, verify (against anchors too).

Every row carries the SHA-256 of its own content and of the previous row, so editing or deleting
any row breaks the chain, and `verify` says where. A one-row head table holds the latest hash,
updated in the same transaction, so dropping rows from the end is caught too, unless the head
row is rewritten as well: only anchors (`anchor.py`) catch that. Database triggers refuse UPDATE
and DELETE on the log, so the application cannot rewrite it by mistake; the chain catches
whoever bypasses them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    anchors: int = 0  # anchors compared with the log


@dataclass(frozen=True, kw_only=True)
class Head:
    """The newest row of the chain: what an anchor keeps."""

    seq: int
    hash: str


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """A head seen outside the database: a line of the anchor file or a Prometheus sample.
    `hash` is None where only the sequence number was kept."""

    seq: int
    hash: str | None
    source: str  # named in problems: "var/anchors.jsonl:12", "Prometheus http://..."


def install(engine: Engine) -> None:
    """Create the tables and the append-only triggers (idempotent; migrations call it too)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in APPEND_ONLY_DDL.get(engine.dialect.name, []):
            conn.exec_driver_sql(statement)


def hash_input(
    prev: str, seq: int, at: float, actor: str, kind: str, execution_id: str | None, data: str
) -> str:
    """The exact text a row's hash is the SHA-256 of (exports carry it, for recomputing)."""
    return json.dumps([prev, seq, repr(at), actor, kind, execution_id, data], separators=(",", ":"))


def _digest(
    prev: str, seq: int, at: float, actor: str, kind: str, execution_id: str | None, data: str
) -> str:
    body = hash_input(prev, seq, at, actor, kind, execution_id, data)
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

    def head(self) -> Head | None:
        """The head row: one primary-key read, cheap enough for every scrape of /metrics."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).first()
        return None if row is None else Head(seq=row.seq, hash=row.hash)

    def hash_at(self, seq: int) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                sa.select(audit_events.c.hash).where(audit_events.c.seq == seq)
            ).scalar()

    def rows_between(self, start: float, end: float) -> Iterator[Any]:
        """Raw rows in chain order, streamed (for exports): from the first at or after `start`
        to the last before `end`, every row between them too (a clock that stepped back must
        not punch holes in an exported chain)."""
        c = audit_events.c
        with self._engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(c.seq)).where(c.at >= start)).scalar()
            last = conn.execute(sa.select(sa.func.max(c.seq)).where(c.at < end)).scalar()
            if first is None or last is None:
                return
            query = sa.select(audit_events).where(c.seq.between(first, last)).order_by(c.seq)
            yield from conn.execution_options(yield_per=1000).execute(query)

    def verify(self, anchors: Sequence[Anchor] = ()) -> Verification:
        """The chain, and the log against `anchors`: without anchors, rows deleted from the end
        together with a rewritten head row go unnoticed (nothing in the database is left to
        disagree)."""
        problems: list[str] = []
        prev, expected_seq, checked = GENESIS, 1, 0
        anchored, seen = {a.seq for a in anchors}, dict[int, str]()  # hashes at anchored seqs
        with self._engine.connect() as conn:
            for row in self._rows(conn):
                checked += 1
                if row.seq in anchored:
                    seen[row.seq] = row.hash
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
        problems.extend(anchor_problems(anchors, seen, last=expected_seq - 1))
        return Verification(
            ok=not problems, checked=checked, problems=tuple(problems), anchors=len(anchors)
        )

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


def anchor_problems(anchors: Iterable[Anchor], seen: Mapping[int, str], *, last: int) -> list[str]:
    """What `anchors` say is wrong with a log ending at row `last` whose hashes at the anchored
    sequence numbers are `seen`."""
    anchors = list(anchors)
    problems: list[str] = []
    beyond = [a for a in anchors if a.seq > last]
    if beyond:
        top = max(beyond, key=lambda a: (a.seq, a.hash is not None))
        digest = f" (hash {top.hash!r})" if top.hash else ""
        problems.append(
            f"rows {last + 1}..{top.seq} are missing: {top.source} anchored row {top.seq}"
            f"{digest} but the log ends at row {last} (rows deleted from the end?)"
        )
    differ = [
        a
        for a in anchors
        if a.seq <= last and (a.seq not in seen or a.hash not in (None, seen[a.seq]))
    ]
    problems.extend(
        f"row {a.seq}: the log has hash {seen.get(a.seq)!r}, {a.source} anchored {a.hash!r}"
        " (rewritten?)"
        for a in differ[:5]
    )
    if len(differ) > 5:
        problems.append(f"... and {len(differ) - 5} more anchored rows differ")
    return problems
