"""The region's metrics: counters and histograms on its own registry, and a custom Collector that
reads live state (queue, isolation, breakers, sessions, faults) at scrape time.

Names and labels follow docs/design.md. Outcome labels:
- casino_provider_requests_total: ok | error | timeout | rejected (breaker open or isolated)
- casino_game_launches_total: ok | failover | failed
- casino_rounds_total: settled | win_pending | declined (the wallet refused the bet or win) |
  rejected (isolated, breaker open or provider not served here; no money moved) |
  wallet_unavailable | provider_unavailable
- casino_wallet_requests_total: ok | declined (a business status) | error | timeout
- casino_wallet_queue_replayed_total: settled | failed
- casino_failover_events_total kind: breaker_open | provider_failover
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator.faults import Fault

# every label value the region can emit, exported at 0 from the start: rate() and increase()
# need a sample before the first event, or they miss it (and alert on it a scrape late)
PROVIDER_OPERATIONS = ("launch", "round")
PROVIDER_OUTCOMES = ("ok", "error", "timeout", "rejected")
LAUNCH_OUTCOMES = ("ok", "failover", "failed")
ROUND_OUTCOMES = (
    "settled", "win_pending", "declined", "rejected", "wallet_unavailable", "provider_unavailable"
)  # fmt: skip
WALLET_OPERATIONS = ("balance", "bet", "win", "rollback")
WALLET_OUTCOMES = ("ok", "declined", "error", "timeout")
REPLAY_OUTCOMES = ("settled", "failed")
FAILOVER_KINDS = ("breaker_open", "provider_failover")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RegionMetrics:
    """The event-driven metrics; each method is cheap enough for the per-round hot path."""

    def __init__(self, region: str, registry: CollectorRegistry) -> None:
        self.region = region
        self.provider_requests = Counter(
            "casino_provider_requests",
            "Calls to game providers by outcome.",
            ["region", "provider", "operation", "outcome"],
            registry=registry,
        )
        self.provider_duration = Histogram(
            "casino_provider_request_duration_seconds",
            "Latency of provider calls (the simulated latency; a timeout observes the timeout).",
            ["region", "provider", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.launches = Counter(
            "casino_game_launches",
            "Game launches by the provider that got them and outcome.",
            ["region", "provider", "outcome"],
            registry=registry,
        )
        self.rounds = Counter(
            "casino_rounds",
            "Player rounds by provider and outcome.",
            ["region", "provider", "outcome"],
            registry=registry,
        )
        self.wallet_requests = Counter(
            "casino_wallet_requests",
            "Calls to the operator wallet by operation and outcome.",
            ["region", "operation", "outcome"],
            registry=registry,
        )
        self.wallet_duration = Histogram(
            "casino_wallet_request_duration_seconds",
            "Latency of operator wallet calls.",
            ["region", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_replayed = Counter(
            "casino_wallet_queue_replayed",
            "Wallet retry queue items sent again, by outcome.",
            ["region", "outcome"],
            registry=registry,
        )
        self.failovers = Counter(
            "casino_failover_events",
            "Failover events: a breaker opening or a launch moved to another provider.",
            ["region", "kind"],
            registry=registry,
        )

    def preset(self, providers: Iterable[str]) -> None:
        """Create every known series at 0 (see the label tables above)."""
        r = self.region
        for provider in providers:
            for op in PROVIDER_OPERATIONS:
                for outcome in PROVIDER_OUTCOMES:
                    self.provider_requests.labels(r, provider, op, outcome)
            for outcome in LAUNCH_OUTCOMES:
                self.launches.labels(r, provider, outcome)
            for outcome in ROUND_OUTCOMES:
                self.rounds.labels(r, provider, outcome)
        for op in WALLET_OPERATIONS:
            for outcome in WALLET_OUTCOMES:
                self.wallet_requests.labels(r, op, outcome)
        for outcome in REPLAY_OUTCOMES:
            self.queue_replayed.labels(r, outcome)
        for kind in FAILOVER_KINDS:
            self.failovers.labels(r, kind)

    def provider_call(
        self, provider: str, operation: str, outcome: str, latency_s: float | None
    ) -> None:
        self.provider_requests.labels(self.region, provider, operation, outcome).inc()
        if latency_s is not None:
            self.provider_duration.labels(self.region, provider, operation).observe(latency_s)

    def launch(self, provider: str, outcome: str) -> None:
        self.launches.labels(self.region, provider, outcome).inc()

    def round(self, provider: str, outcome: str) -> None:
        self.rounds.labels(self.region, provider, outcome).inc()

    def wallet_call(self, operation: str, outcome: str, duration_s: float | None) -> None:
        self.wallet_requests.labels(self.region, operation, outcome).inc()
        if duration_s is not None:
            self.wallet_duration.labels(self.region, operation).observe(duration_s)

    def replayed(self, outcome: str, count: int = 1) -> None:
        if count:
            self.queue_replayed.labels(self.region, outcome).inc(count)

    def failover(self, kind: str) -> None:
        self.failovers.labels(self.region, kind).inc()


class ActiveSessions:
    """Game sessions seen (launched or played) within the last `window_s`, per provider.

    Sessions are signed tokens held by the client, so "active" can only mean "recently used".
    """

    def __init__(
        self,
        *,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        prune_above: int = 100_000,
    ) -> None:
        self._window = window_s
        self._clock = clock
        self._prune_above = prune_above
        self._seen: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def touch(self, session_id: str, provider: str) -> None:
        now = self._clock()
        with self._lock:
            self._seen[session_id] = (provider, now)
            if len(self._seen) > self._prune_above:  # nobody scrapes: keep memory bounded
                self._prune(now)

    def _prune(self, now: float) -> None:
        cutoff = now - self._window
        for sid in [s for s, (_, at) in self._seen.items() if at < cutoff]:
            del self._seen[sid]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            self._prune(self._clock())
            for provider, _ in self._seen.values():
                counts[provider] = counts.get(provider, 0) + 1
        return counts


@dataclass(frozen=True, kw_only=True)
class LiveState:
    """Where the state-derived gauges read from, as callables evaluated at scrape time."""

    providers: tuple[str, ...]
    queue_stats: Callable[[], tuple[int, float | None]]  # depth, oldest age in seconds
    isolated: Callable[[], Mapping[str, bool]]
    canary_percent: Callable[[], Mapping[str, float]]
    breaker_states: Callable[[], Mapping[str, int]]
    active_sessions: Callable[[], Mapping[str, int]]
    faults: Callable[[], Iterable[Fault]]
    region_down: Callable[[], bool]


class StateCollector(Collector):
    def __init__(self, region: str, live: LiveState) -> None:
        self._region = region
        self._live = live

    def collect(self) -> Iterator[Metric]:
        region, live = self._region, self._live
        depth, oldest = live.queue_stats()
        yield _gauge(
            "casino_wallet_queue_depth",
            "Wallet calls waiting in the retry queue.",
            [([region], depth)],
        )
        yield _gauge(
            "casino_wallet_queue_oldest_age_seconds",
            "Age of the oldest item waiting in the wallet retry queue (0 when empty).",
            [([region], oldest or 0.0)],
        )
        isolated, canary = live.isolated(), live.canary_percent()
        breakers, sessions = live.breaker_states(), live.active_sessions()
        per_provider = [
            ("casino_provider_isolated", "1 while the provider is isolated.", isolated, 0),
            ("casino_provider_canary_percent", "Share of new launches allowed.", canary, 100),
            ("casino_circuit_breaker_state", "0 closed, 1 open, 2 half-open.", breakers, 0),
            ("casino_active_sessions", "Sessions used in the last 5 minutes.", sessions, 0),
        ]
        for name, doc, values, default in per_provider:
            rows = [([region, p], float(values.get(p, default))) for p in live.providers]
            yield _gauge(name, doc, rows, labels=("region", "provider"))
        active: dict[str, int] = {}
        for fault in live.faults():
            active[fault.kind.value] = active.get(fault.kind.value, 0) + 1
        yield _gauge(
            "casino_faults_active",
            "Injected faults currently active, by kind.",
            [([region, kind], n) for kind, n in sorted(active.items())],
            labels=("region", "kind"),
        )
        yield _gauge(
            "casino_region_down",
            "1 while a region_down fault is active.",
            [([region], 1.0 if live.region_down() else 0.0)],
        )


def _gauge(
    name: str,
    documentation: str,
    rows: Iterable[tuple[list[str], float]],
    labels: tuple[str, ...] = ("region",),
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in rows:
        family.add_metric(values, value)
    return family
