"""Property-based: random sequences of bets, wins, rollbacks, retries and conflicting duplicates
across a few users and rounds (second bets in a round, settlements from another round), against a plain-Python model of the wallet, on SQLite and on
PostgreSQL. The ledger invariants are checked after every step."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from aggregator.wallet.ledger import Ledger
from aggregator.wallet.rules import Kind, Status, TxRequest
from aggregator.wallet.schema import make_engine, transactions, users
from tests.aggregator.wallet.wallet_checks import balances, check_ledger

USERS = ("u1", "u2", "u3")
INITIAL = 500
SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

user_ids = st.sampled_from(USERS)
round_ids = st.integers(0, 9)
amounts = st.integers(0, 400)
variants = st.sampled_from(("", "2"))


@dataclass
class Model:
    """What the wallet should answer, written from the protocol's round and ledger rules."""

    balance: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USERS, INITIAL))
    answers: dict[str, tuple[TxRequest, Status, int]] = field(default_factory=dict)
    taken: dict[str, int] = field(default_factory=dict)  # bet uuid -> amount it took
    tombstones: set[tuple[str, str]] = field(default_factory=set)
    named: dict[str, set[str]] = field(default_factory=dict)  # round -> bet uuids it names
    closed: dict[str, Kind] = field(default_factory=dict)  # bet uuid -> what settled it

    def apply(self, req: TxRequest) -> tuple[Status, int]:
        if req.transaction_uuid in self.answers:
            first, status, balance = self.answers[req.transaction_uuid]
            if first == req:
                return status, balance
            return Status.DUPLICATE, self.balance[req.user]
        status = {Kind.BET: self._bet, Kind.WIN: self._settle, Kind.ROLLBACK: self._settle}[
            req.kind
        ](req)
        self.answers[req.transaction_uuid] = (req, status, self.balance[req.user])
        return status, self.balance[req.user]

    def _bet(self, req: TxRequest) -> Status:
        named = self.named.setdefault(req.round, set())
        if (req.user, req.transaction_uuid) in self.tombstones:
            named.add(req.transaction_uuid)
            return Status.ROLLED_BACK
        if named - {req.transaction_uuid}:  # one bet a round
            named.add(req.transaction_uuid)
            return Status.DUPLICATE
        named.add(req.transaction_uuid)
        if req.amount > self.balance[req.user]:
            return Status.NOT_ENOUGH_MONEY
        self.balance[req.user] -= req.amount
        self.taken[req.transaction_uuid] = req.amount
        return Status.OK

    def _the_bet(self, req: TxRequest) -> tuple[TxRequest, Status] | None:
        """The bet `req` references, if it is one of the same round, user and currency."""
        first = self.answers.get(req.reference or "")
        if first is None or first[0].kind is not Kind.BET:
            return None
        bet = first[0]
        if (bet.round, bet.user, bet.currency) != (req.round, req.user, req.currency):
            return None
        return bet, first[1]

    def _settle(self, req: TxRequest) -> Status:
        found, ref = self._the_bet(req), str(req.reference)
        if found is None:
            if req.kind is Kind.ROLLBACK:
                self.tombstones.add((req.user, ref))
                self.named.setdefault(req.round, set()).add(ref)
            return Status.DOES_NOT_EXIST
        if found[1] is not Status.OK:
            if req.kind is Kind.ROLLBACK:
                return Status.OK
            return Status.ROLLED_BACK if found[1] is Status.ROLLED_BACK else Status.DOES_NOT_EXIST
        if ref in self.closed:
            return Status.DUPLICATE if self.closed[ref] is Kind.WIN else Status.ROLLED_BACK
        self.closed[ref] = req.kind
        self.balance[req.user] += req.amount if req.kind is Kind.WIN else self.taken[ref]
        return Status.OK


class WalletMachine(RuleBasedStateMachine):
    engine: sa.Engine  # set per database by the test

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as conn:
            conn.execute(transactions.delete())
            conn.execute(users.delete())
        self.ledger = Ledger(self.engine, initial_balance=INITIAL, currency="EUR")
        for user in USERS:
            self.ledger.register(user)
        self.model = Model()
        self.sent: list[TxRequest] = []

    def teardown(self) -> None:
        self.ledger.close()

    def send(self, req: TxRequest) -> None:
        expected = self.model.apply(req)
        outcome = self.ledger.apply(req)
        assert (outcome.status, outcome.balance) == expected, req
        self.sent.append(req)

    def _owner(self, rnd: int, user: str, same_user: bool) -> str:
        """The user who bet on round `rnd` (when asked and known), else `user`."""
        first = self.model.answers.get(f"r{rnd}:bet")
        return first[0].user if same_user and first is not None else user

    @rule(user=user_ids, rnd=round_ids, amount=amounts, variant=variants)
    def bet(self, user: str, rnd: int, amount: int, variant: str) -> None:
        self.send(_req(Kind.BET, f"r{rnd}:bet{variant}", user, rnd, amount, None))

    @rule(user=user_ids, rnd=round_ids, amount=amounts, variant=variants, same=st.booleans())
    def win(self, user: str, rnd: int, amount: int, variant: str, same: bool) -> None:
        owner = self._owner(rnd, user, same)
        self.send(_req(Kind.WIN, f"r{rnd}:win{variant}", owner, rnd, amount, f"r{rnd}:bet"))

    @rule(user=user_ids, rnd=round_ids, amount=amounts, variant=variants, same=st.booleans())
    def rollback(self, user: str, rnd: int, amount: int, variant: str, same: bool) -> None:
        owner = self._owner(rnd, user, same)
        uuid = f"r{rnd}:rollback{variant}"
        self.send(_req(Kind.ROLLBACK, uuid, owner, rnd, amount, f"r{rnd}:bet"))

    @rule(pick=st.integers(min_value=0), win=st.booleans(), amount=amounts, variant=variants)
    def settle_a_taken_bet(self, pick: int, win: bool, amount: int, variant: str) -> None:
        """Win or roll back a bet that took money: the races the round rules are about."""
        if not self.model.taken:
            return
        bet_uuid = sorted(self.model.taken)[pick % len(self.model.taken)]
        first = self.model.answers[bet_uuid][0]
        kind = Kind.WIN if win else Kind.ROLLBACK
        uuid = f"{first.round}:{kind.value}{variant}"
        self.send(
            replace(first, kind=kind, transaction_uuid=uuid, amount=amount, reference=bet_uuid)
        )

    @rule(rnd=round_ids, other=round_ids, win=st.booleans(), amount=amounts)
    def settle_in_another_round(self, rnd: int, other: int, win: bool, amount: int) -> None:
        """A win or rollback naming round `rnd`'s bet, from round `other` (maybe the same)."""
        kind = Kind.WIN if win else Kind.ROLLBACK
        owner = self._owner(rnd, USERS[0], True)
        uuid = f"r{other}:{kind.value}:stray{rnd}"
        self.send(_req(kind, uuid, owner, other, amount, f"r{rnd}:bet"))

    @rule(pick=st.integers(min_value=0))
    def retry(self, pick: int) -> None:
        if self.sent:
            self.send(self.sent[pick % len(self.sent)])

    @rule(pick=st.integers(min_value=0), bump=st.integers(1, 50), other_user=user_ids)
    def conflicting_duplicate(self, pick: int, bump: int, other_user: str) -> None:
        if not self.sent:
            return
        first = self.sent[pick % len(self.sent)]
        changed = replace(first, amount=first.amount + bump)
        if other_user != first.user and bump % 2:
            changed = replace(first, user=other_user)
        before = balances(self.engine)
        self.send(changed)
        assert balances(self.engine) == before, "a conflicting duplicate moved money"

    @invariant()
    def money_adds_up(self) -> None:
        check_ledger(self.engine)
        assert balances(self.engine) == self.model.balance


def _req(kind: Kind, uuid: str, user: str, rnd: int, amount: int, ref: str | None) -> TxRequest:
    return TxRequest(
        kind=kind,
        transaction_uuid=uuid,
        user=user,
        round=f"r{rnd}",
        amount=amount,
        currency="EUR",
        reference=ref,
    )


def _run(url: str) -> None:
    engine = make_engine(url, pool_size=2)
    machine = type("Machine", (WalletMachine,), {"engine": engine})
    try:
        run_state_machine_as_test(machine, settings=SETTINGS)
    finally:
        engine.dispose()


def test_ledger_matches_model_on_sqlite(sqlite_url: str) -> None:
    _run(sqlite_url)


@pytest.mark.postgres
def test_ledger_matches_model_on_postgres(postgres_schema: str) -> None:
    _run(postgres_schema)
