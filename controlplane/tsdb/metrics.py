"""The embedded store's size on /metrics, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.tsdb.store import Store


class StoreCollector(Collector):
    """The store's size, read when /metrics is scraped."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        stats = self._store.stats()
        yield GaugeMetricFamily(
            "controlplane_store_series", "Series in the embedded store.", value=stats.series
        )
        samples = GaugeMetricFamily(
            "controlplane_store_samples",
            "Samples held by the embedded store, by where they live.",
            labels=["part"],
        )
        samples.add_metric(["head"], stats.head_samples)
        samples.add_metric(["blocks"], stats.block_samples)
        if stats.history is not None:  # the long-term tier, downsampled
            samples.add_metric(["history"], stats.history.samples)
        yield samples
        size = GaugeMetricFamily(
            "controlplane_store_bytes",
            "Memory used by the embedded store's arrays, by part.",
            labels=["part"],
        )
        size.add_metric(["head"], stats.head_bytes)
        size.add_metric(["blocks"], stats.block_bytes)
        if stats.history is not None:
            size.add_metric(["history"], stats.history.bytes)
        yield size
        if stats.history is not None:
            yield GaugeMetricFamily(
                "controlplane_store_history_series",
                "Series kept downsampled beyond the store's retention (the long-term tier).",
                value=stats.history.series,
            )
