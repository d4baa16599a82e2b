"""The wallet's tables and the engine that holds them.

SQLite by default (one file, WAL so readers never block the writer), PostgreSQL by URL. The
ledger is append-only: one row per transaction_uuid, never updated; the users table carries the
running balance, changed in the same database transaction as the row that explains it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from aggregator.errors import ConfigError
from aggregator.wallet.rules import Kind, Status

metadata = sa.MetaData()

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY
_row_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "wallet_users",
    metadata,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("initial_balance", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),  # UTC epoch seconds
    sa.CheckConstraint("balance >= 0", name="wallet_users_balance_not_negative"),
)

transactions = sa.Table(
    "wallet_transactions",
    metadata,
    sa.Column("id", _row_id, primary_key=True, autoincrement=True),
    sa.Column("transaction_uuid", sa.String(128), nullable=False, unique=True),
    sa.Column("user_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("round", sa.String(128), nullable=False, index=True),
    sa.Column("reference_transaction_uuid", sa.String(128), nullable=True, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),  # as requested
    sa.Column("delta", sa.BigInteger, nullable=False),  # what the balance actually moved
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("status", sa.String(48), nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),  # the balance answered, for replays
    sa.Column("game_code", sa.String(128), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),  # UTC epoch seconds
)

# One bet a round (rules.py). A user's calls are serialized by the lock on the user's row, but
# two users betting in one round would not see each other's uncommitted bet on PostgreSQL: the
# later INSERT hits this index, and the ledger's retry then sees the first bet and refuses. On
# SQLite the one writer already serializes every call, and the index would cost 7% of a call.
_TAKEN = (transactions.c.kind == Kind.BET.value) & (transactions.c.status == Status.OK.value)
one_bet_per_round = sa.Index(
    "wallet_transactions_one_bet_per_round",
    transactions.c.round,
    unique=True,
    postgresql_where=_TAKEN,
).ddl_if(dialect="postgresql")


def make_engine(url: str, *, pool_size: int = 16) -> sa.Engine:
    """An engine for `url` with the tables created (idempotent)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"wallet database URL {url!r} is not a SQLAlchemy URL") from exc
    options: dict[str, Any] = {"pool_pre_ping": False}
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_path(parsed.database)
        options.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=30)
    else:
        options.update(pool_size=pool_size, max_overflow=4, pool_timeout=30)
    engine = sa.create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    _add_round_index(engine)
    return engine


def _add_round_index(engine: sa.Engine) -> None:
    """create_all adds indexes to new tables only: a wallet database from before the index
    gets it here, unless its rows already break the rule."""
    try:
        one_bet_per_round.create(engine, checkfirst=True)
    except sa.exc.IntegrityError as exc:
        engine.dispose()
        raise ConfigError(
            f"wallet database {engine.url.render_as_string(hide_password=True)!r} has a round"
            " with two bets that took money; reconcile it, or start on a new database"
        ) from exc


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _prepare_sqlite_path(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError(
            f"the wallet needs a SQLite file shared by its threads, got database {database!r}"
        )
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        # WAL: readers never block the writer; NORMAL: a commit survives a killed process
        # (only a power cut may lose the last commits), without an fsync per transaction.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()
