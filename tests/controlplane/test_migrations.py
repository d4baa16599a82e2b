from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from controlplane.cli import main
from controlplane.db import create_engine
from controlplane.migrations import target_metadata, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path}/cp.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_schema")
    )
    eng = create_engine(url)
    yield eng
    eng.dispose()


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)  # idempotent
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), target_metadata())
    assert diffs == []


def test_migrated_audit_log_is_append_only(engine: Engine) -> None:
    from controlplane.audit import AuditLog

    upgrade(engine)
    AuditLog(engine).append("x", {})
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events")


def test_db_upgrade_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/verb.db"
    assert main(["db", "upgrade", "--url", url]) == 0
    assert "is at head" in capsys.readouterr().out
    eng = create_engine(url)
    assert {"executions", "audit_events", "notify_silences"} <= set(
        sa.inspect(eng).get_table_names()
    )
    eng.dispose()
