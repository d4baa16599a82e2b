"""The money rules of the ledger as one pure decision: given a wallet call, the user's balance
and the ledger rows that touch it, what status to answer and how much money moves.

Rows that touch a call are those with its own `transaction_uuid`, the referenced bet, and the
rows that reference the same bet (its wins and rollbacks; for a bet, tombstones naming it).
The ledger fetches them in one query and this module decides; no IO here, so the table below
can be tested exhaustively.

- same uuid, identical fields                 -> the stored answer again, no money
- same uuid, any field different              -> RS_ERROR_DUPLICATE_TRANSACTION, no row
- bet after a rollback named it (tombstone)   -> RS_ERROR_TRANSACTION_ROLLED_BACK
- bet above the balance                       -> RS_ERROR_NOT_ENOUGH_MONEY
- win of an unknown or failed bet             -> RS_ERROR_TRANSACTION_DOES_NOT_EXIST
- win of a rolled-back bet                    -> RS_ERROR_TRANSACTION_ROLLED_BACK
- rollback of an unknown bet                  -> RS_ERROR_TRANSACTION_DOES_NOT_EXIST (tombstone)
- rollback of a bet that took no money        -> RS_OK, nothing to refund
- rollback of a bet whose round was paid      -> RS_ERROR_DUPLICATE_TRANSACTION
- rollback of a bet already refunded          -> RS_OK, nothing more refunded
- rollback otherwise                          -> RS_OK, refunds what the bet took
Every new answer except a uuid conflict is recorded, so a retry always gets the first answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


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
    if req.kind is Kind.BET:
        return _bet(req, related, balance)
    bet = next(
        (
            e
            for e in related
            if e.transaction_uuid == req.reference and e.kind is Kind.BET and e.user == req.user
        ),
        None,
    )
    followers = [
        e
        for e in related
        if e.reference == req.reference and e.user == req.user and e.status is Status.OK
    ]
    if req.kind is Kind.WIN:
        return _win(req, bet, followers)
    return _rollback(bet, followers)


def _bet(req: TxRequest, related: Sequence[Entry], balance: int) -> Decision:
    tombstoned = any(
        e.kind is Kind.ROLLBACK and e.reference == req.transaction_uuid and e.user == req.user
        for e in related
    )
    if tombstoned:
        return Decision(status=Status.ROLLED_BACK)
    if req.amount > balance:
        return Decision(status=Status.NOT_ENOUGH_MONEY)
    return Decision(status=Status.OK, delta=-req.amount)


def _win(req: TxRequest, bet: Entry | None, followers: Sequence[Entry]) -> Decision:
    if bet is None:
        return Decision(status=Status.DOES_NOT_EXIST)
    if bet.status is Status.ROLLED_BACK:
        return Decision(status=Status.ROLLED_BACK)
    if bet.status is not Status.OK:
        # the bet was answered but never took money (not enough money): nothing to win on
        return Decision(status=Status.DOES_NOT_EXIST)
    if any(e.kind is Kind.ROLLBACK for e in followers):
        return Decision(status=Status.ROLLED_BACK)
    return Decision(status=Status.OK, delta=req.amount)


def _rollback(bet: Entry | None, followers: Sequence[Entry]) -> Decision:
    if bet is None:
        return Decision(status=Status.DOES_NOT_EXIST)  # the row is the tombstone
    if bet.status is not Status.OK:
        return Decision(status=Status.OK)
    if any(e.kind is Kind.WIN for e in followers):
        return Decision(status=Status.DUPLICATE)
    if any(e.kind is Kind.ROLLBACK for e in followers):
        return Decision(status=Status.OK)
    return Decision(status=Status.OK, delta=-bet.delta)
