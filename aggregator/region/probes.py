"""Active health probes of every provider, as aggregators run against providers' health
endpoints: independent of player traffic and of the breakers, so an isolated provider, which
gets no traffic at all, still shows whether it has recovered.

Probes draw from their own simulator (their own RNG stream), so they never shift the seeded
sequence that player calls see.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator.region.providers import ProviderSimulator

log = logging.getLogger(__name__)


class ProviderProbes(Collector):
    def __init__(
        self,
        simulator: ProviderSimulator,
        providers: Sequence[str],
        *,
        region: str,
        registry: CollectorRegistry,
        interval_s: float = 1.0,
    ) -> None:
        self._sim, self._providers, self._region = simulator, tuple(providers), region
        self._interval = interval_s
        self._last: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._total = Counter(
            "casino_provider_probes",
            "Health probes of game providers.",
            ["region", "provider", "outcome"],
            registry=registry,
        )
        registry.register(self)

    def probe_all(self) -> dict[str, bool]:
        results = {}
        for provider in self._providers:
            call = self._sim.call(provider, "probe")
            results[provider] = call.ok
            self._total.labels(self._region, provider, call.outcome.value).inc()
        with self._lock:
            self._last = results
        return results

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            last = dict(self._last)
        family = GaugeMetricFamily(
            "casino_provider_probe_success",
            "1 if the provider's last health probe succeeded (absent before the first probe).",
            labels=["region", "provider"],
        )
        for provider, ok in sorted(last.items()):
            family.add_metric([self._region, provider], 1.0 if ok else 0.0)
        yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="provider-probes", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe_all()
            except Exception:  # a probe bug must not end probing
                log.exception("provider probes failed")
            self._stop.wait(self._interval)
