"""Many threads racing on the same rounds: identical retries, a win against a rollback of the
same bet, one transaction_uuid claimed by several users. SQLite (one writer, no SQLITE_BUSY)
and PostgreSQL (row locks, unique-key races retried)."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aggregator.wallet.ledger import Ledger
from aggregator.wallet.rules import Kind, Status, TxRequest
from aggregator.wallet.schema import make_engine
from tests.aggregator.wallet.wallet_checks import check_ledger

THREADS = 8
ROUNDS = 24
USERS = [f"u{n}" for n in range(4)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Ledger]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_schema")
    engine = make_engine(url, pool_size=THREADS)
    ledger = Ledger(engine, initial_balance=10_000, currency="EUR")
    yield ledger
    ledger.close()
    engine.dispose()


def run_threads(work: Callable[[int], None]) -> None:
    """work(0..THREADS-1) in threads; any exception in one of them fails the test."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # reported below: a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def _tx(kind: Kind, uuid: str, user: str, rnd: str, amount: int, ref: str | None) -> TxRequest:
    return TxRequest(
        kind=kind,
        transaction_uuid=uuid,
        user=user,
        round=rnd,
        amount=amount,
        currency="EUR",
        reference=ref,
    )


def _operations() -> list[TxRequest]:
    ops: list[TxRequest] = []
    for n in range(ROUNDS):
        user, rnd = USERS[n % len(USERS)], f"r{n}"
        ops.append(_tx(Kind.BET, f"{rnd}:bet", user, rnd, 100, None))
        ops.append(_tx(Kind.WIN, f"{rnd}:win", user, rnd, 10 * n, f"{rnd}:bet"))
        ops.append(_tx(Kind.ROLLBACK, f"{rnd}:rollback", user, rnd, 100, f"{rnd}:bet"))
    # one uuid, four owners: exactly one may take the money
    ops += [_tx(Kind.BET, "contested", user, "contested", 7, None) for user in USERS]
    return ops


def test_threads_racing_on_the_same_rounds(ledger: Ledger) -> None:
    for user in USERS:
        ledger.register(user)
    answers: dict[tuple[str, str], set[tuple[Status, int]]] = defaultdict(set)
    guard = threading.Lock()

    def work(seed: int) -> None:
        ops = _operations()
        random.Random(seed).shuffle(ops)
        for req in ops:
            outcome = ledger.apply(req)
            with guard:
                answers[(req.transaction_uuid, req.user)].add((outcome.status, outcome.balance))

    run_threads(work)
    rows = check_ledger(ledger.engine)
    contested = [r for r in rows if r.transaction_uuid == "contested"]
    assert len(contested) == 1 and contested[0].status == Status.OK
    for (uuid, user), seen in answers.items():
        if uuid == "contested" and user != contested[0].user_id:
            assert {status for status, _ in seen} == {Status.DUPLICATE}
        else:
            assert len(seen) == 1, f"{uuid} by {user} got different answers: {seen}"
    _assert_closed_at_most_once(rows)


def _assert_closed_at_most_once(rows: list[Any]) -> None:
    for n in range(ROUNDS):
        closing = [
            r.kind for r in rows if r.round == f"r{n}" and r.status == Status.OK and r.kind != "bet"
        ]
        assert len(closing) <= 1, f"round r{n} closed twice: {closing}"


def test_one_uuid_claimed_by_many_users_at_once(ledger: Ledger) -> None:
    """Every thread bets the same uuids, in the same order, each for its own user."""
    start = threading.Barrier(THREADS)
    statuses: dict[str, list[Status]] = defaultdict(list)

    def work(k: int) -> None:
        ledger.register(f"b{k}")
        start.wait(timeout=30)
        for n in range(20):
            req = _tx(Kind.BET, f"x{n}", f"b{k}", f"x{n}", 5, None)
            statuses[req.transaction_uuid].append(ledger.apply(req).status)

    run_threads(work)
    check_ledger(ledger.engine)
    for uuid, seen in statuses.items():
        assert sorted(seen) == sorted([Status.OK] + [Status.DUPLICATE] * (THREADS - 1)), uuid


def test_one_round_bet_by_many_users_at_once(ledger: Ledger) -> None:
    """Every thread bets its own uuid in the same rounds, each for its own user: one bet a
    round takes money (on PostgreSQL the users' row locks do not order them; the index does)."""
    start = threading.Barrier(THREADS)
    statuses: dict[str, list[Status]] = defaultdict(list)

    def work(k: int) -> None:
        ledger.register(f"c{k}")
        start.wait(timeout=30)
        for n in range(20):
            req = _tx(Kind.BET, f"y{n}-c{k}", f"c{k}", f"y{n}", 5, None)
            statuses[req.round].append(ledger.apply(req).status)

    run_threads(work)
    check_ledger(ledger.engine)
    for rnd, seen in statuses.items():
        assert sorted(seen) == sorted([Status.OK] + [Status.DUPLICATE] * (THREADS - 1)), rnd
