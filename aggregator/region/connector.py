"""The wallet connector: the region's HTTP client for the operator wallet (Hub88 shape).

Every call either returns a definite answer (RS_OK or a business status) or raises
WalletCallError: timeout, connection error, 5xx, an unreadable body, or RS_ERROR_UNKNOWN (the
wallet itself does not know what happened, so the call must be retried, never taken as final).

The region-side wallet faults are applied here, as the protocol doc says: `wallet_errors`
fails the call with probability `magnitude` without sending it; `wallet_timeout` sends it and
discards the answer with probability `magnitude`, so the wallet may well have applied it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aggregator.errors import WalletCallError
from aggregator.faults import FaultBook, FaultKind
from aggregator.httpclient import HttpCallError, KeepAliveClient
from aggregator.region.metrics import RegionMetrics

RS_OK = "RS_OK"
RS_ERROR_UNKNOWN = "RS_ERROR_UNKNOWN"

PATHS = {
    "bet": "/transaction/bet",
    "win": "/transaction/win",
    "rollback": "/transaction/rollback",
    "balance": "/user/balance",
}


@dataclass(frozen=True, kw_only=True)
class WalletAnswer:
    status: str
    balance: int | None
    http_status: int

    @property
    def ok(self) -> bool:
        return self.status == RS_OK


def make_pool(maxsize: int = 32) -> KeepAliveClient:
    # the client never retries: a call is sent at most once here; the round flow and the
    # retry queue decide what to do with an unknown outcome
    return KeepAliveClient(maxsize=maxsize)


class WalletConnector:
    def __init__(
        self,
        base_url: str,
        *,
        region: str,
        timeout_s: float,
        faults: FaultBook,
        metrics: RegionMetrics,
        rng: random.Random,
        pool: KeepAliveClient | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._http = pool if pool is not None else make_pool()
        self._urls = {op: base_url.rstrip("/") + path for op, path in PATHS.items()}
        self._region = region
        self._timeout_s = timeout_s
        self._faults = faults
        self._metrics = metrics
        self._rng = rng
        self._timer = timer

    def close(self) -> None:
        self._http.close()

    def call(self, operation: str, payload: Mapping[str, Any]) -> WalletAnswer:
        """One wallet call: a definite answer or WalletCallError."""
        if self._fault_hits(FaultKind.WALLET_ERRORS):
            self._metrics.wallet_call(operation, "error", None)
            raise WalletCallError(f"{operation}: injected wallet_errors fault, call not sent")
        discard = self._fault_hits(FaultKind.WALLET_TIMEOUT)
        started = self._timer()
        try:
            response = self._http.request(
                "POST", self._urls[operation], body=json.dumps(payload).encode(),
                timeout=self._timeout_s,
            )  # fmt: skip
        except HttpCallError as exc:
            # a refused connection counts as a timeout, as it did under urllib3 (whose
            # NewConnectionError is a ConnectTimeoutError): the metrics keep their meaning
            outcome = "timeout" if exc.timeout or exc.refused else "error"
            self._metrics.wallet_call(operation, outcome, self._timer() - started)
            what = "timed out" if outcome == "timeout" else "unreachable"
            raise WalletCallError(f"{operation}: wallet {what}: {exc}") from exc
        elapsed = self._timer() - started
        if discard:
            self._metrics.wallet_call(operation, "timeout", self._timeout_s)
            raise WalletCallError(f"{operation}: injected wallet_timeout fault, answer discarded")
        answer = self._read(operation, response.status, response.body, elapsed)
        outcome = "ok" if answer.ok else "declined"
        self._metrics.wallet_call(operation, outcome, elapsed)
        return answer

    def _read(self, operation: str, http_status: int, data: bytes, elapsed: float) -> WalletAnswer:
        status: object = None
        balance: object = None
        if http_status < 500:
            try:
                body = json.loads(data)
                status, balance = body.get("status"), body.get("balance")
            except (ValueError, AttributeError, RecursionError):  # not a Hub88 answer
                status = None
        if not isinstance(status, str) or status == RS_ERROR_UNKNOWN:
            self._metrics.wallet_call(operation, "error", elapsed)
            raise WalletCallError(
                f"{operation}: no definite answer from the wallet "
                f"(HTTP {http_status}, status {status!r})"
            )
        if isinstance(balance, bool) or not isinstance(balance, int):
            balance = None
        return WalletAnswer(status=status, balance=balance, http_status=http_status)

    def _fault_hits(self, kind: FaultKind) -> bool:
        fault = self._faults.find(kind, self._region)
        return fault is not None and self._rng.random() < fault.magnitude

    def bet(self, payload: Mapping[str, Any]) -> WalletAnswer:
        return self.call("bet", payload)

    def win(self, payload: Mapping[str, Any]) -> WalletAnswer:
        return self.call("win", payload)

    def rollback(self, payload: Mapping[str, Any]) -> WalletAnswer:
        return self.call("rollback", payload)
