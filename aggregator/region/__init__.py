"""One region of the bundled aggregator (`aggregator serve --region eu`).

The data flow, one module per step: catalogue (YAML) -> launch routing (launch.py) through the
simulated providers and their breakers (providers.py, breakers.py) -> the round flow (rounds.py)
-> the wallet connector (connector.py) and its durable retry queue (retryqueue.py). Isolation and
canary state (state.py) survive restarts; admin.py and player.py are the HTTP surfaces;
metrics.py the telemetry. runtime.py wires it together; nothing runs on import.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask

from aggregator.errors import ConfigError
from aggregator.httpapi import IdempotencyCache, install_error_handlers, install_probes
from aggregator.limits import BodyLimit
from aggregator.region.admin import AdminApi
from aggregator.region.config import RegionConfig
from aggregator.region.player import PlayerApi
from aggregator.region.runtime import Dependencies, Region
from aggregator.serving import serve

log = logging.getLogger(__name__)

__all__ = ["Dependencies", "Region", "RegionConfig", "create_app", "main"]


def create_app(config: RegionConfig | None = None, *, deps: Dependencies | None = None) -> Flask:
    """The region's WSGI app; its `Region` is `app.extensions["region"]`.

    The retry-queue worker is not started here (tests drive the queue themselves); `main`
    starts it, and `Region.close()` stops it and releases the pool and the database.
    """
    config = config if config is not None else RegionConfig.from_env()
    region = Region(config, deps)
    app = Flask(f"aggregator.region.{config.region}")
    app.extensions["region"] = region
    install_error_handlers(app)
    install_probes(app, region.registry, region.ready)
    PlayerApi(region).install(app)
    AdminApi(region, IdempotencyCache()).install(app)
    app.wsgi_app = BodyLimit(app.wsgi_app, config.max_body_bytes)  # type: ignore[method-assign]
    return app


def main(args: Any) -> int:
    try:
        config = RegionConfig.from_args(args)
        app = create_app(config)
    except ConfigError as exc:
        print(f"aggregator serve: {exc}", file=sys.stderr)
        return 2
    region: Region = app.extensions["region"]
    log.info(
        "region %s: %d providers, %d games, wallet %s, database %s",
        config.region,
        len(region.catalogue.providers),
        len(region.catalogue.games),
        config.wallet_url,
        _redacted(config.database),
    )
    serve(
        app,
        host=config.host,
        port=config.port,
        threads=config.threads,
        name=f"region-{config.region}",
        # granian: the region's own HTTP work off its GIL (BENCHMARKS.md, aggregator throughput)
        server=getattr(args, "server", None) or "granian",
        max_body_bytes=config.max_body_bytes,
        # the background threads run where the requests are served (granian: the worker)
        on_start=lambda: _start(region),
        on_stop=region.close,
        before_fork=region.engine.dispose,
    )
    return 0


def _start(region: Region) -> None:
    region.worker.start()
    region.probes.start()


def _redacted(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
