"""The casino operator's seamless wallet (Hub88 operator-wallet shape), `aggregator wallet`.

Data flow: api (HTTP, validation, tokens, faults) -> ledger (one database transaction per
call) -> rules (the money decision); admin and metrics read through reports. The wiring of all
of it is `create_app`; importing this package does nothing.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from prometheus_client import CollectorRegistry

from aggregator.errors import ConfigError
from aggregator.faults import FaultBook
from aggregator.httpapi import install_error_handlers, install_probes
from aggregator.limits import BodyLimit
from aggregator.serving import serve
from aggregator.wallet import reports
from aggregator.wallet.admin import install_admin
from aggregator.wallet.api import WalletApi
from aggregator.wallet.config import WalletConfig
from aggregator.wallet.faults import WalletFaults
from aggregator.wallet.ledger import Ledger
from aggregator.wallet.metrics import WalletMetrics, WalletStateCollector
from aggregator.wallet.schema import make_engine
from aggregator.wallet.tokens import TokenSigner

__all__ = ["WalletConfig", "WalletServices", "create_app", "main"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WalletServices:
    """What create_app wired, kept on app.extensions["wallet"] for main and tests."""

    config: WalletConfig
    engine: sa.Engine
    ledger: Ledger
    faults: WalletFaults
    signer: TokenSigner
    registry: CollectorRegistry

    def close(self) -> None:
        self.ledger.close()
        self.engine.dispose()


def create_app(
    config: WalletConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    perf_clock: Callable[[], float] = time.perf_counter,
    rng: Callable[[], float] = random.random,
    sleep: Callable[[float], None] = time.sleep,
    registry: CollectorRegistry | None = None,
) -> Flask:
    config = config or WalletConfig.from_env()
    engine = make_engine(config.database_url, pool_size=config.threads)
    ledger = Ledger(
        engine, initial_balance=config.initial_balance, currency=config.currency, clock=clock
    )
    registry = registry if registry is not None else CollectorRegistry()
    book = FaultBook(clock=clock, id_prefix="wf")
    faults = WalletFaults(book, rng=rng, sleep=sleep, max_stall_s=config.max_stall_s)
    metrics = WalletMetrics(registry)
    registry.register(WalletStateCollector(lambda: reports.funds(engine), book))
    signer = TokenSigner(config.token_secret)

    app = Flask("aggregator.wallet")
    install_error_handlers(app)
    WalletApi(
        ledger=ledger, signer=signer, faults=faults, metrics=metrics, perf_clock=perf_clock
    ).install(app)
    install_admin(app, config=config, ledger=ledger, faults=faults)
    install_probes(app, registry, ready=lambda: _ready(engine))
    app.wsgi_app = BodyLimit(app.wsgi_app, config.max_body_bytes)  # type: ignore[method-assign]
    app.extensions["wallet"] = WalletServices(
        config=config,
        engine=engine,
        ledger=ledger,
        faults=faults,
        signer=signer,
        registry=registry,
    )
    return app


def _ready(engine: sa.Engine) -> tuple[bool, str]:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return False, f"database does not answer: {type(exc).__name__}"
    return True, "ready"


def main(args: argparse.Namespace) -> int:
    try:
        config = WalletConfig.from_env(
            host=args.host,
            port=args.port,
            threads=args.threads,
            database_url=args.database,
            initial_balance=args.initial_balance,
            currency=args.currency,
            server=args.server,
            max_body_bytes=args.max_body_bytes,
        )
        app = create_app(config)
    except ConfigError as exc:
        print(f"wallet: {exc}", file=sys.stderr)
        return 2
    services: WalletServices = app.extensions["wallet"]
    log.info(
        "wallet: database %s, %s %d on first sight",
        services.engine.url.render_as_string(hide_password=True),
        config.currency,
        config.initial_balance,
    )
    serve(
        app,
        host=config.host,
        port=config.port,
        threads=config.threads,
        name="wallet",
        server=config.server,
        max_body_bytes=config.max_body_bytes,
        on_stop=services.close,
        # the served process opens its own connections: none may be shared across the fork
        before_fork=services.close,
    )
    return 0
