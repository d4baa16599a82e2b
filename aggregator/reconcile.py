"""Reconciliation: does the operator wallet's ledger agree with what the players saw?

Checks, after the regions' retry queues have drained:
- every player's wallet balance equals the load generator's expectation, where a round whose
  outcome stayed unknown counts as the ledger says (bet+win: -bet+win; rolled back or absent: 0);
- every player's settled-round count matches the ledger's paid rounds;
- every round in the ledger is closed, by the definition the wallet decides with
  (`aggregator.wallet.rules.round_verdict`): one bet took its money and exactly one win or
  refund of that bet (same round, user and currency) settled it, or no money moved at all;
- no transaction uuid appears twice, and each user's balance equals initial + sum of deltas;
- the summary adds up: initial_funds - bets + wins + rollbacks == total_balance.

`python -m aggregator.reconcile --report FILE --wallet-url URL [--region-url URL ...]`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from aggregator.errors import AggregatorError
from aggregator.wallet.rules import (
    Breach,
    Entry,
    Kind,
    RoundState,
    RoundVerdict,
    round_verdict,
    settles,
)


class Problem(StrEnum):
    BALANCE = "balance"  # wallet balance != expectation
    SETTLED_COUNT = "settled_count"  # rounds the player saw settled != rounds the ledger paid
    UNKNOWN_PLAYER = "unknown_player"  # a reported player the wallet does not know
    OPEN_BET = "open_bet"  # bet taken, neither paid nor refunded
    # the round rules' breaches (rules.Breach), under the same names
    CLOSED_TWICE = "closed_twice"  # paid and refunded, or paid/refunded more than once
    DUPLICATE_BET = "duplicate_bet"  # one round took money more than once
    FOREIGN_SETTLEMENT = "foreign_settlement"  # a win or refund not of the round's bet
    DUPLICATE_TRANSACTION = "duplicate_transaction"  # one uuid on two rows
    LEDGER_BALANCE = "ledger_balance"  # a user's balance != initial + sum of its deltas
    SUMMARY = "summary"  # the summary's arithmetic does not hold


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    problem: Problem
    subject: str  # the user or round concerned
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"problem": self.problem.value, "subject": self.subject, "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class RoundFacts:
    """What the ledger says about one round."""

    round: str
    user: str
    net: int  # the round's total effect on the balance
    paid: bool
    problems: tuple[tuple[Problem, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Ledger:
    """The parts of the wallet the reconciliation reads, fetched once."""

    summary: Mapping[str, Any]
    rounds: Sequence[Mapping[str, Any]]
    users: Mapping[str, Mapping[str, Any] | None]  # None: the wallet does not know the user


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    mismatches: tuple[Mismatch, ...]
    players_checked: int
    rounds_checked: int
    transactions: int
    unknown_resolved: tuple[tuple[str, int], ...] = ()  # (round id, net effect from the ledger)
    summary: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "players_checked": self.players_checked,
            "rounds_checked": self.rounds_checked,
            "transactions": self.transactions,
            "unknown_resolved": dict(self.unknown_resolved),
            "mismatches": [m.as_json() for m in self.mismatches],
            "summary": dict(self.summary),
        }


def round_facts(entry: Mapping[str, Any]) -> RoundFacts:
    """Classify one round of GET /admin/ledger/rounds (rows under bets/wins/rollbacks)."""
    rows = sorted(
        (row for kind in ("bets", "wins", "rollbacks") for row in entry.get(kind) or []),
        key=lambda row: int(row.get("id") or 0),  # ledger order
    )
    entries = [Entry.from_json(row) for row in rows]
    verdict = round_verdict(entries)
    problems = [
        (Problem(breach.value), _breach_detail(breach, verdict)) for breach in verdict.breaches
    ]
    if verdict.state is RoundState.OPEN and verdict.bet is not None:
        problems.append((Problem.OPEN_BET, f"bet {verdict.bet.transaction_uuid!r} is open"))
    owner = verdict.bet or next(iter(entries), None)
    return RoundFacts(
        round=str(entry["round"]),
        user=owner.user if owner else "",
        net=sum(e.delta for e in entries),
        paid=any(e.kind is Kind.WIN for e in verdict.settlements),
        problems=tuple(problems),
    )


def _breach_detail(breach: Breach, verdict: RoundVerdict) -> str:
    if breach is Breach.DUPLICATE_BET:
        return f"{len(verdict.taken)} bets took money"
    wins = sum(1 for e in verdict.settlements if e.kind is Kind.WIN)
    if breach is Breach.CLOSED_TWICE:
        return f"{wins} wins and {len(verdict.settlements) - wins} refunds"
    foreign = [e.transaction_uuid for e in verdict.settlements if not settles(e, verdict.bet)]
    bet = verdict.bet.transaction_uuid if verdict.bet else None
    return f"{foreign!r} do not settle the round's bet {bet!r} (its uuid, round, user, currency)"


def reconcile(report: Mapping[str, Any], ledger: Ledger) -> Reconciliation:
    """Pure: compare a load generator report with a fetched ledger."""
    facts = {f.round: f for f in (round_facts(r) for r in ledger.rounds)}
    mismatches = [
        Mismatch(problem=p, subject=f.round, detail=d)
        for f in facts.values()
        for p, d in f.problems
    ]
    mismatches += _duplicate_uuids(ledger.rounds)
    mismatches += _summary_mismatches(ledger.summary)
    unknown = {str(u["round"]): u for u in report.get("unknown_rounds", [])}
    resolved = {rid: (facts[rid].net if rid in facts else 0) for rid in unknown}
    extra: Counter[str] = Counter()
    paid_extra: Counter[str] = Counter()
    for rid, u in unknown.items():
        extra[str(u["user"])] += resolved[rid]
        paid_extra[str(u["user"])] += int(rid in facts and facts[rid].paid)
    # a wallet shared by several runs holds their rounds too: count only this run's rounds
    prefix = f"{report['run_id']}-" if report.get("run_id") else ""
    paid_by_user = Counter(f.user for f in facts.values() if f.paid and f.round.startswith(prefix))
    players: Mapping[str, Mapping[str, Any]] = report.get("players", {})
    for user, seen in players.items():
        mismatches += _player_mismatches(
            user,
            seen,
            ledger.users.get(user),
            expected=int(seen["expected_balance"]) + extra[user],
            settled=int(seen.get("rounds_settled", 0)) + paid_extra[user],
            paid=paid_by_user[user],
        )
    return Reconciliation(
        mismatches=tuple(mismatches),
        players_checked=len(players),
        rounds_checked=len(facts),
        transactions=int(ledger.summary.get("transactions", 0)),
        unknown_resolved=tuple(sorted(resolved.items())),
        summary=dict(ledger.summary),
    )


def _player_mismatches(
    user: str,
    seen: Mapping[str, Any],
    account: Mapping[str, Any] | None,
    *,
    expected: int,
    settled: int,
    paid: int,
) -> list[Mismatch]:
    if account is None:
        return [Mismatch(problem=Problem.UNKNOWN_PLAYER, subject=user, detail="not in the wallet")]
    out = []
    balance = int(account["balance"])
    if balance != expected:
        detail = f"wallet {balance!r} != expected {expected!r} (diff {balance - expected:+d})"
        out.append(Mismatch(problem=Problem.BALANCE, subject=user, detail=detail))
    ledger_balance = account.get("ledger_balance")
    if ledger_balance is not None and int(ledger_balance) != balance:
        detail = f"balance {balance!r} != initial + deltas {ledger_balance!r}"
        out.append(Mismatch(problem=Problem.LEDGER_BALANCE, subject=user, detail=detail))
    if paid != settled:
        detail = f"player saw {settled!r} settled rounds, ledger paid {paid!r}"
        out.append(Mismatch(problem=Problem.SETTLED_COUNT, subject=user, detail=detail))
    return out


def _duplicate_uuids(rounds: Iterable[Mapping[str, Any]]) -> list[Mismatch]:
    seen = Counter(
        str(row.get("transaction_uuid"))
        for entry in rounds
        for kind in ("bets", "wins", "rollbacks")
        for row in entry.get(kind) or []
    )
    return [
        Mismatch(problem=Problem.DUPLICATE_TRANSACTION, subject=tx, detail=f"{n} rows")
        for tx, n in seen.items()
        if n > 1
    ]


def _summary_mismatches(summary: Mapping[str, Any]) -> list[Mismatch]:
    try:
        initial, balance = int(summary["initial_funds"]), int(summary["total_balance"])
        bets, wins, refunds = (int(summary[k]) for k in ("bets", "wins", "rollbacks"))
    except (KeyError, TypeError, ValueError) as exc:
        return [Mismatch(problem=Problem.SUMMARY, subject="summary", detail=f"unreadable: {exc}")]
    expected = initial - bets + wins + refunds
    if expected == balance:
        return []
    detail = (
        f"initial {initial} - bets {bets} + wins {wins} + refunds {refunds} = {expected}"
        f" != total balance {balance}"
    )
    return [Mismatch(problem=Problem.SUMMARY, subject="summary", detail=detail)]


class ReconcileError(AggregatorError):
    """The wallet or a region could not be read."""


def _get(session: requests.Session, url: str, token: str, **params: Any) -> Any:
    try:
        reply = session.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    except requests.RequestException as exc:
        raise ReconcileError(f"GET {url!r} failed: {exc}") from exc
    if reply.status_code == 404:
        return None
    if reply.status_code != 200:
        raise ReconcileError(f"GET {url!r} answered {reply.status_code}: {reply.text[:200]!r}")
    return reply.json()


def fetch_ledger(
    wallet_url: str, token: str, users: Iterable[str], *, session: requests.Session | None = None
) -> Ledger:
    own = session is None
    http = session or requests.Session()
    base = wallet_url.rstrip("/")
    try:
        summary = _get(http, f"{base}/admin/ledger/summary", token)
        rounds: list[Mapping[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": 1000, **({"after": cursor} if cursor else {})}
            page = _get(http, f"{base}/admin/ledger/rounds", token, **params)
            rounds += page["rounds"]
            cursor = page.get("next")
            if not cursor:
                break
        accounts = {u: _get(http, f"{base}/admin/users/{quote(u, safe='')}", token) for u in users}
    finally:
        if own:
            http.close()
    return Ledger(summary=summary, rounds=rounds, users=accounts)


def drain_queues(
    region_urls: Sequence[str],
    token: str,
    *,
    timeout_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Replay every region's wallet retry queue until it is empty; returns what is left."""
    left = {url: -1 for url in region_urls}
    deadline = clock() + timeout_s
    with requests.Session() as http:
        while True:
            for url in region_urls:
                left[url] = _replay(http, url.rstrip("/"), token)
            if all(n == 0 for n in left.values()) or clock() >= deadline:
                return left
            sleep(0.5)


def _replay(http: requests.Session, base: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    try:
        http.post(
            f"{base}/admin/wallet/queue/replay",
            json={"max_items": 1000},
            headers=headers,
            timeout=30,
        )
        queue = _get(http, f"{base}/admin/wallet/queue", token)
    except (requests.RequestException, ReconcileError):
        return -1  # unreachable counts as not drained
    return int(queue["depth"]) if queue else -1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aggregator.reconcile", description=__doc__)
    parser.add_argument("--report", required=True, help="the load generator's JSON report")
    parser.add_argument("--wallet-url", default="http://127.0.0.1:8200")
    parser.add_argument(
        "--region-url", action="append", default=[], help="drain this region's retry queue first"
    )
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    token = os.environ.get("AGGREGATOR_ADMIN_TOKEN", "")
    if not token:
        print("reconcile: set AGGREGATOR_ADMIN_TOKEN", file=sys.stderr)
        return 2
    report = json.loads(Path(args.report).read_text())
    if args.region_url:
        left = drain_queues(args.region_url, token, timeout_s=args.drain_timeout)
        if any(n != 0 for n in left.values()):
            print(f"reconcile: retry queues not drained: {left}", file=sys.stderr)
    try:
        ledger = fetch_ledger(args.wallet_url, token, report.get("players", {}))
    except ReconcileError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2
    result = reconcile(report, ledger)
    print(json.dumps(result.as_json(), indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
