"""The money path: apply a wallet call to the ledger in one database transaction.

Each call reads the user's row (locked FOR UPDATE on PostgreSQL; on SQLite one in-process
writer at a time, so no thread ever meets SQLITE_BUSY) and the ledger rows that touch it (its
uuid, its bet, the bet's other transactions, its round), asks `rules.decide`, then updates the
balance and appends the row before one COMMIT: a process killed at any instant leaves both or
neither. This runs for every bet, win and rollback, so `apply` sends its four statements as
plain SQL on the DBAPI cursor of the SQLAlchemy connection (inside its transaction):
SQLAlchemy Core's per-statement cache-key and result machinery cost more than the database
work itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from aggregator.wallet import rules
from aggregator.wallet.rules import Entry, Kind, Status, TxRequest
from aggregator.wallet.schema import is_sqlite, transactions, users

T = TypeVar("T")

_SELECT_USER = sa.select(
    users.c.balance, users.c.currency, users.c.initial_balance, users.c.created_at
).where(users.c.user_id == sa.bindparam("p_user"))
_INSERT_USER = users.insert()

# the columns `_entry` reads, in its order
_ENTRY_COLUMNS = (
    "transaction_uuid, kind, user_id, round, amount, currency, reference_transaction_uuid,"
    " game_code, status, delta, balance"
)
# the columns `_row` writes, in its order
_ROW_COLUMNS = (
    "transaction_uuid",
    "user_id",
    "kind",
    "round",
    "reference_transaction_uuid",
    "amount",
    "delta",
    "currency",
    "status",
    "balance",
    "game_code",
    "created_at",
)


@dataclass(frozen=True, kw_only=True)
class _Sql:
    """The hot statements in the engine's DBAPI parameter style."""

    lock_user: str
    related: str
    set_balance: str
    insert_tx: str

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> _Sql:
        sqlite = is_sqlite(engine)
        p = "?" if sqlite else "%s"  # sqlite3: qmark; psycopg: format
        tx = transactions.name
        values = ", ".join([p] * len(_ROW_COLUMNS))
        return cls(
            # SQLite has no FOR UPDATE: the in-process writer lock covers it
            lock_user=f"SELECT balance, currency FROM {users.name} WHERE user_id = {p}"
            + ("" if sqlite else " FOR UPDATE"),
            related=f"SELECT {_ENTRY_COLUMNS} FROM {tx} WHERE transaction_uuid = {p}"
            f" OR transaction_uuid = {p} OR reference_transaction_uuid = {p} OR round = {p}",
            set_balance=f"UPDATE {users.name} SET balance = {p} WHERE user_id = {p}",
            insert_tx=f"INSERT INTO {tx} ({', '.join(_ROW_COLUMNS)}) VALUES ({values})",
        )


@dataclass(frozen=True, kw_only=True)
class Account:
    user: str
    currency: str
    balance: int
    initial_balance: int
    created_at: float


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The answer to one wallet call."""

    status: Status
    balance: int
    currency: str
    replayed: bool = False  # a retry answered from the stored row


class Ledger:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        initial_balance: int,
        currency: str,
        clock: Callable[[], float] = time.time,
        attempts: int = 3,
    ) -> None:
        self.engine = engine
        self._initial_balance = initial_balance
        self._currency = currency
        self._clock = clock
        self._attempts = attempts
        self._serial = threading.Lock() if is_sqlite(engine) else None
        self._writer: sa.Connection | None = None  # SQLite: the one writer connection
        self._sql = _Sql.for_engine(engine)
        # statements sent on the DBAPI cursor raise the driver's own IntegrityError
        self._conflicts = (sa.exc.IntegrityError, engine.dialect.loaded_dbapi.IntegrityError)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        if self._serial is None:
            with self.engine.begin() as conn:
                yield conn
            return
        # SQLite has one writer at a time anyway: keeping its connection checked out saves
        # the pool's checkout and reset on every call, a third of the hot path.
        with self._serial:
            if self._writer is None or self._writer.closed or self._writer.invalidated:
                self._writer = self.engine.connect()
            with self._writer.begin():
                yield self._writer

    def close(self) -> None:
        if self._serial is None:
            return
        with self._serial:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def _retrying(self, work: Callable[[sa.Connection], T]) -> T:
        # Two writers racing for one new transaction_uuid (or one new user) on PostgreSQL: the
        # loser's INSERT violates the unique key; on retry it sees the winner's row and answers
        # from it, as for any duplicate.
        for attempt in range(1, self._attempts + 1):
            try:
                with self._write() as conn:
                    return work(conn)
            except self._conflicts:
                if attempt == self._attempts:
                    raise
        raise AssertionError("unreachable")

    def register(self, user: str) -> Account:
        """The user's account, created with the initial balance on first sight."""
        return self._retrying(lambda conn: self._register(conn, user))

    def _register(self, conn: sa.Connection, user: str) -> Account:
        row = conn.execute(_SELECT_USER, {"p_user": user}).first()
        if row is not None:
            return _account(user, row)
        account = Account(
            user=user,
            currency=self._currency,
            balance=self._initial_balance,
            initial_balance=self._initial_balance,
            created_at=self._clock(),
        )
        conn.execute(
            _INSERT_USER,
            {
                "user_id": user,
                "currency": account.currency,
                "balance": account.balance,
                "initial_balance": account.initial_balance,
                "created_at": account.created_at,
            },
        )
        return account

    def account(self, user: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(_SELECT_USER, {"p_user": user}).first()
        return None if row is None else _account(user, row)

    def apply(self, req: TxRequest) -> Outcome:
        return self._retrying(lambda conn: self._apply(conn, req))

    def _apply(self, conn: sa.Connection, req: TxRequest) -> Outcome:
        sql, cursor = self._sql, conn.connection.cursor()
        try:
            cursor.execute(sql.lock_user, (req.user,))
            user = cursor.fetchone()
            if user is None:
                # a signed token for a user this wallet never registered (database reset)
                return Outcome(status=Status.INVALID_TOKEN, balance=0, currency=req.currency)
            user_balance, currency = user
            if currency != req.currency:
                return Outcome(
                    status=Status.WRONG_CURRENCY, balance=user_balance, currency=currency
                )
            ref = req.reference or req.transaction_uuid
            cursor.execute(sql.related, (req.transaction_uuid, ref, ref, req.round))
            related = [_entry(row) for row in cursor.fetchall()]
            decision = rules.decide(req, related, user_balance)
            if decision.replay is not None:
                stored = decision.replay
                return Outcome(
                    status=stored.status,
                    balance=stored.balance,
                    currency=stored.currency,
                    replayed=True,
                )
            balance = user_balance + decision.delta
            if decision.delta:
                cursor.execute(sql.set_balance, (balance, req.user))
            if decision.record:
                cursor.execute(sql.insert_tx, _row(req, decision, balance, self._clock()))
            return Outcome(status=decision.status, balance=balance, currency=currency)
        finally:
            cursor.close()


def _account(user: str, row: Any) -> Account:
    return Account(
        user=user,
        currency=row.currency,
        balance=row.balance,
        initial_balance=row.initial_balance,
        created_at=row.created_at,
    )


def _entry(row: tuple[Any, ...]) -> Entry:
    uuid, kind, user, round_id, amount, currency, reference, game_code, status, delta, balance = row
    return Entry(
        transaction_uuid=uuid,
        kind=Kind(kind),
        user=user,
        round=round_id,
        amount=amount,
        currency=currency,
        reference=reference,
        game_code=game_code,
        status=Status(status),
        delta=delta,
        balance=balance,
    )


def _row(req: TxRequest, decision: rules.Decision, balance: int, now: float) -> tuple[Any, ...]:
    """The values of a new ledger row, in `_ROW_COLUMNS` order."""
    return (
        req.transaction_uuid,
        req.user,
        req.kind.value,
        req.round,
        req.reference,
        req.amount,
        decision.delta,
        req.currency,
        decision.status.value,
        balance,
        req.game_code,
        now,
    )
