"""One region's live parts, wired together in the order of the data flow.

`Dependencies` holds what tests replace (clocks, RNG, HTTP pool, registry, database engine),
with production defaults; `Region` builds everything else from the config and those.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from aggregator.faults import FaultBook, FaultKind
from aggregator.httpclient import KeepAliveClient
from aggregator.region import catalogue
from aggregator.region.breakers import BreakerBoard, BreakerPolicy
from aggregator.region.config import RegionConfig
from aggregator.region.connector import WalletConnector, make_pool
from aggregator.region.database import create_schema, make_engine
from aggregator.region.launch import Router
from aggregator.region.metrics import ActiveSessions, LiveState, RegionMetrics, StateCollector
from aggregator.region.probes import ProviderProbes
from aggregator.region.providers import ProviderGateway, ProviderSimulator
from aggregator.region.retryqueue import RetryQueue, RetryWorker
from aggregator.region.rounds import RoundService
from aggregator.region.state import ProviderStateStore

log = logging.getLogger(__name__)

FAULT_KINDS = tuple(FaultKind)  # a region accepts every kind


def _new_session_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True)
class Dependencies:
    clock: Callable[[], float] = time.time  # wall clock: faults, queue timestamps, state rows
    monotonic: Callable[[], float] = time.monotonic  # breakers, session activity
    rng: random.Random | None = None  # routing, canary and fault draws; seeded from config
    http: KeepAliveClient | None = None
    registry: CollectorRegistry | None = None
    engine: sa.Engine | None = None
    new_session_id: Callable[[], str] = _new_session_id
    breaker_policy: BreakerPolicy = field(default_factory=BreakerPolicy)


class Region:
    def __init__(self, config: RegionConfig, deps: Dependencies | None = None) -> None:
        deps = deps or Dependencies()
        rid = config.region
        self.config = config
        self.deps = deps
        self.catalogue = catalogue.load(config.catalogue_path).region(rid)
        providers = tuple(self.catalogue.providers)
        self.registry = deps.registry if deps.registry is not None else CollectorRegistry()
        self.metrics = RegionMetrics(rid, self.registry)
        self.metrics.preset(providers)
        self.faults = FaultBook(clock=deps.clock, id_prefix=f"{rid}-f")
        self.rng = deps.rng if deps.rng is not None else random.Random(f"{config.seed}:{rid}")
        self.engine = deps.engine if deps.engine is not None else make_engine(config.database)
        create_schema(self.engine)
        self.state = ProviderStateStore(
            self.engine, region=rid, providers=providers, clock=deps.clock
        )
        self.breakers = BreakerBoard(
            providers, policy=deps.breaker_policy, clock=deps.monotonic, on_open=self._opened
        )
        simulator = ProviderSimulator(
            self.catalogue.providers, self.faults, seed=config.seed, region=rid
        )
        self.gateway = ProviderGateway(simulator, self.breakers, self.metrics)
        self.probes = ProviderProbes(
            ProviderSimulator(
                self.catalogue.providers, self.faults, seed=config.seed, region=f"{rid}:probe"
            ),
            providers,
            region=rid,
            registry=self.registry,
        )
        self.router = Router(self.catalogue, self.gateway, self.state, self.metrics, self.rng)
        self.wallet, self.queue = self._wallet_side()
        self.sessions = ActiveSessions(clock=deps.monotonic)
        self.rounds = RoundService(
            catalogue=self.catalogue,
            gateway=self.gateway,
            state=self.state,
            wallet=self.wallet,
            queue=self.queue,
            metrics=self.metrics,
            sessions=self.sessions,
            seed=config.seed,
        )
        self.worker = RetryWorker(self.queue, interval_s=config.retry_interval_s)
        self.registry.register(StateCollector(rid, self._live_state(providers)))

    def _wallet_side(self) -> tuple[WalletConnector, RetryQueue]:
        config, deps = self.config, self.deps
        wallet = WalletConnector(
            config.wallet_url,
            region=config.region,
            timeout_s=config.wallet_timeout_s,
            faults=self.faults,
            metrics=self.metrics,
            rng=self.rng,
            pool=deps.http if deps.http is not None else make_pool(config.threads),
        )
        queue = RetryQueue(
            self.engine,
            region=config.region,
            send=wallet.call,
            metrics=self.metrics,
            clock=deps.clock,
        )
        return wallet, queue

    def _live_state(self, providers: tuple[str, ...]) -> LiveState:
        return LiveState(
            providers=providers,
            queue_stats=self.queue.stats,
            isolated=lambda: {p: s.isolated for p, s in self.state.all().items()},
            canary_percent=lambda: {p: s.canary_percent for p, s in self.state.all().items()},
            breaker_states=lambda: {p: int(s) for p, s in self.breakers.states().items()},
            active_sessions=self.sessions.counts,
            faults=self.faults.active,
            region_down=self.is_down,
        )

    def _opened(self, provider: str) -> None:
        log.warning("region %s: breaker of provider %r opened", self.config.region, provider)
        self.metrics.failover("breaker_open")

    def is_down(self) -> bool:
        return self.faults.find(FaultKind.REGION_DOWN, self.config.region) is not None

    def ready(self) -> tuple[bool, str]:
        if self.is_down():
            return False, f"region {self.config.region!r} is down (region_down fault)"
        return True, "ready"

    def close(self) -> None:
        self.probes.stop()
        self.worker.stop()
        self.wallet.close()
        if self.deps.engine is None:
            self.engine.dispose()
