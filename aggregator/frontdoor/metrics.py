"""The front door's metrics: counters for events, a custom Collector for routing state."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from aggregator.frontdoor.routing import RegionTable


class RegionStateCollector(Collector):
    """casino_region_weight and casino_region_up, read from the routing table at scrape time."""

    def __init__(self, table: RegionTable) -> None:
        self._table = table

    def collect(self) -> Iterator[Metric]:
        weight = GaugeMetricFamily(
            "casino_region_weight",
            "Effective weight of the region for new sessions (0 while drained or down)",
            labels=["region"],
        )
        up = GaugeMetricFamily(
            "casino_region_up", "1 while the region passes its health checks", labels=["region"]
        )
        drained = GaugeMetricFamily(
            "casino_region_drained", "1 while the region is drained", labels=["region"]
        )
        for view in self._table.snapshot():
            weight.add_metric([view.id], view.effective_weight)
            up.add_metric([view.id], 1.0 if view.up else 0.0)
            drained.add_metric([view.id], 1.0 if view.drained else 0.0)
        yield weight
        yield up
        yield drained


class FrontdoorMetrics:
    def __init__(self, table: RegionTable, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.failovers = Counter(
            "casino_failover_events_total",
            "Failover events",
            ["region", "kind"],
            registry=registry,
        )
        self.requests = Counter(
            "casino_frontdoor_requests_total",
            "Player requests forwarded by the front door, per region attempt",
            ["region", "route", "outcome"],
            registry=registry,
        )
        registry.register(RegionStateCollector(table))
        # Zero-initialise so rate() works from the first scrape and dashboards show every region.
        for region_id in table.ids():
            self.failovers.labels(region=region_id, kind="region_failover")
            for route in ("launch", "round"):
                self.requests.labels(region=region_id, route=route, outcome="ok")
