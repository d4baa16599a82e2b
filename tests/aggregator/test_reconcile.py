from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from aggregator.reconcile import Ledger, Problem, reconcile, round_facts
from tests.aggregator.round_cases import (
    CASES,
    RoundCase,
    accepted_rounds,
    flippable,
    ledger_rounds,
)

INITIAL = 1000


def row(kind: str, round_id: str, delta: int, status: str = "RS_OK", user: str = "p0") -> dict:
    return {
        "transaction_uuid": f"{round_id}:{kind}",
        "kind": kind,
        "round": round_id,
        "user": user,
        "reference_transaction_uuid": None if kind == "bet" else f"{round_id}:bet",
        "currency": "EUR",
        "delta": delta,
        "amount": abs(delta),
        "status": status,
    }


def rnd(round_id: str, *rows: dict[str, Any]) -> dict[str, Any]:
    return {
        "round": round_id,
        "bets": [r for r in rows if r["kind"] == "bet"],
        "wins": [r for r in rows if r["kind"] == "win"],
        "rollbacks": [r for r in rows if r["kind"] == "rollback"],
    }


def settled(round_id: str, bet: int = 100, win: int = 0, user: str = "p0") -> dict[str, Any]:
    return rnd(
        round_id, row("bet", round_id, -bet, user=user), row("win", round_id, win, user=user)
    )


def refunded(round_id: str, bet: int = 100) -> dict[str, Any]:
    return rnd(round_id, row("bet", round_id, -bet), row("rollback", round_id, bet))


def ledger(rounds: list[dict[str, Any]], balance: int | None = None) -> Ledger:
    net = sum(r["delta"] for e in rounds for k in ("bets", "wins", "rollbacks") for r in e[k])
    kinds = {
        k: sum(r["delta"] for e in rounds for r in e[k + "s"]) for k in ("bet", "win", "rollback")
    }
    actual = INITIAL + net if balance is None else balance
    return Ledger(
        summary={
            "users": 1,
            "initial_funds": INITIAL,
            "total_balance": actual,
            "bets": -kinds["bet"],
            "wins": kinds["win"],
            "rollbacks": kinds["rollback"],
            "transactions": sum(len(e[k]) for e in rounds for k in ("bets", "wins", "rollbacks")),
        },
        rounds=rounds,
        users={"p0": {"balance": actual, "ledger_balance": INITIAL + net}},
    )


def report(expected: int, settled_rounds: int, unknown: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "players": {"p0": {"expected_balance": expected, "rounds_settled": settled_rounds}},
        "unknown_rounds": [{"round": r, "user": "p0", "bet": 100} for r in unknown],
    }


def problems(result: Any) -> set[Problem]:
    return {m.problem for m in result.mismatches}


def test_a_clean_run_reconciles() -> None:
    rounds = [settled("r1", win=250), settled("r2"), refunded("r3")]
    result = reconcile(report(INITIAL + 150 - 100, 2), ledger(rounds))
    assert result.ok, result.mismatches
    assert result.rounds_checked == 3 and result.players_checked == 1
    assert result.as_json()["ok"] is True


@pytest.mark.parametrize(
    ("ledger_round", "net"),
    [
        (settled("u1", win=300), 200),  # bet + win: -bet + win
        (refunded("u1"), 0),  # bet + rollback: 0
        (None, 0),  # never reached the wallet: 0
    ],
)
def test_unknown_rounds_are_resolved_from_the_ledger(ledger_round: Any, net: int) -> None:
    rounds = [settled("r1", win=100)] + ([ledger_round] if ledger_round else [])
    result = reconcile(report(INITIAL, 1, unknown=["u1"]), ledger(rounds))
    assert result.ok, result.mismatches
    assert dict(result.unknown_resolved) == {"u1": net}


def test_a_lost_win_is_a_balance_mismatch() -> None:
    result = reconcile(report(INITIAL + 150, 1), ledger([settled("r1", win=150)], balance=INITIAL))
    assert Problem.BALANCE in problems(result)
    assert Problem.LEDGER_BALANCE in problems(result)
    assert Problem.SUMMARY in problems(result)
    assert not result.ok


def test_open_bets_and_double_closes_are_found() -> None:
    open_bet = rnd("r1", row("bet", "r1", -100))
    twice = rnd("r2", row("bet", "r2", -100), row("win", "r2", 50), row("rollback", "r2", 100))
    result = reconcile(report(INITIAL - 100 + 50, 1), ledger([open_bet, twice]))
    assert {(m.problem, m.subject) for m in result.mismatches} >= {
        (Problem.OPEN_BET, "r1"),
        (Problem.CLOSED_TWICE, "r2"),
    }


def test_a_round_the_player_saw_fail_but_the_ledger_paid() -> None:
    result = reconcile(report(INITIAL, 0), ledger([settled("r1", win=100)]))
    assert problems(result) == {Problem.SETTLED_COUNT}


def test_duplicate_transactions_and_unknown_players() -> None:
    dup = settled("r1")
    dup["bets"].append(dict(dup["bets"][0]))
    rep = report(INITIAL - 100, 1)
    rep["players"]["ghost"] = {"expected_balance": 1, "rounds_settled": 0}
    result = reconcile(rep, ledger([dup]))
    assert {Problem.DUPLICATE_TRANSACTION, Problem.DUPLICATE_BET, Problem.UNKNOWN_PLAYER} <= (
        problems(result)
    )


def test_rejected_bets_and_tombstones_are_closed() -> None:
    rejected = rnd("r1", row("bet", "r1", 0, status="RS_ERROR_NOT_ENOUGH_MONEY"))
    tombstone = rnd(
        "r2",
        row("rollback", "r2", 0, status="RS_ERROR_TRANSACTION_DOES_NOT_EXIST"),
        row("bet", "r2", 0, status="RS_ERROR_TRANSACTION_ROLLED_BACK"),
    )
    for entry in (rejected, tombstone):
        facts = round_facts(entry)
        assert facts.problems == () and facts.net == 0 and not facts.paid


def test_settled_counts_only_look_at_this_runs_rounds() -> None:
    rounds = [settled("old-p0-1", win=100), settled("new-p0-1", win=100)]
    rep = {**report(INITIAL, 1), "run_id": "new"}
    assert reconcile(rep, ledger(rounds)).ok
    assert not reconcile(report(INITIAL, 1), ledger(rounds)).ok


# The round rules of tests/aggregator/round_cases.py, the reconciler's half: the rows the wallet
# records for each case (its half checks its real rows are these) are closed rounds in the
# states the wallet reports; and a ledger that had accepted any one refused call is caught.


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_round_rules_the_wallet_keeps_reconcile(case: RoundCase) -> None:
    facts = [round_facts(entry) for entry in ledger_rounds(case)]
    assert [f.problems for f in facts] == [() for _ in facts]
    assert {f.round for f in facts} == set(case.states)


ACCEPTED = [
    pytest.param(case, index, id=f"{case.name} [{index}: {call.kind} {call.uuid}]")
    for case in CASES
    for index, call in flippable(case)
]


@pytest.mark.parametrize(("case", "index"), ACCEPTED)
def test_a_ledger_that_broke_a_round_rule_does_not_reconcile(case: RoundCase, index: int) -> None:
    found = {p for entry in accepted_rounds(case, index) for p, _ in round_facts(entry).problems}
    assert found == case.calls[index].if_accepted


def test_the_issue_ten_wins_and_a_win_in_another_round() -> None:
    """What the issue saw: ten RS_OK wins of one bet, and a win in another round than its bet."""
    bet = row("bet", "r1", -100)
    wins = [{**row("win", "r1", 50), "transaction_uuid": f"w{n}"} for n in range(10)]
    facts = round_facts(rnd("r1", bet, *wins))
    assert [p for p, _ in facts.problems] == [Problem.CLOSED_TWICE]
    assert "10 wins and 0 refunds" in facts.problems[0][1]
    stray = {**row("win", "r2", 50), "reference_transaction_uuid": "r1:bet"}
    rounds = [rnd("r1", bet), rnd("r2", stray)]
    assert {
        (m.problem, m.subject)
        for m in reconcile(report(INITIAL - 50, 1), ledger(rounds)).mismatches
    } >= {
        (Problem.OPEN_BET, "r1"),
        (Problem.FOREIGN_SETTLEMENT, "r2"),
    }
