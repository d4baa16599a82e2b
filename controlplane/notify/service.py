"""Everything of notifications wired together, for the control plane's `create_app`.

notify = build_notify(routing="config/routing.yml", engine=engine, audit=audit)
app.register_blueprint(api.notify.create_blueprint(dispatcher=notify.dispatcher, ...))
notify.runner.start()            # the dispatcher and its senders (the HA leader's)
notify.dispatcher.put(alerts)    # from the rule engine, each evaluation
...
notify.runner.stop()

The dispatcher decides into the outbox (outbox.py); the senders deliver from it (sender.py).
Both use `engine`: the notification log and the outbox are tables beside the silences.
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

from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.notifiers import (
    FACTORIES,
    BuildContext,
    NotifierFactory,
    build_integrations,
)
from controlplane.notify.outbox import Outbox
from controlplane.notify.routing import RoutingConfig, load_routing
from controlplane.notify.runner import DispatcherRunner, SenderRunner
from controlplane.notify.sender import AuditSink, Sender, SendPolicy
from controlplane.notify.silences import SilenceStore, utc_now
from controlplane.notify.slack import SlackContext


@dataclass(frozen=True, kw_only=True)
class Notify:
    routing: RoutingConfig
    dispatcher: Dispatcher
    silences: SilenceStore
    runner: DispatcherRunner  # starts and stops the senders too
    context: BuildContext  # what a reload builds the new receivers' integrations with
    outbox: Outbox
    sender: Sender


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
    policy: SendPolicy | None = None,
    audit: AuditSink | None = None,
    create_tables: bool = False,
    slack: SlackContext | None = None,
) -> Notify:
    """Build (and start nothing). `create_tables` is for runs without Alembic migrations."""
    config = routing if isinstance(routing, RoutingConfig) else load_routing(routing)
    silences = SilenceStore(engine, clock=clock)
    outbox = Outbox(engine)
    if create_tables:
        silences.create_tables()
        outbox.create_tables()
    ctx = BuildContext(
        session=session or requests.Session(),
        external_url=external_url,
        logger=logger,
        slack=slack,
    )
    dispatcher = Dispatcher(
        routing=config,
        integrations=build_integrations(config.receivers, ctx, factories),
        outbox=outbox,
        silences=silences,
        clock=clock,
    )
    sender = Sender(
        outbox, dispatcher.integration, clock=clock, policy=policy, audit=audit, registry=registry
    )
    senders = SenderRunner(sender, clock=clock)
    return Notify(
        routing=config,
        dispatcher=dispatcher,
        silences=silences,
        runner=DispatcherRunner(dispatcher, senders=senders, clock=clock),
        context=ctx,
        outbox=outbox,
        sender=sender,
    )
