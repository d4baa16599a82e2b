"""Ingest throughput: exposition parse + store append, in samples per second on one core.

    .venv/bin/python benchmarks/ingest.py [--seconds 3]

Bodies:
- aggregator: what one bundled-aggregator region exposes (docs/design.md metric names,
  2 regions x 8 providers, latency histograms), generated with prometheus_client registries;
  one body per region, counters moving between scrapes as under load;
- 50k: a 50,000-series body (histogram buckets of many providers and games).
Paths timed, each over many scrapes of fresh bodies (values change every scrape):
- `prometheus_client`: text_string_to_metric_families alone (the reference parser);
- `parse`: our parser alone (fast path, per-line fallback);
- `parse+append`: Scraper.ingest = parse, label, append to the store, staleness tracking.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.collect.exposition import ExpositionParser
from controlplane.collect.scrape import Scraper, ScrapeTarget
from controlplane.tsdb.store import Store

REGIONS = ("eu", "latam")
PROVIDERS = tuple(f"provider{i}" for i in range(1, 9))
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class AggregatorExposition:
    """A region's /metrics with the documented names; `advance()` simulates one interval."""

    def __init__(self, region: str, seed: int = 1) -> None:
        self.region = region
        self.rng = random.Random(seed)
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "casino_provider_requests",
            "Provider calls.",
            ["region", "provider", "operation", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "casino_provider_request_duration_seconds",
            "Provider latency.",
            ["region", "provider", "operation"],
            buckets=BUCKETS,
            registry=r,
        )
        self.launches = Counter(
            "casino_game_launches", "Launches.", ["region", "provider", "outcome"], registry=r
        )
        self.rounds = Counter(
            "casino_rounds", "Rounds.", ["region", "provider", "outcome"], registry=r
        )
        self.wallet = Counter(
            "casino_wallet_requests",
            "Wallet calls.",
            ["region", "operation", "outcome"],
            registry=r,
        )
        self.wallet_duration = Histogram(
            "casino_wallet_request_duration_seconds",
            "Wallet latency.",
            ["region", "operation"],
            buckets=BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "casino_wallet_queue_depth", "Queue depth.", ["region"], registry=r
        )
        self.queue_age = Gauge(
            "casino_wallet_queue_oldest_age_seconds", "Oldest item age.", ["region"], registry=r
        )
        self.replayed = Counter(
            "casino_wallet_queue_replayed", "Replays.", ["region", "outcome"], registry=r
        )
        self.failovers = Counter(
            "casino_failover_events", "Failovers.", ["region", "kind"], registry=r
        )
        self.isolated = Gauge(
            "casino_provider_isolated", "Isolated.", ["region", "provider"], registry=r
        )
        self.breaker = Gauge(
            "casino_circuit_breaker_state", "Breaker state.", ["region", "provider"], registry=r
        )
        self.weight = Gauge("casino_region_weight", "Region weight.", ["region"], registry=r)
        self.sessions = Gauge(
            "casino_active_sessions", "Active sessions.", ["region", "provider"], registry=r
        )
        self.advance()

    def advance(self, rounds: int = 40) -> None:
        rng, reg = self.rng, self.region
        for _ in range(rounds):
            p = rng.choice(PROVIDERS)
            for op in ("launch", "round"):
                outcome = rng.choices(("ok", "error", "timeout", "rejected"), (90, 5, 3, 2))[0]
                self.requests.labels(reg, p, op, outcome).inc()
                self.duration.labels(reg, p, op).observe(rng.lognormvariate(-3, 1))
            self.launches.labels(reg, p, rng.choice(("ok", "failover", "failed"))).inc()
            self.rounds.labels(reg, p, rng.choice(("ok", "failed"))).inc()
            for op in ("bet", "win", "rollback", "balance"):
                self.wallet.labels(reg, op, rng.choice(("ok", "error", "timeout"))).inc()
                self.wallet_duration.labels(reg, op).observe(rng.lognormvariate(-4, 1))
        self.replayed.labels(reg, "settled").inc(rng.randint(0, 2))
        self.failovers.labels(reg, rng.choice(("breaker_open", "provider_failover"))).inc(0)
        self.queue_depth.labels(reg).set(rng.randint(0, 50))
        self.queue_age.labels(reg).set(round(rng.random() * 30, 3))
        self.weight.labels(reg).set(1.0)
        for p in PROVIDERS:
            self.isolated.labels(reg, p).set(0)
            self.breaker.labels(reg, p).set(0)
            self.sessions.labels(reg, p).set(rng.randint(0, 500))

    def body(self) -> str:
        return generate_latest(self.registry).decode()


def big_body(series: int, scrape: int, seed: int = 7) -> str:
    """A body of `series` bucket series (+ one _count per 16), counters growing per scrape."""
    rng = random.Random(seed * 1_000_003 + scrape)
    lines = [
        "# HELP casino_game_round_duration_seconds Round latency per game.",
        "# TYPE casino_game_round_duration_seconds histogram",
    ]
    les = (
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "25.0",
        "50.0",
        "100.0",
        "+Inf",
    )
    n = 0
    game = 0
    while n < series:
        region, provider = REGIONS[game % 2], PROVIDERS[game % 8]
        base = game * 1000 + scrape * 37
        for i, le in enumerate(les):
            lines.append(
                f'casino_game_round_duration_seconds_bucket{{region="{region}",provider="{provider}",'
                f'game="g{game:05d}",le="{le}"}} {base + i * 50 + rng.randint(0, 3)}'
            )
        lines.append(
            f'casino_game_round_duration_seconds_count{{region="{region}",provider="{provider}",'
            f'game="g{game:05d}"}} {base + 800}'
        )
        n += 16
        game += 1
    return "\n".join(lines[: series + 2]) + "\n"


def _rate(work: Callable[[int], int], seconds: float) -> tuple[float, int]:
    """(samples per second, scrapes) running work(i) -> samples until `seconds` have passed."""
    total, i = 0, 0
    start = time.process_time()
    while True:
        total += work(i)
        i += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return total / elapsed, i


def _bench(name: str, bodies: list[str], seconds: float) -> None:
    samples = sum(1 for f in text_string_to_metric_families(bodies[0]) for _ in f.samples)
    print(f"\n{name}: {samples} samples per body, {len(bodies[0]) / 1024:.0f} KiB")

    def reference(i: int) -> int:
        return sum(len(f.samples) for f in text_string_to_metric_families(bodies[i % len(bodies)]))

    parser = ExpositionParser(lambda labels: labels)

    def ours(i: int) -> int:
        return len(parser.parse(bodies[i % len(bodies)]).values)

    store = Store()
    scraper = Scraper(ScrapeTarget(job="bench", url="http://127.0.0.1:1/metrics"), store, http=None)  # type: ignore[arg-type]  # ingest() never uses HTTP

    def ingest(i: int) -> int:
        return scraper.ingest(bodies[i % len(bodies)], 1_700_000_000_000 + 5000 * i)[0]

    started = time.process_time()
    first = scraper.ingest(bodies[0], 1_600_000_000_000)[1]
    print(f"  first scrape (creates {first} series): {time.process_time() - started:.3f} s CPU")
    parser.parse(bodies[0])  # warm caches: the steady state is what is measured below
    for label, work in (
        ("prometheus_client", reference),
        ("parse", ours),
        ("parse+append", ingest),
    ):
        rate, runs = _rate(work, seconds)
        print(f"  {label:18s} {rate:12,.0f} samples/s per core  ({runs} scrapes)")
    stats = store.stats()
    print(
        f"  store after: {stats.series} series, {stats.head_samples + stats.block_samples} samples,"
        f" fallback lines: {parser.fallback_lines}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    ap.add_argument("--bodies", type=int, default=20, help="distinct bodies per workload")
    args = ap.parse_args()
    print(
        f"ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()},"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()}; rates are per core"
        " (process CPU time)"
    )
    expos = [AggregatorExposition(region, seed=i) for i, region in enumerate(REGIONS)]
    aggregator_bodies = []
    for _ in range(args.bodies):
        for e in expos:
            e.advance()
            aggregator_bodies.append(e.body())
    # two regions alternate in one scraper: the same series set per region body is what a real
    # target shows, so measure each region's body stream separately
    _bench("aggregator region body (eu)", aggregator_bodies[0::2], args.seconds)
    _bench(
        "50,000-series body",
        [big_body(50_000, i) for i in range(max(2, args.bodies // 4))],
        args.seconds,
    )


if __name__ == "__main__":
    main()
