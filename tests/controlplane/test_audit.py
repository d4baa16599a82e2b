from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from controlplane import audit
from controlplane.db import create_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path}/cp.db")
    else:
        eng = create_engine(request.getfixturevalue("postgres_schema"))
    audit.install(eng)
    yield eng
    eng.dispose()


def tamper(engine: Engine, *statements: str) -> None:
    """What someone with DDL rights could do: drop the triggers, then rewrite history."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_no_change ON audit_events")
        for statement in statements:
            conn.exec_driver_sql(statement)


def fill(log: audit.AuditLog, n: int = 5) -> None:
    for i in range(n):
        log.append("step", {"i": i, "note": "é ✓"}, actor="alice", execution_id=f"x{i % 2}")


def test_chain_verifies_and_reads_back(engine: Engine) -> None:
    log = audit.AuditLog(engine, clock=iter(range(100, 200)).__next__)
    fill(log)
    result = log.verify()
    assert result.ok and result.checked == 5, result.problems
    events = log.events(execution_id="x1")
    assert [e.data["i"] for e in events] == [1, 3]
    assert events[0].actor == "alice" and events[0].at == 101
    assert log.events()[1].prev_hash == log.events()[0].hash


def test_database_refuses_update_and_delete(engine: Engine) -> None:
    fill(audit.AuditLog(engine))
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert audit.AuditLog(engine).verify().ok


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        (
            "UPDATE audit_events SET data = '{\"i\":99}' WHERE seq = 3",
            "row 3: content does not match",
        ),
        (
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
            "row 1: content does not match",
        ),
        ("DELETE FROM audit_events WHERE seq = 2", "rows 2..2 are missing"),
        ("DELETE FROM audit_events WHERE seq = 5", "rows removed from the end"),
    ],
)
def test_verify_finds_edited_and_deleted_rows(engine: Engine, statement: str, problem: str) -> None:
    log = audit.AuditLog(engine)
    fill(log)
    tamper(engine, statement)
    result = log.verify()
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems


def test_concurrent_appends_keep_one_unbroken_chain(engine: Engine) -> None:
    log = audit.AuditLog(engine)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        own = audit.AuditLog(engine)  # one per writer, as separate processes would have
        try:
            for i in range(15):
                own.append("step", {"writer": n, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = log.verify()
    assert result.ok and result.checked == 60, result.problems


def truncate_and_rewrite_head(engine: Engine, keep: int) -> None:
    """Delete the rows after `keep` and make the head row name row `keep`, as it would if the
    deleted rows had never been written: the chain alone has nothing left to disagree."""
    with engine.connect() as conn:
        digest = conn.execute(
            sa.select(audit.audit_events.c.hash).where(audit.audit_events.c.seq == keep)
        ).scalar_one()
    tamper(
        engine,
        f"DELETE FROM audit_events WHERE seq > {keep}",
        f"UPDATE audit_head SET seq = {keep}, hash = '{digest}' WHERE id = 1",
    )


def test_truncation_with_a_rewritten_head_needs_an_anchor(engine: Engine, tmp_path: Path) -> None:
    log = audit.AuditLog(engine)
    fill(log)
    anchors = tmp_path / "anchors.jsonl"
    anchorer = audit.Anchorer(log, anchors, clock=lambda: 0.0)
    assert anchorer.anchor() == log.head()
    truncate_and_rewrite_head(engine, keep=3)
    # documented limit: the database alone cannot show it
    alone = log.verify()
    assert alone.ok and alone.checked == 3, alone.problems
    anchored = log.verify(audit.read_anchors(anchors))
    assert not anchored.ok and anchored.anchors == 1
    (problem,) = anchored.problems
    assert problem.startswith(f"rows 4..5 are missing: {anchors}:1 anchored row 5 (hash '")
    assert "the log ends at row 3" in problem


def test_a_rehashed_chain_differs_from_its_anchor(engine: Engine, tmp_path: Path) -> None:
    """Rewriting a row and recomputing every hash after it fools the chain, not the anchor."""
    log = audit.AuditLog(engine)
    fill(log)
    anchored = [audit.Anchor(seq=h.seq, hash=h.hash, source="file:1") for h in [log.head()] if h]
    statements, prev = [], log.events()[1].hash
    for e in log.events()[2:]:
        data = (
            '{"i":99}'
            if e.seq == 3
            else json.dumps(dict(e.data), sort_keys=True, separators=(",", ":"))
        )
        digest = audit.chain._digest(prev, e.seq, e.at, e.actor, e.kind, e.execution_id, data)
        quoted = data.replace("'", "''")
        statements.append(
            f"UPDATE audit_events SET data = '{quoted}', prev_hash = '{prev}', hash = '{digest}'"
            f" WHERE seq = {e.seq}"
        )
        prev = digest
    tamper(engine, *statements, f"UPDATE audit_head SET hash = '{prev}' WHERE id = 1")
    assert log.verify().ok
    result = log.verify(anchored)
    assert result.problems == (
        f"row 5: the log has hash {prev!r}, file:1 anchored {anchored[0].hash!r} (rewritten?)",
    )


def test_head_hash_at_and_rows_between(engine: Engine) -> None:
    log = audit.AuditLog(engine, clock=iter([100.0, 200.0, 150.0, 300.0]).__next__)
    assert log.head() is None and log.hash_at(1) is None
    fill(log, 4)
    events = log.events()
    assert log.head() == audit.Head(seq=4, hash=events[-1].hash)
    assert log.hash_at(2) == events[1].hash
    # row 3's clock stepped back: it stays in the exported chain between rows 2 and 4
    assert [r.seq for r in log.rows_between(200.0, 301.0)] == [2, 3, 4]
    assert [r.seq for r in log.rows_between(400.0, 500.0)] == []
    row, *_ = log.rows_between(0, 1000)
    hashed = audit.hash_input(
        row.prev_hash, row.seq, row.at, row.actor, row.kind, row.execution_id, row.data
    )
    assert hashlib.sha256(hashed.encode()).hexdigest() == row.hash
