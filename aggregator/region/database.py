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

# The tables are declared here, beside the engine that creates them, rather than in the
# modules that use them (retryqueue.py, state.py): `create_schema` then needs no import of its
# users, and nothing imports back into this module.

# the wallet retry queue (retryqueue.py): wins and rollbacks owed to the wallet
queue_table = sa.Table(
    "wallet_retry_queue",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("transaction_uuid", sa.String(64), nullable=False, unique=True),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("result_status", sa.String(64), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("settled_at", sa.Float, nullable=True),
    sa.Index("ix_wallet_retry_queue_due", "region", "status", "next_attempt_at"),
)

# isolation and canary state per provider (state.py), kept over a restart
provider_state = sa.Table(
    "region_provider_state",
    METADATA,
    sa.Column("region", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(128), primary_key=True),
    sa.Column("isolated", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("canary_percent", sa.Float, nullable=False, default=100.0),
    sa.Column("updated_at", sa.Float, nullable=False),
)


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
    METADATA.create_all(engine)
