"""The money rules of the ledger as pure decisions: given a wallet call, the user's balance
and the ledger rows that touch it, what status to answer and how much money moves; and, given
the rows of one round, what state the round is in (`round_verdict`, which the wallet's admin
reports and `aggregator.reconcile` use too, so all three agree on what a closed round is).

A round (Hub88 shape) is one bet and at most one settlement: a win, or a rollback that refunds
the bet. A win or rollback settles the bet named by its reference_transaction_uuid only when it
carries the bet's `round`, `user` and `currency`; anything else is not a transaction of that
bet. Rows that touch a call are those with its own `transaction_uuid`, the referenced bet, the
rows that reference the same bet, and the rows of its round. No IO here, so the table below can
be tested exhaustively.

- same uuid, identical fields                 -> the stored answer again, no money
- same uuid, any field different              -> RS_ERROR_DUPLICATE_TRANSACTION, no row
- bet after a rollback named it (tombstone)   -> RS_ERROR_TRANSACTION_ROLLED_BACK
- bet in a round that already names a bet     -> RS_ERROR_DUPLICATE_TRANSACTION (one bet a round)
- bet above the balance                       -> RS_ERROR_NOT_ENOUGH_MONEY
- win or rollback of no bet of its round, user and currency
                                              -> RS_ERROR_TRANSACTION_DOES_NOT_EXIST
                                                 (a rollback's row is then a tombstone)
- win of a bet that never took money          -> RS_ERROR_TRANSACTION_ROLLED_BACK if a tombstone
                                                 refused it, else ..._DOES_NOT_EXIST
- rollback of a bet that never took money     -> RS_OK, nothing to refund
- win or rollback of an open round            -> RS_OK: the win pays its amount, the rollback
                                                 refunds what the bet took (whatever its amount)
- win or rollback of a round already paid     -> RS_ERROR_DUPLICATE_TRANSACTION
- win or rollback of a round already refunded -> RS_ERROR_TRANSACTION_ROLLED_BACK
Every new answer except a uuid conflict is recorded, so a retry always gets the first answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "RS_OK"
    NOT_ENOUGH_MONEY = "RS_ERROR_NOT_ENOUGH_MONEY"
    DUPLICATE = "RS_ERROR_DUPLICATE_TRANSACTION"
    DOES_NOT_EXIST = "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
    ROLLED_BACK = "RS_ERROR_TRANSACTION_ROLLED_BACK"
    INVALID_TOKEN = "RS_ERROR_INVALID_TOKEN"
    UNKNOWN = "RS_ERROR_UNKNOWN"
    WRONG_SYNTAX = "RS_ERROR_WRONG_SYNTAX"
    WRONG_TYPES = "RS_ERROR_WRONG_TYPES"
    WRONG_CURRENCY = "RS_ERROR_WRONG_CURRENCY"


class Kind(StrEnum):
    BET = "bet"
    WIN = "win"
    ROLLBACK = "rollback"


@dataclass(frozen=True, kw_only=True)
class TxRequest:
    """A validated bet, win or rollback."""

    kind: Kind
    transaction_uuid: str
    user: str
    round: str
    amount: int
    currency: str
    reference: str | None = None  # reference_transaction_uuid: the bet, for win and rollback
    game_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One ledger row as the rules see it."""

    transaction_uuid: str
    kind: Kind
    user: str
    round: str
    amount: int
    currency: str
    reference: str | None
    game_code: str | None
    status: Status
    delta: int  # signed change of the user's balance this row made
    balance: int  # the balance answered with this row

    def same_request(self, req: TxRequest) -> bool:
        return (
            self.kind is req.kind
            and self.user == req.user
            and self.round == req.round
            and self.amount == req.amount
            and self.currency == req.currency
            and self.reference == req.reference
            and self.game_code == req.game_code
        )

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Entry:
        """A row as GET /admin/ledger/rounds shows it (`reports.row_json`)."""
        return cls(
            transaction_uuid=str(row["transaction_uuid"]),
            kind=Kind(row["kind"]),
            user=str(row["user"]),
            round=str(row["round"]),
            amount=int(row["amount"]),
            currency=str(row["currency"]),
            reference=row.get("reference_transaction_uuid"),
            game_code=row.get("game_code"),
            status=Status(row["status"]),
            delta=int(row["delta"]),
            balance=int(row.get("balance") or 0),
        )


class RoundState(StrEnum):
    """What the ledger says about one round. Every state but OPEN and INCONSISTENT is closed."""

    OPEN = "open"  # its bet took money; neither paid nor refunded yet
    SETTLED = "settled"  # closed by its one win (a win of 0 closes a losing round)
    ROLLED_BACK = "rolled_back"  # closed by the one rollback that refunded its bet
    TOMBSTONE = "tombstone"  # voided by a rollback that came before any bet took money
    REJECTED = "rejected"  # no bet took money and no rollback voided it
    INCONSISTENT = "inconsistent"  # breaks the round rules: this wallet never writes one


class Breach(StrEnum):
    """How a round's rows break the round rules (reconcile reports these as its problems)."""

    DUPLICATE_BET = "duplicate_bet"  # more than one bet of the round took money
    CLOSED_TWICE = "closed_twice"  # more than one win or refund settled the round
    FOREIGN_SETTLEMENT = "foreign_settlement"  # a win or refund not of this round's bet


@dataclass(frozen=True, kw_only=True)
class RoundVerdict:
    state: RoundState
    bet: Entry | None = None  # the bet that took the round's money
    taken: tuple[Entry, ...] = ()  # every bet of the round that took money (one, or a breach)
    settlements: tuple[Entry, ...] = ()  # every win and refund (at most one, or a breach)
    breaches: tuple[Breach, ...] = ()


def round_verdict(rows: Iterable[Entry]) -> RoundVerdict:
    """The state of the round whose ledger rows (all with one `round`) are `rows`."""
    rows = list(rows)
    taken = tuple(r for r in rows if r.kind is Kind.BET and r.status is Status.OK)
    unplaced = {
        r.transaction_uuid for r in rows if r.kind is Kind.BET and r.status is not Status.OK
    }
    settlements = tuple(
        r
        for r in rows
        if r.kind is not Kind.BET
        and r.status is Status.OK
        # the RS_OK of a rollback of a bet that never took money moves nothing and settles nothing
        and not (r.kind is Kind.ROLLBACK and r.reference in unplaced and r.delta == 0)
    )
    bet = taken[0] if taken else None
    breaches = []
    if len(taken) > 1:
        breaches.append(Breach.DUPLICATE_BET)
    if any(not settles(s, bet) for s in settlements):
        breaches.append(Breach.FOREIGN_SETTLEMENT)
    if len(settlements) > 1:
        breaches.append(Breach.CLOSED_TWICE)
    return RoundVerdict(
        state=_state(rows, bet, settlements, bool(breaches)),
        bet=bet,
        taken=taken,
        settlements=settlements,
        breaches=tuple(breaches),
    )


def _state(
    rows: Sequence[Entry], bet: Entry | None, settlements: Sequence[Entry], breached: bool
) -> RoundState:
    if breached:
        return RoundState.INCONSISTENT
    if bet is None:
        return RoundState.TOMBSTONE if any(map(_is_tombstone, rows)) else RoundState.REJECTED
    if not settlements:
        return RoundState.OPEN
    return RoundState.SETTLED if settlements[0].kind is Kind.WIN else RoundState.ROLLED_BACK


def settles(row: Entry, bet: Entry | None) -> bool:
    """Whether `row` is a transaction of `bet`: it names it, in its round, user and currency."""
    return (
        bet is not None
        and row.reference == bet.transaction_uuid
        and row.round == bet.round
        and row.user == bet.user
        and row.currency == bet.currency
    )


def _is_tombstone(row: Entry) -> bool:
    return row.kind is Kind.ROLLBACK and row.status is Status.DOES_NOT_EXIST


@dataclass(frozen=True, kw_only=True)
class Decision:
    status: Status
    delta: int = 0
    record: bool = True  # False: answer without writing a row
    replay: Entry | None = None  # the stored row a retry is answered from


def decide(req: TxRequest, related: Sequence[Entry], balance: int) -> Decision:
    existing = next((e for e in related if e.transaction_uuid == req.transaction_uuid), None)
    if existing is not None:
        if existing.same_request(req):
            return Decision(status=existing.status, record=False, replay=existing)
        return Decision(status=Status.DUPLICATE, record=False)
    rows = [e for e in related if e.round == req.round]
    if req.kind is Kind.BET:
        return _bet(req, related, rows, balance)
    bet = next(
        (e for e in rows if e.kind is Kind.BET and e.transaction_uuid == req.reference), None
    )
    if bet is None or (bet.user, bet.currency) != (req.user, req.currency):
        # no bet of this round, user and currency: for a rollback, its row is the tombstone
        return Decision(status=Status.DOES_NOT_EXIST)
    if bet.status is not Status.OK:
        if req.kind is Kind.ROLLBACK:
            return Decision(status=Status.OK)  # nothing was taken, nothing to refund
        refused = bet.status is Status.ROLLED_BACK
        return Decision(status=Status.ROLLED_BACK if refused else Status.DOES_NOT_EXIST)
    verdict = round_verdict(rows)
    if verdict.state is RoundState.OPEN:
        return Decision(status=Status.OK, delta=req.amount if req.kind is Kind.WIN else -bet.delta)
    if verdict.state is RoundState.ROLLED_BACK:
        return Decision(status=Status.ROLLED_BACK)
    return Decision(status=Status.DUPLICATE)  # paid already: another transaction settled it


def _bet(req: TxRequest, related: Sequence[Entry], rows: Sequence[Entry], balance: int) -> Decision:
    tombstoned = any(
        e.kind is Kind.ROLLBACK and e.reference == req.transaction_uuid and e.user == req.user
        for e in related
    )
    if tombstoned:
        return Decision(status=Status.ROLLED_BACK)
    # one bet a round: a round that already names a bet, by a bet row or a tombstone, has it
    named = {e.transaction_uuid for e in rows if e.kind is Kind.BET}
    named |= {str(e.reference) for e in rows if _is_tombstone(e)}
    if named - {req.transaction_uuid}:
        return Decision(status=Status.DUPLICATE)
    if req.amount > balance:
        return Decision(status=Status.NOT_ENOUGH_MONEY)
    return Decision(status=Status.OK, delta=-req.amount)
