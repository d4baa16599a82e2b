"""Migration 0006 builds exactly slack/tables.py, on SQLite and PostgreSQL, and a nonce is
spent once across replicas (two engines, one database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from controlplane.db import create_engine
from controlplane.migrations import upgrade
from controlplane.slack.tables import metadata
from controlplane.slack.tokens import Nonces


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cp.db"
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
def engines(url: str) -> Iterator[tuple[Engine, Engine]]:
    first, second = create_engine(url), create_engine(url)
    yield first, second
    first.dispose()
    second.dispose()


def test_the_migration_builds_the_tables_and_nonces_hold_across_replicas(
    engines: tuple[Engine, Engine],
) -> None:
    first, second = engines
    upgrade(first)
    with first.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = set(metadata.tables)
    assert [d for d in diffs if _table_of(d) in ours] == []
    expires = 4_000_000_000.0
    spent = [
        Nonces(engine).spend("n", "*", action="run", expires_at=expires)
        for engine in (first, second, first)
    ]
    assert spent == [True, False, False]


def _table_of(diff: object) -> str | None:
    item = diff[1] if isinstance(diff, tuple) else None
    table = getattr(item, "table", item)
    return getattr(table, "name", None)
