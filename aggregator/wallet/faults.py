"""Faults the wallet can inject into its own answers, on top of aggregator.faults.

- wallet_errors: answer HTTP 500 with probability `magnitude`, before the ledger is touched;
- wallet_timeout: apply the call, then stall `magnitude` seconds (capped) before answering, so
  a caller that gives up early does not know whether its money moved: the case its rollbacks
  and retry queue exist for.

Target: one operation (`bet`, `win`, `rollback`, `balance`), or `wallet` / `*` for all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from aggregator.errors import NotFound
from aggregator.faults import Fault, FaultBook, FaultKind, parse_fault_request

KINDS = (FaultKind.WALLET_TIMEOUT, FaultKind.WALLET_ERRORS)
TARGETS = ("*", "wallet", "bet", "win", "rollback", "balance")


class WalletFaults:
    def __init__(
        self,
        book: FaultBook,
        *,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        max_stall_s: float = 10.0,
    ) -> None:
        self.book = book
        self._rng = rng
        self._sleep = sleep
        self._max_stall = max_stall_s

    def add(self, body: dict[str, Any]) -> Fault:
        kind, target, magnitude, duration = parse_fault_request(body, KINDS)
        if target not in TARGETS:
            raise NotFound(
                f"unknown wallet fault target {target!r}; use one of {list(TARGETS)}",
                code="unknown_target",
            )
        return self.book.add(kind, target, magnitude, duration)

    def _find(self, kind: FaultKind, operation: str) -> Fault | None:
        hits = [f for f in (self.book.find(kind, operation), self.book.find(kind, "wallet")) if f]
        return max(hits, key=lambda f: f.magnitude, default=None)

    def fails(self, operation: str) -> bool:
        """Whether this call answers HTTP 500 (decided before any money moves)."""
        fault = self._find(FaultKind.WALLET_ERRORS, operation)
        return fault is not None and self._rng() < fault.magnitude

    def stall(self, operation: str) -> float:
        """Sleep for an active wallet_timeout on `operation`; the seconds stalled."""
        fault = self._find(FaultKind.WALLET_TIMEOUT, operation)
        if fault is None or fault.magnitude <= 0:
            return 0.0
        seconds = min(fault.magnitude, self._max_stall)
        self._sleep(seconds)
        return seconds
