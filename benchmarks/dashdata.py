"""What the dashboard benchmark (benchmarks/dash.py) shows: the series the `controlplane demo`
bundle exports, a day of them at 15 s and the last hour at 1 s (the demo scrapes every second),
written straight into a store, nothing waited for.

The series are those the aggregator's own metric classes export (aggregator/region/metrics.py,
frontdoor/metrics.py, wallet/metrics.py), instantiated as the demo runs them (regions eu and
latam with the catalogue's providers, one front door, one wallet) and collected, so a metric
the aggregator adds is measured without an edit here; plus `up` per target. Values: counters
grow with the day's traffic, outcomes other than success a small share; histograms follow each
provider's log-normal latency from the catalogue; gauges rest. For the last two hours one eu
provider fails 30% of its calls, so SLOs burn and alerts fire. dashhistory.py adds the
shipped rules' recordings and the control plane's own history.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry

from aggregator.frontdoor.metrics import FrontdoorMetrics
from aggregator.frontdoor.routing import Region, RegionTable
from aggregator.region import catalogue
from aggregator.region.metrics import (
    PROVIDER_OPERATIONS,
    WALLET_OPERATIONS,
    LiveState,
    RegionMetrics,
    StateCollector,
)
from aggregator.wallet.metrics import WalletMetrics
from controlplane.model.series import labels_from
from controlplane.tsdb.store import Store

REGIONS = {"eu": ("127.0.0.1:8101", 10.0), "latam": ("127.0.0.1:8102", 6.0)}  # launches/s
FAILING = ("eu", "netent")  # fails from INCIDENT_S before the end
INCIDENT_S = 2 * 3600
ROUNDS_PER_LAUNCH = 4.0
WALLET_STATUSES = ("RS_OK", "RS_ERROR_NOT_ENOUGH_MONEY", "RS_ERROR_TRANSACTION_DOES_NOT_EXIST")
# share of calls per outcome (the rest succeed); the failing provider's errors during the incident
SHARES = {
    "error": 0.002,
    "timeout": 0.001,
    "rejected": 0.0005,
    "failover": 0.003,
    "failed": 0.001,
    "declined": 0.02,
    "win_pending": 0.001,
    "wallet_unavailable": 0.0005,
    "provider_unavailable": 0.0005,
    "RS_ERROR_NOT_ENOUGH_MONEY": 0.02,
    "RS_ERROR_TRANSACTION_DOES_NOT_EXIST": 0.0005,
}
INCIDENT_SHARES = {"error": 0.3, "timeout": 0.05, "failover": 0.3, "failed": 0.01}
GAUGES = {  # level at rest, level during the incident (for the failing provider's region)
    "casino_region_weight": (1.0, 1.0),
    "casino_region_up": (1.0, 1.0),
    "casino_provider_canary_percent": (100.0, 100.0),
    "casino_active_sessions": (120.0, 90.0),
    "casino_wallet_queue_depth": (0.0, 40.0),
    "casino_wallet_queue_oldest_age_seconds": (0.0, 35.0),
    "casino_wallet_users": (200.0, 200.0),
    "casino_wallet_balance_total_minor": (2e8, 2e8),
    "casino_wallet_initial_funds_minor": (2e8, 2e8),
    "up": (1.0, 1.0),
}


@dataclass(frozen=True)
class Exported:
    """One series a target exports, and how it moves: counters by `rate` per second (and
    `incident_rate` during the incident), gauges at `level` (and `incident_level`)."""

    labels: dict[str, str]
    counter: bool
    rate: float = 0.0
    incident_rate: float = 0.0
    level: float = 0.0
    incident_level: float = 0.0


def times(end_s: int, hours: float, fine_minutes: float) -> np.ndarray:
    """Scrape times in ms: every 15 s over `hours`, every second over the last minutes."""
    fine_from = end_s - int(fine_minutes * 60)
    coarse = np.arange(end_s - int(hours * 3600), fine_from, 15, dtype=np.int64)
    fine = np.arange(fine_from, end_s + 1, 1, dtype=np.int64)
    return np.concatenate([coarse, fine]) * 1000


_catalogue = functools.cache(catalogue.load)


def targets() -> Iterator[tuple[dict[str, str], CollectorRegistry]]:
    """Every role of the demo bundle: (its job and instance labels, a registry as it runs)."""
    cat = _catalogue()
    for region, (instance, _traffic) in REGIONS.items():
        reg = CollectorRegistry()
        metrics = RegionMetrics(region, reg)
        providers = tuple(cat.region(region).providers)
        metrics.preset(providers)
        for provider in providers:
            for op in PROVIDER_OPERATIONS:
                metrics.provider_duration.labels(region, provider, op)
        for op in WALLET_OPERATIONS:
            metrics.wallet_duration.labels(region, op)
        reg.register(StateCollector(region, _at_rest(providers)))
        yield {"job": "region", "instance": instance}, reg
    reg = CollectorRegistry()
    table = [Region(id=r, url=f"http://{i}") for r, (i, _t) in REGIONS.items()]
    FrontdoorMetrics(RegionTable(table), reg)
    yield {"job": "frontdoor", "instance": "127.0.0.1:8100"}, reg
    reg = CollectorRegistry()
    wallet = WalletMetrics(reg)
    for op in WALLET_OPERATIONS:
        for status in WALLET_STATUSES:
            wallet.requests.labels(op, status)
        wallet.duration.labels(op)
    yield {"job": "wallet", "instance": "127.0.0.1:8200"}, reg


def _at_rest(providers: tuple[str, ...]) -> LiveState:
    return LiveState(
        providers=providers,
        queue_stats=lambda: (0, None),
        isolated=dict,
        canary_percent=dict,
        breaker_states=dict,
        active_sessions=dict,
        faults=list,
        region_down=lambda: False,
    )


def exported() -> list[Exported]:
    """Every series of every target, with how it moves."""
    out: list[Exported] = []
    for target, registry in targets():
        for family in registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # a start time, not something a panel reads
                labels = {"__name__": sample.name, **target, **sample.labels}
                out.append(_model(labels, family.type in ("counter", "histogram")))
        out.append(_model({"__name__": "up", **target}, counter=False))
    return out


def _model(labels: dict[str, str], counter: bool) -> Exported:
    if not counter:
        level, during = GAUGES.get(labels["__name__"], (0.0, 0.0))
        hit = labels.get("region") == FAILING[0]
        return Exported(labels, False, level=level, incident_level=during if hit else level)
    base = _traffic(labels)
    normal = base * _weight(labels, incident=False)
    failing = (labels.get("region"), labels.get("provider")) == FAILING
    during = base * _weight(labels, incident=failing)
    return Exported(labels, True, rate=normal, incident_rate=during)


def _traffic(labels: dict[str, str]) -> float:
    """Calls per second of the series' whole family (before outcome and bucket shares)."""
    name, region = labels["__name__"], labels.get("region", "")
    launches = REGIONS[region][1] if region in REGIONS else sum(t for _i, t in REGIONS.values())
    providers = _catalogue().region(region).providers if region in REGIONS else {}
    per_provider = launches / max(1, len(providers)) if "provider" in labels else launches
    if "wallet" in name or labels.get("operation") == "round":
        per_provider *= ROUNDS_PER_LAUNCH
    if name.endswith("_sum"):
        per_provider *= _latency(labels)[0]
    if "le" in labels:
        per_provider *= _below(labels)
    return per_provider


def _latency(labels: dict[str, str]) -> tuple[float, float]:
    """Median (s) and sigma of the series' call latency (the catalogue's, or the wallet's)."""
    region, provider = labels.get("region", ""), labels.get("provider", "")
    if region in REGIONS and provider:
        spec = _catalogue().region(region).providers[provider]
        return spec.latency_median_s, spec.latency_sigma
    return 0.03, 0.5


def _below(labels: dict[str, str]) -> float:
    le = float(labels["le"])
    if math.isinf(le):
        return 1.0
    median, sigma = _latency(labels)
    return 0.5 * math.erfc(-math.log(le / median) / (sigma * math.sqrt(2)))


def _weight(labels: dict[str, str], incident: bool) -> float:
    """The share of the family's calls this series counts (outcome or status label)."""
    outcome = labels.get("outcome") or labels.get("status") or labels.get("kind")
    shares = {**SHARES, **INCIDENT_SHARES} if incident else SHARES
    if outcome in shares:
        return shares[outcome]
    if outcome in ("breaker_open", "provider_failover", "region_failover", "failed"):
        return 0.0005
    if outcome is None or outcome in ("ok", "settled", "RS_OK"):
        return 1.0 - (0.35 if incident and "provider" in labels else 0.0)
    return 0.001


def values(series: list[Exported], stamps_ms: np.ndarray, seed: int = 3) -> np.ndarray:
    """(samples, series): counters integrated over the day's traffic, gauges at their level."""
    t = stamps_ms / 1000.0
    dt = np.diff(t, prepend=t[0])
    end = t[-1]
    # busier in the evening (UTC), quieter at night, with a little noise shared by all series
    daily = 1.0 + 0.35 * np.sin((t % 86_400) / 86_400 * 2 * np.pi - 2.0)
    noise = np.random.default_rng(seed).normal(1.0, 0.05, len(t)).clip(0.5, 1.5)
    incident = (t > end - INCIDENT_S).astype(np.float64)
    rate = np.array([s.rate for s in series])
    extra = np.array([s.incident_rate - s.rate for s in series])
    load = (dt * daily * noise)[:, None]
    counters = np.floor(np.cumsum(load * (rate + incident[:, None] * extra), axis=0))
    level = np.array([s.level for s in series])
    bump = np.array([s.incident_level - s.level for s in series])
    gauges = level + incident[:, None] * bump
    return np.where(np.array([s.counter for s in series])[None, :], counters, gauges)


def fill(store: Store, series: list[Exported], stamps_ms: np.ndarray) -> int:
    """Append every sample, a scrape at a time (as the scraper would); returns samples."""
    refs = [store.series_ref(labels_from(s.labels))[0] for s in series]
    matrix = values(series, stamps_ms)
    for i, t in enumerate(stamps_ms.tolist()):
        store.append_many(refs, t, matrix[i])
    return int(matrix.size)
