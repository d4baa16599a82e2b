"""The region's database: the wallet retry queue and the provider state that survives a restart.

SQLite by default (a file per region), PostgreSQL by URL. The tables are created on start;
both are small and only written on failures and admin calls, never per round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

METADATA = sa.MetaData()


def default_url(region: str) -> str:
    return f"sqlite:///var/region-{region}.db"


def make_engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        # one shared connection, or every pooled connection would see its own empty database
        return sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the metrics scrape read the queue while a replay writes to it
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_schema(engine: sa.Engine) -> None:
    # the table modules define their tables on METADATA when imported
    from aggregator.region import retryqueue, state  # noqa: F401

    METADATA.create_all(engine)
