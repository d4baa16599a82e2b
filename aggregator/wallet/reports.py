"""Read-only views of the ledger for the admin API and the metrics collector.

Totals are computed in ONE statement so that they come from one snapshot: read in several
statements they could straddle a commit and report money that does not add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from aggregator.wallet import rules
from aggregator.wallet.rules import Entry, Kind
from aggregator.wallet.schema import transactions, users

_tx = transactions.c
_ROW_COLUMNS = (
    _tx.id,
    _tx.transaction_uuid,
    _tx.user_id,
    _tx.kind,
    _tx.round,
    _tx.reference_transaction_uuid,
    _tx.amount,
    _tx.delta,
    _tx.currency,
    _tx.status,
    _tx.balance,
    _tx.game_code,
    _tx.created_at,
)


def _scalar(column: Any, table: sa.Table, *where: Any) -> Any:
    return sa.select(sa.func.coalesce(column, 0)).select_from(table).where(*where).scalar_subquery()


_SUMMARY = sa.select(
    _scalar(sa.func.count(), users).label("users"),
    _scalar(sa.func.sum(users.c.initial_balance), users).label("initial_funds"),
    _scalar(sa.func.sum(users.c.balance), users).label("total_balance"),
    _scalar(sa.func.sum(-_tx.delta), transactions, _tx.kind == Kind.BET.value).label("bets"),
    _scalar(sa.func.sum(_tx.delta), transactions, _tx.kind == Kind.WIN.value).label("wins"),
    _scalar(sa.func.sum(_tx.delta), transactions, _tx.kind == Kind.ROLLBACK.value).label(
        "rollbacks"
    ),
    _scalar(sa.func.count(), transactions).label("transactions"),
)


def summary(engine: sa.Engine) -> dict[str, Any]:
    """Money totals in minor units; `consistent` is the ledger invariant
    total_balance == initial_funds - bets + wins + rollbacks."""
    with engine.connect() as conn:
        row = conn.execute(_SUMMARY).one()
    out = {key: int(value) for key, value in row._mapping.items()}
    expected = out["initial_funds"] - out["bets"] + out["wins"] + out["rollbacks"]
    out["consistent"] = out["total_balance"] == expected
    return out


def funds(engine: sa.Engine) -> tuple[int, int, int]:
    """(users, total balance, initial funds): cheap, from the users table only."""
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(users.c.balance), 0),
        sa.func.coalesce(sa.func.sum(users.c.initial_balance), 0),
    )
    with engine.connect() as conn:
        count, balance, initial = conn.execute(query).one()
    return int(count), int(balance), int(initial)


def rounds(engine: sa.Engine, *, after: str | None, limit: int) -> dict[str, Any]:
    """One page of rounds ordered by round id; `next` is the cursor of the following page."""
    names_query = sa.select(_tx.round).distinct().order_by(_tx.round).limit(limit)
    if after is not None:
        names_query = names_query.where(_tx.round > after)
    with engine.connect() as conn:
        names = list(conn.execute(names_query).scalars())
        rows = conn.execute(
            sa.select(*_ROW_COLUMNS).where(_tx.round.in_(names)).order_by(_tx.round, _tx.id)
        ).all()
    grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for row in rows:
        grouped[row.round].append(row_json(row))
    return {
        "rounds": [_round_json(name, grouped[name]) for name in names],
        "next": names[-1] if len(names) == limit else None,
    }


def _round_json(name: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_kind = {kind: [r for r in rows if r["kind"] == kind.value] for kind in Kind}
    return {
        "round": name,
        "state": round_state(rows),
        "bets": by_kind[Kind.BET],
        "wins": by_kind[Kind.WIN],
        "rollbacks": by_kind[Kind.ROLLBACK],
    }


def round_state(rows: Sequence[dict[str, Any]]) -> str:
    """The round's `rules.RoundState`, the one the ledger decides with and reconcile checks."""
    return rules.round_verdict(Entry.from_json(r) for r in rows).state.value


def user_detail(engine: sa.Engine, user: str, *, recent: int = 20) -> dict[str, Any] | None:
    with engine.connect() as conn:
        account = conn.execute(sa.select(users).where(users.c.user_id == user)).first()
        if account is None:
            return None
        moved, count = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(_tx.delta), 0), sa.func.count()).where(
                _tx.user_id == user
            )
        ).one()
        rows = conn.execute(
            sa.select(*_ROW_COLUMNS)
            .where(_tx.user_id == user)
            .order_by(_tx.id.desc())
            .limit(recent)
        ).all()
    return {
        "user": user,
        "currency": account.currency,
        "balance": account.balance,
        "initial_balance": account.initial_balance,
        "ledger_balance": account.initial_balance + int(moved),
        "transactions": int(count),
        "created_at": account.created_at,
        "recent": [row_json(r) for r in rows],
    }


def counts(engine: sa.Engine) -> dict[str, int]:
    query = sa.select(
        sa.select(sa.func.count()).select_from(users).scalar_subquery(),
        sa.select(sa.func.count()).select_from(transactions).scalar_subquery(),
    )
    with engine.connect() as conn:
        n_users, n_tx = conn.execute(query).one()
    return {"users": int(n_users), "transactions": int(n_tx)}


def row_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "transaction_uuid": row.transaction_uuid,
        "user": row.user_id,
        "kind": row.kind,
        "round": row.round,
        "reference_transaction_uuid": row.reference_transaction_uuid,
        "amount": row.amount,
        "delta": row.delta,
        "currency": row.currency,
        "status": row.status,
        "balance": row.balance,
        "game_code": row.game_code,
        "created_at": row.created_at,
    }
