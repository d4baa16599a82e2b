from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from controlplane import audit
from controlplane.db import create_engine


@pytest.fixture(params=["sqlite", "postgresql"])
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
