"""Ledger checks shared by the wallet tests: the money invariants, read from the rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from aggregator.wallet.schema import transactions, users


def ledger_rows(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(transactions).order_by(transactions.c.id)))


def balances(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r.user_id: r.balance for r in conn.execute(sa.select(users))}


def check_ledger(engine: sa.Engine) -> list[Any]:
    """The money invariants, from the rows themselves; returns the rows for further checks."""
    rows = ledger_rows(engine)
    with engine.connect() as conn:
        accounts = list(conn.execute(sa.select(users)))
    for account in accounts:
        moved = sum(r.delta for r in rows if r.user_id == account.user_id)
        assert account.balance == account.initial_balance + moved, account.user_id
        assert account.balance >= 0
    bets = -sum(r.delta for r in rows if r.kind == "bet")
    wins = sum(r.delta for r in rows if r.kind == "win")
    refunds = sum(r.delta for r in rows if r.kind == "rollback")
    initial = sum(a.initial_balance for a in accounts)
    assert sum(a.balance for a in accounts) == initial - bets + wins + refunds
    uuids = [r.transaction_uuid for r in rows]
    assert len(uuids) == len(set(uuids)), "a transaction_uuid applied twice"
    ok = [r for r in rows if r.status == "RS_OK"]
    paid = {r.reference_transaction_uuid for r in ok if r.kind == "win"}
    refunded = [r.reference_transaction_uuid for r in ok if r.kind == "rollback" and r.delta]
    assert not paid & set(refunded), "a round both paid and refunded"
    assert len(refunded) == len(set(refunded)), "a bet refunded twice"
    taken = {r.transaction_uuid: -r.delta for r in ok if r.kind == "bet"}
    for r in ok:
        if r.kind == "rollback" and r.delta:
            assert r.delta == taken[r.reference_transaction_uuid], "refund differs from the bet"
    return rows
