"""The round rules (docs/aggregator-protocol.md, "Rounds") as one table, run against the wallet
over HTTP (wallet/test_wallet_rounds.py) and against the reconciler (test_reconcile.py).

A case is a sequence of wallet calls, each with the answer the wallet must give, and the state
each round ends in. From the same case, `ledger_rounds` builds the rows the wallet must have
recorded (the wallet test checks its real rows equal them; the reconciler test classifies
them), and `accepted_rounds` the rows of a wallet that had accepted one refused call: a refusal
lists, in `if_accepted`, the problems the reconciler then reports. So each rule is shown on
both sides: the wallet refuses the call, and the reconciler catches a ledger that took it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

INITIAL = 1000  # every user's balance on first sight
USERS = ("p1", "p2")

OK = "RS_OK"
DUPLICATE = "RS_ERROR_DUPLICATE_TRANSACTION"
DOES_NOT_EXIST = "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
ROLLED_BACK = "RS_ERROR_TRANSACTION_ROLLED_BACK"
NOT_ENOUGH_MONEY = "RS_ERROR_NOT_ENOUGH_MONEY"
WRONG_CURRENCY = "RS_ERROR_WRONG_CURRENCY"


@dataclass(frozen=True, kw_only=True)
class Call:
    kind: str  # bet | win | rollback
    uuid: str
    amount: int
    ref: str | None = None
    round: str = "r1"
    user: str = "p1"
    currency: str = "EUR"
    status: str = OK  # the wallet's answer ...
    balance: int = INITIAL  # ... and the caller's balance in it
    if_accepted: frozenset[str] = frozenset()  # reconcile's problems had this been RS_OK

    @property
    def http(self) -> int:
        return 400 if self.status == WRONG_CURRENCY else 200

    def body(self) -> dict[str, Any]:
        body = {
            "user": self.user,
            "transaction_uuid": self.uuid,
            "round": self.round,
            "currency": self.currency,
            "amount": self.amount,
        }
        return body if self.ref is None else {**body, "reference_transaction_uuid": self.ref}


def bet(uuid: str, amount: int, status: str, balance: int, *problems: str, **kw: Any) -> Call:
    """A bet answered (status, balance); `problems`: reconcile's findings had it been RS_OK."""
    return Call(kind="bet", uuid=uuid, amount=amount, status=status, balance=balance,
                if_accepted=frozenset(problems), **kw)  # fmt: skip


def win(uuid: str, ref: str, *args: Any, **kw: Any) -> Call:
    return replace(bet(uuid, *args, **kw), kind="win", ref=ref)


def rollback(uuid: str, ref: str, *args: Any, **kw: Any) -> Call:
    return replace(bet(uuid, *args, **kw), kind="rollback", ref=ref)


@dataclass(frozen=True, kw_only=True)
class RoundCase:
    name: str
    calls: tuple[Call, ...]
    states: dict[str, str] = field(default_factory=dict)  # round -> state after the calls


TWICE, FOREIGN, OPEN, DUP_BET = "closed_twice", "foreign_settlement", "open_bet", "duplicate_bet"

# fmt: off
CASES = (
    RoundCase(name="a bet and its win settle the round", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 250, OK, 1150),
    )),
    RoundCase(name="a win of 0 closes a losing round", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 0, OK, 900),
    )),
    RoundCase(name="a rollback refunds what the bet took", states={"r1": "rolled_back"}, calls=(
        bet("b1", 100, OK, 900),
        rollback("x1", "b1", 999, OK, 1000),
    )),
    RoundCase(name="identical retries replay the first answer", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 250, OK, 1150),
        bet("b1", 100, OK, 900),
        win("w1", "b1", 250, OK, 1150),
    )),
    RoundCase(name="one win per bet", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 50, OK, 950),
        *(win(f"w{n}", "b1", 50, DUPLICATE, 950, TWICE) for n in range(2, 11)),
        win("w1", "b1", 50, OK, 950),
    )),
    RoundCase(name="no win after the rollback", states={"r1": "rolled_back"}, calls=(
        bet("b1", 100, OK, 900),
        rollback("x1", "b1", 100, OK, 1000),
        win("w1", "b1", 500, ROLLED_BACK, 1000, TWICE),
    )),
    RoundCase(name="no rollback after the win", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 300, OK, 1200),
        rollback("x1", "b1", 100, DUPLICATE, 1200, TWICE),
    )),
    RoundCase(name="one rollback per bet", states={"r1": "rolled_back"}, calls=(
        bet("b1", 100, OK, 900),
        rollback("x1", "b1", 100, OK, 1000),
        rollback("x1", "b1", 100, OK, 1000),
        rollback("x2", "b1", 100, ROLLED_BACK, 1000, TWICE),
    )),
    RoundCase(name="a win carries its bet's round", states={"r1": "settled", "r2": "rejected"},
              calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 200, DOES_NOT_EXIST, 900, FOREIGN, round="r2"),
        win("w2", "b1", 200, OK, 1100),
    )),
    RoundCase(name="a win carries its bet's user", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 200, DOES_NOT_EXIST, 1000, FOREIGN, TWICE, user="p2"),
        win("w2", "b1", 200, OK, 1100),
    )),
    RoundCase(name="a win carries its bet's currency", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        win("w1", "b1", 200, WRONG_CURRENCY, 900, FOREIGN, TWICE, currency="USD"),
        win("w2", "b1", 200, OK, 1100),
    )),
    RoundCase(name="a rollback carries its bet's round",
              states={"r1": "rolled_back", "r2": "tombstone"}, calls=(
        bet("b1", 100, OK, 900),
        rollback("x1", "b1", 100, DOES_NOT_EXIST, 900, FOREIGN, round="r2"),
        rollback("x2", "b1", 100, OK, 1000),
    )),
    RoundCase(name="a rollback carries its bet's user", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        rollback("x1", "b1", 100, DOES_NOT_EXIST, 1000, FOREIGN, TWICE, user="p2"),
        win("w1", "b1", 0, OK, 900),
    )),
    RoundCase(name="one bet per round", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        bet("b2", 100, DUPLICATE, 900, DUP_BET),
        win("w1", "b1", 100, OK, 1000),
        bet("b2", 100, DUPLICATE, 900),
    )),
    RoundCase(name="one bet per round, whoever bets", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        bet("b2", 100, DUPLICATE, 1000, DUP_BET, user="p2"),
        win("w1", "b1", 100, OK, 1000),
    )),
    RoundCase(name="a rollback before its bet leaves a tombstone", states={"r1": "tombstone"},
              calls=(
        rollback("x1", "b1", 100, DOES_NOT_EXIST, 1000),
        bet("b1", 100, ROLLED_BACK, 1000, OPEN),
        win("w1", "b1", 100, ROLLED_BACK, 1000, FOREIGN),
    )),
    RoundCase(name="a tombstone holds its round for its bet", states={"r1": "tombstone"}, calls=(
        rollback("x1", "b1", 100, DOES_NOT_EXIST, 1000),
        bet("b2", 100, DUPLICATE, 1000, OPEN),
    )),
    RoundCase(name="a win of an unknown bet", states={"r1": "rejected"}, calls=(
        win("w1", "nope", 100, DOES_NOT_EXIST, 1000, FOREIGN),
    )),
    RoundCase(name="a bet refused for money leaves nothing to settle",
              states={"r1": "rejected", "r2": "settled"}, calls=(
        bet("b1", 1001, NOT_ENOUGH_MONEY, 1000),
        win("w1", "b1", 100, DOES_NOT_EXIST, 1000, FOREIGN),
        rollback("x1", "b1", 1001, OK, 1000),
        rollback("x2", "b1", 1001, OK, 1000),
        bet("b2", 1000, OK, 0, round="r2"),
        win("w2", "b2", 0, OK, 0, round="r2"),
    )),
    RoundCase(name="a uuid reused with other fields", states={"r1": "settled"}, calls=(
        bet("b1", 100, OK, 900),
        bet("b1", 101, DUPLICATE, 900),
        win("b1", "b1", 100, DUPLICATE, 900),
        win("w1", "b1", 100, OK, 1000),
    )),
)
# fmt: on


def ledger_rounds(case: RoundCase) -> list[dict[str, Any]]:
    """The rounds as GET /admin/ledger/rounds shows them after the case's calls."""
    return _as_rounds(_rows(case.calls))


def accepted_rounds(case: RoundCase, index: int) -> list[dict[str, Any]]:
    """The rounds of a wallet that had answered RS_OK to call `index`, moving its money."""
    call = case.calls[index]
    taken = {c.uuid: c.amount for c in case.calls if c.kind == "bet" and c.status == OK}
    delta = {"bet": -call.amount, "win": call.amount}.get(call.kind, taken.get(call.ref or "", 0))
    calls = tuple(replace(c, status=OK) if i == index else c for i, c in enumerate(case.calls))
    return _as_rounds(_rows(calls, forced=(index, delta)))


def flippable(case: RoundCase) -> Iterator[tuple[int, Call]]:
    return ((i, c) for i, c in enumerate(case.calls) if c.if_accepted)


def _rows(calls: tuple[Call, ...], forced: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The ledger rows the calls leave: one per new uuid answered HTTP 200 (a repeat of a uuid
    is answered from its row or refused, never recorded again; a 400 records nothing). The
    `forced` call (index, delta) is recorded with that delta, the others as the wallet answered."""
    answered = dict.fromkeys(USERS, INITIAL)  # the balances the wallet answered
    extra = dict.fromkeys(USERS, 0)  # money the forced call moved on top
    rows: list[dict[str, Any]] = []
    for i, call in enumerate(calls):
        if any(r["transaction_uuid"] == call.uuid for r in rows):
            continue
        if forced is not None and forced[0] == i:
            delta = forced[1]
            extra[call.user] += delta
        elif call.http != 200:
            continue
        else:
            delta, answered[call.user] = call.balance - answered[call.user], call.balance
        balance = answered[call.user] + extra[call.user]
        rows.append(_row(len(rows) + 1, call, delta, balance))
    return rows


def _row(row_id: int, call: Call, delta: int, balance: int) -> dict[str, Any]:
    return {
        "id": row_id,
        "transaction_uuid": call.uuid,
        "user": call.user,
        "kind": call.kind,
        "round": call.round,
        "reference_transaction_uuid": call.ref,
        "amount": call.amount,
        "delta": delta,
        "currency": call.currency,
        "status": call.status,
        "balance": balance,
        "game_code": None,
    }


def _as_rounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["round"]].append(row)
    return [
        {
            "round": name,
            "bets": [r for r in grouped[name] if r["kind"] == "bet"],
            "wins": [r for r in grouped[name] if r["kind"] == "win"],
            "rollbacks": [r for r in grouped[name] if r["kind"] == "rollback"],
        }
        for name in sorted(grouped)
    ]


def comparable(rounds: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Rounds reduced to what the table predicts (no ids, timestamps, answered balances)."""
    keys = (
        "transaction_uuid",
        "user",
        "kind",
        "reference_transaction_uuid",
        "amount",
        "delta",
        "currency",
        "status",
    )
    return {
        entry["round"]: sorted(
            tuple(row[k] for k in keys)
            for kind in ("bets", "wins", "rollbacks")
            for row in entry[kind]
        )
        for entry in rounds
    }
