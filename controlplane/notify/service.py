"""Everything of notifications wired together, for the control plane's `create_app`.

notify = build_notify(routing="config/routing.yml", engine=engine)
app.register_blueprint(api.notify.create_blueprint(dispatcher=notify.dispatcher, ...))
notify.runner.start()            # in the one process that evaluates (the HA leader)
notify.dispatcher.put(alerts)    # from the rule engine, each evaluation
...
notify.runner.stop()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from controlplane.notify.dispatch import Backoff, Dispatcher
from controlplane.notify.notifiers import (
    FACTORIES,
    BuildContext,
    NotifierFactory,
    build_integrations,
)
from controlplane.notify.routing import RoutingConfig, load_routing
from controlplane.notify.runner import DispatcherRunner
from controlplane.notify.silences import SilenceStore, utc_now


@dataclass(frozen=True, kw_only=True)
class Notify:
    routing: RoutingConfig
    dispatcher: Dispatcher
    silences: SilenceStore
    runner: DispatcherRunner
    context: BuildContext  # what a reload builds the new receivers' integrations with


def build_notify(
    *,
    routing: RoutingConfig | str | Path,
    engine: sa.Engine,
    clock: Callable[[], datetime] = utc_now,
    session: requests.Session | None = None,
    external_url: str = "",
    registry: CollectorRegistry | None = None,
    logger: logging.Logger | None = None,
    factories: Mapping[str, NotifierFactory] = FACTORIES,
    backoff: Backoff | None = None,
    create_tables: bool = False,
) -> Notify:
    """Build (and start nothing). `create_tables` is for runs without Alembic migrations."""
    config = routing if isinstance(routing, RoutingConfig) else load_routing(routing)
    silences = SilenceStore(engine, clock=clock)
    if create_tables:
        silences.create_tables()
    ctx = BuildContext(
        session=session or requests.Session(), external_url=external_url, logger=logger
    )
    dispatcher = Dispatcher(
        routing=config,
        integrations=build_integrations(config.receivers, ctx, factories),
        silences=silences,
        clock=clock,
        backoff=backoff,
        registry=registry,
    )
    return Notify(
        routing=config,
        dispatcher=dispatcher,
        silences=silences,
        runner=DispatcherRunner(dispatcher, clock=clock),
        context=ctx,
    )
