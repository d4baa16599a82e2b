"""The wallet's own metrics registry: per-call counters and latency, plus the money state
(users, balances, active faults) read from the source of truth at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aggregator.faults import FaultBook, FaultKind

# The region times wallet calls out at about 1 s: resolution below that is what matters.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WalletMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "casino_wallet_operator_requests_total",
            "Operator wallet calls answered, by operation and RS_ status.",
            ["operation", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "casino_wallet_operator_request_duration_seconds",
            "Time to answer an operator wallet call, injected stalls included.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        self.replays = Counter(
            "casino_wallet_operator_replays_total",
            "Calls answered from the ledger row of an earlier identical call (retries).",
            ["operation"],
            registry=registry,
        )

    def observe(self, operation: str, status: str, seconds: float, *, replayed: bool) -> None:
        self.requests.labels(operation, status).inc()
        self.duration.labels(operation).observe(seconds)
        if replayed:
            self.replays.labels(operation).inc()


class WalletStateCollector(Collector):
    """Users, money and faults, read when scraped so they never drift from the database."""

    def __init__(self, funds: Callable[[], tuple[int, int, int]], faults: FaultBook) -> None:
        self._funds = funds
        self._faults = faults

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # values come from the database at collect time only

    def collect(self) -> Iterator[GaugeMetricFamily]:
        n_users, balance, initial = self._funds()
        yield GaugeMetricFamily("casino_wallet_users", "Users known to the wallet.", value=n_users)
        yield GaugeMetricFamily(
            "casino_wallet_balance_total_minor",
            "Sum of all users' balances, minor units.",
            value=balance,
        )
        yield GaugeMetricFamily(
            "casino_wallet_initial_funds_minor",
            "Sum of the balances credited to users on first sight, minor units.",
            value=initial,
        )
        active = GaugeMetricFamily(
            "casino_wallet_faults_active", "Injected faults now active.", labels=["kind"]
        )
        faults = self._faults.active()
        for kind in (FaultKind.WALLET_TIMEOUT, FaultKind.WALLET_ERRORS):
            active.add_metric([kind.value], sum(1 for f in faults if f.kind is kind))
        yield active
