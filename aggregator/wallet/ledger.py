"""The money path: apply a wallet call to the ledger in one database transaction.

Each call reads the user's row (locked FOR UPDATE on PostgreSQL; on SQLite one in-process
writer at a time, so no thread ever meets SQLITE_BUSY) and the ledger rows that touch it, asks
`rules.decide`, then updates the balance and appends the row before one COMMIT: a process
killed at any instant leaves both or neither. SQLAlchemy Core with statements built once,
because this runs for every bet, win and rollback.
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

_tx = transactions.c
_SELECT_USER = sa.select(
    users.c.balance, users.c.currency, users.c.initial_balance, users.c.created_at
).where(users.c.user_id == sa.bindparam("p_user"))
_LOCK_USER = _SELECT_USER.with_for_update()  # SQLite renders no FOR UPDATE: the lock covers it
_RELATED = sa.select(
    _tx.transaction_uuid,
    _tx.kind,
    _tx.user_id,
    _tx.round,
    _tx.amount,
    _tx.currency,
    _tx.reference_transaction_uuid,
    _tx.game_code,
    _tx.status,
    _tx.delta,
    _tx.balance,
).where(
    sa.or_(
        _tx.transaction_uuid == sa.bindparam("p_uuid"),
        _tx.transaction_uuid == sa.bindparam("p_ref"),
        _tx.reference_transaction_uuid == sa.bindparam("p_ref"),
    )
)
_SET_BALANCE = (
    users.update()
    .where(users.c.user_id == sa.bindparam("p_user"))
    .values(balance=sa.bindparam("p_balance"))
)
_INSERT_TX = transactions.insert()
_INSERT_USER = users.insert()


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
            except sa.exc.IntegrityError:
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
        user = conn.execute(_LOCK_USER, {"p_user": req.user}).first()
        if user is None:
            # a signed token for a user this wallet never registered (database reset)
            return Outcome(status=Status.INVALID_TOKEN, balance=0, currency=req.currency)
        if user.currency != req.currency:
            return Outcome(
                status=Status.WRONG_CURRENCY, balance=user.balance, currency=user.currency
            )
        params = {"p_uuid": req.transaction_uuid, "p_ref": req.reference or req.transaction_uuid}
        related = [_entry(row) for row in conn.execute(_RELATED, params)]
        decision = rules.decide(req, related, user.balance)
        if decision.replay is not None:
            stored = decision.replay
            return Outcome(
                status=stored.status,
                balance=stored.balance,
                currency=stored.currency,
                replayed=True,
            )
        balance = user.balance + decision.delta
        if decision.delta:
            conn.execute(_SET_BALANCE, {"p_user": req.user, "p_balance": balance})
        if decision.record:
            conn.execute(_INSERT_TX, _row(req, decision, balance, self._clock()))
        return Outcome(status=decision.status, balance=balance, currency=user.currency)


def _account(user: str, row: Any) -> Account:
    return Account(
        user=user,
        currency=row.currency,
        balance=row.balance,
        initial_balance=row.initial_balance,
        created_at=row.created_at,
    )


def _entry(row: Any) -> Entry:
    return Entry(
        transaction_uuid=row.transaction_uuid,
        kind=Kind(row.kind),
        user=row.user_id,
        round=row.round,
        amount=row.amount,
        currency=row.currency,
        reference=row.reference_transaction_uuid,
        game_code=row.game_code,
        status=Status(row.status),
        delta=row.delta,
        balance=row.balance,
    )


def _row(req: TxRequest, decision: rules.Decision, balance: int, now: float) -> dict[str, Any]:
    return {
        "transaction_uuid": req.transaction_uuid,
        "user_id": req.user,
        "kind": req.kind.value,
        "round": req.round,
        "reference_transaction_uuid": req.reference,
        "amount": req.amount,
        "delta": decision.delta,
        "currency": req.currency,
        "status": decision.status.value,
        "balance": balance,
        "game_code": req.game_code,
        "created_at": now,
    }
