"""The front door: routes new player sessions to regions by weight, keeps rounds on their home
region, fails over when a region is down, and lets an operator drain a region.

`aggregator frontdoor --port 8100 --region eu=http://127.0.0.1:8101 --region latam=...`
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from prometheus_client import CollectorRegistry

from aggregator.errors import ConfigError
from aggregator.faults import FaultBook, FaultKind
from aggregator.frontdoor.admin import install_admin
from aggregator.frontdoor.health import HealthChecker
from aggregator.frontdoor.metrics import FrontdoorMetrics
from aggregator.frontdoor.proxy import Forwarder, PlayerFastPath
from aggregator.frontdoor.routing import Region, RegionTable, parse_regions
from aggregator.frontdoor.transport import PooledTransport, Transport
from aggregator.httpapi import install_error_handlers, install_probes
from aggregator.limits import MAX_BODY_BYTES, BodyLimit

log = logging.getLogger(__name__)

__all__ = ["FrontDoor", "FrontdoorConfig", "create_app", "main"]


def _default_regions() -> tuple[Region, ...]:
    return (
        Region(id="eu", url="http://127.0.0.1:8101"),
        Region(id="latam", url="http://127.0.0.1:8102"),
    )


@dataclass(frozen=True, kw_only=True)
class FrontdoorConfig:
    regions: tuple[Region, ...] = field(default_factory=_default_regions)
    admin_token: str = ""  # empty: $AGGREGATOR_ADMIN_TOKEN, else generated and logged
    health_interval_s: float = 1.0
    # below the load generator's 10 s, so a hung region still leaves time to retry elsewhere
    request_timeout_s: float = 5.0
    pool_size: int = 32
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies answer 413 (--max-body-bytes)

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be >= 1, got {self.max_body_bytes!r}")


@dataclass(frozen=True, kw_only=True)
class FrontDoor:
    """Everything the app wires together; `start`/`stop` run the health-check thread."""

    table: RegionTable
    forwarder: Forwarder
    checker: HealthChecker
    faults: FaultBook
    metrics: FrontdoorMetrics
    admin_token: str
    transport: Transport

    def start(self) -> None:
        self.checker.start()

    def stop(self) -> None:
        self.checker.stop()
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()


def admin_token_from_env() -> str:
    token = os.environ.get("AGGREGATOR_ADMIN_TOKEN", "")
    if not token:
        token = secrets.token_urlsafe(24)
        print(f"frontdoor: generated admin token {token}", file=sys.stderr, flush=True)
    return token


def create_app(
    config: FrontdoorConfig | None = None,
    *,
    transport: Transport | None = None,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry | None = None,
) -> Flask:
    config = config or FrontdoorConfig()
    transport = transport or PooledTransport(pool_size=config.pool_size)
    registry = registry or CollectorRegistry()
    table = RegionTable(config.regions)
    faults = FaultBook(clock=clock, id_prefix="fd")

    def unreachable(region_id: str) -> bool:
        return faults.find(FaultKind.REGION_DOWN, region_id) is not None

    metrics = FrontdoorMetrics(table, registry)
    front = FrontDoor(
        table=table,
        forwarder=Forwarder(
            table, transport, metrics, timeout_s=config.request_timeout_s, unreachable=unreachable
        ),
        checker=HealthChecker(
            table,
            transport,
            interval_s=config.health_interval_s,
            clock=clock,
            unreachable=unreachable,
        ),
        faults=faults,
        metrics=metrics,
        admin_token=config.admin_token or admin_token_from_env(),
        transport=transport,
    )
    app = Flask("aggregator.frontdoor")
    app.extensions["frontdoor"] = front
    install_error_handlers(app)
    install_probes(app, registry, ready=lambda: _ready(table))
    install_admin(app, front.admin_token, table, faults)
    # Player traffic skips Flask's routing and request objects: it is the hot path.
    player = PlayerFastPath(front.forwarder, app.wsgi_app)
    app.wsgi_app = BodyLimit(player, config.max_body_bytes)  # type: ignore[method-assign]
    return app


def _ready(table: RegionTable) -> tuple[bool, str]:
    up = [view.id for view in table.snapshot() if view.up]
    return (True, f"regions up: {up}") if up else (False, "no region is up")


def main(args: argparse.Namespace) -> int:
    from aggregator.serving import serve

    try:
        regions = parse_regions(args.region, args.weight)
        config = FrontdoorConfig(
            regions=tuple(regions),
            health_interval_s=args.health_interval,
            pool_size=args.threads,
            max_body_bytes=MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes,
        )
    except ConfigError as exc:
        print(f"frontdoor: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    front: FrontDoor = app.extensions["frontdoor"]
    log.info("front door regions: %s", {r.id: (r.url, r.weight) for r in regions})
    serve(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        name="frontdoor",
        server=args.server or "waitress",
        max_body_bytes=config.max_body_bytes,
        on_start=front.start,  # its health checks run where the requests are served
        on_stop=front.stop,
    )
    return 0
