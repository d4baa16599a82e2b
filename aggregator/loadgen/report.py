"""What the players saw, counted thread-safely, and the JSON report built from it.

The report shape is fixed by docs/aggregator-protocol.md ("Load generator"); reconciliation
reads `players` and `unknown_rounds` from it.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class LaunchOutcome(StrEnum):
    OK = "ok"
    FAILOVER = "failover"
    FAILED = "failed"


class RoundOutcome(StrEnum):
    SETTLED = "settled"
    FAILED = "failed"  # a definite answer: the round moved no money
    UNKNOWN = "unknown"  # no definite answer after every retry


@dataclass(frozen=True, kw_only=True)
class UnknownRound:
    round: str
    user: str
    bet: int
    last_error: str


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when there are none."""
    return _nearest_rank(sorted(values), q)


def _nearest_rank(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    summary: dict[str, float | int | None] = {
        f"p{q}": _rounded(_nearest_rank(ordered, q)) for q in (50, 90, 99)
    }
    summary["count"] = len(ordered)
    return summary


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class _Player:
    __slots__ = ("expected", "initial", "settled")

    def __init__(self, initial: int) -> None:
        self.initial = initial
        self.expected = initial
        self.settled = 0


class Stats:
    """Counters, latencies and per-player expected balances, shared by the worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._launches: Counter[str] = Counter()
        self._rounds: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._launch_ms: list[float] = []
        self._round_ms: list[float] = []
        self._recent_ms: list[float] = []
        self._lag_ms: list[float] = []
        self._players: dict[str, _Player] = {}
        self._unknown: list[UnknownRound] = []
        self._in_flight = 0
        self._retries = 0
        self._ticks = 0
        self._dropped = 0

    def player_joined(self, user: str, balance: int) -> None:
        with self._lock:
            self._players.setdefault(user, _Player(balance))

    def launch(self, outcome: LaunchOutcome, latency_ms: float | None, error: str = "") -> None:
        with self._lock:
            self._launches["attempted"] += 1
            self._launches[outcome.value] += 1
            if latency_ms is not None:
                self._launch_ms.append(latency_ms)
            if error:
                self._errors[f"launch:{error}"] += 1

    def round_started(self) -> None:
        with self._lock:
            self._rounds["attempted"] += 1
            self._in_flight += 1

    def round_retried(self) -> None:
        with self._lock:
            self._retries += 1

    def round_settled(self, user: str, bet: int, win: int, latency_ms: float) -> None:
        with self._lock:
            self._in_flight -= 1
            self._rounds["settled"] += 1
            self._round_ms.append(latency_ms)
            self._recent_ms.append(latency_ms)
            player = self._players[user]
            player.expected += win - bet
            player.settled += 1

    def round_failed(self, error: str, latency_ms: float) -> None:
        with self._lock:
            self._in_flight -= 1
            self._rounds["failed"] += 1
            self._round_ms.append(latency_ms)
            self._recent_ms.append(latency_ms)
            self._errors[f"round:{error}"] += 1

    def round_unknown(self, unknown: UnknownRound) -> None:
        with self._lock:
            self._in_flight -= 1
            self._rounds["unknown"] += 1
            self._unknown.append(unknown)

    def lag(self, late_ms: float) -> None:
        with self._lock:
            self._lag_ms.append(late_ms)

    def tick(self, dropped: bool) -> None:
        with self._lock:
            self._ticks += 1
            self._dropped += int(dropped)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                **{f"launches_{k}": v for k, v in self._launches.items()},
                **{f"rounds_{k}": v for k, v in self._rounds.items()},
                "in_flight": self._in_flight,
                "retries": self._retries,
                "dropped": self._dropped,
            }

    def take_recent_round_latencies(self) -> list[float]:
        """Round latencies since the last call (for the progress line)."""
        with self._lock:
            recent, self._recent_ms = self._recent_ms, []
        return recent

    def report(self, *, elapsed_s: float, target_rate: float) -> dict[str, Any]:
        with self._lock:
            settled = self._rounds["settled"] + self._rounds["failed"]
            return {
                "launches": {k.value: self._launches[k.value] for k in LaunchOutcome}
                | {"attempted": self._launches["attempted"]},
                "rounds": {"attempted": self._rounds["attempted"]}
                | {k.value: self._rounds[k.value] for k in RoundOutcome},
                "latency_ms": {
                    "launch": latency_summary(self._launch_ms),
                    "round": latency_summary(self._round_ms),
                    "schedule_lag": latency_summary(self._lag_ms),
                },
                "players": {
                    user: {
                        "expected_balance": p.expected,
                        "initial_balance": p.initial,
                        "rounds_settled": p.settled,
                    }
                    for user, p in sorted(self._players.items())
                },
                "unknown_rounds": [vars_of(u) for u in self._unknown],
                "errors": dict(sorted(self._errors.items())),
                "in_flight": self._in_flight,
                "retries": self._retries,
                "schedule": {"ticks": self._ticks, "dropped": self._dropped},
                "elapsed_s": round(elapsed_s, 3),
                "rate": {
                    "target": target_rate,
                    "achieved": round(settled / elapsed_s, 2) if elapsed_s > 0 else 0.0,
                },
            }


def vars_of(unknown: UnknownRound) -> dict[str, object]:
    return {
        "round": unknown.round,
        "user": unknown.user,
        "bet": unknown.bet,
        "last_error": unknown.last_error,
    }
