"""`create_app(config=None)`: all of the control plane's HTTP wiring in one place.

Embedded mode (the default): the scrape manager feeds the store, the PromQL engine reads it.
Remote mode (`query.prometheus_url` set): queries and metadata go to that Prometheus-compatible
API and nothing is scraped here. Either way the app serves the Prometheus-compatible API under
/api/v1, /metrics (the control plane's own health, from its own registry), /healthz and /readyz.

Creating the app starts nothing: `app.extensions["controlplane"]` is the `ControlPlane`,
whose `start()` (restore the checkpoint, start scraping) and `stop()` (stop scraping, write
the checkpoint) the `serve` verb and the tests call.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import requests
from flask import Blueprint, Flask, request
from prometheus_client import (
    CollectorRegistry,
)

from controlplane.access.session import COOKIE
from controlplane.api import docs, health
from controlplane.api.auth import install_read_gate
from controlplane.api.prometheus import create_blueprint
from controlplane.api.targets import NoTargets, TargetLister
from controlplane.collect.manager import ScrapeManager
from controlplane.config import Config, load_config
from controlplane.errors import ConfigError
from controlplane.promql.catalog import Catalog, StoreCatalog
from controlplane.promql.engine import Engine
from controlplane.promql.limits import ParseLimits
from controlplane.promql.results import Querier, QueryResult
from controlplane.remote.prometheus import RemotePrometheus
from controlplane.slo import SLO
from controlplane.slo.inputs import longest_window, sli_metric_names
from controlplane.tsdb.checkpoint import Checkpointer
from controlplane.tsdb.history import DEFAULT_WINDOW_MS, History, HistoryConfig
from controlplane.tsdb.metrics import StoreCollector
from controlplane.tsdb.store import Store

if TYPE_CHECKING:
    from controlplane.pipeline import Pipeline

log = logging.getLogger(__name__)
EXTENSION = "controlplane"


def _nothing() -> None:
    return None


def _no_reload() -> None:
    raise ConfigError("nothing to reload: this control plane runs no rules or runbooks")


@dataclass(frozen=True, kw_only=True)
class Components:
    """What answers the API; `start`/`stop` run scraping and checkpoints (stop only after a
    start, so an app that never ran cannot overwrite a checkpoint); `close` releases clients."""

    querier: Querier
    catalog: Catalog
    targets: TargetLister = field(default_factory=NoTargets)
    backend: str = "embedded"
    store: Store | None = None  # embedded mode only
    scraper: ScrapeManager | None = None  # embedded mode only
    start: Callable[[], None] = _nothing
    stop: Callable[[], None] = _nothing
    close: Callable[[], None] = _nothing
    interrupt: Callable[[], None] = _nothing  # quick, from a signal handler: stop acting now
    reload: Callable[[], None] = _no_reload  # re-read rules, SLOs, runbooks, routing (or raise)


class State(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


class ControlPlane:
    """The live parts of one control plane process."""

    def __init__(self, config: Config, components: Components, registry: CollectorRegistry):
        self.config = config
        self.components = components
        self.registry = registry
        self.state = State.CREATED
        self._lock = threading.Lock()

    @property
    def querier(self) -> Querier:
        return self.components.querier

    def start(self) -> None:
        with self._lock:
            if self.state is not State.CREATED:
                return
            self.components.start()
            self.state = State.RUNNING

    def stop(self) -> None:
        with self._lock:
            if self.state is State.STOPPED:
                return
            was_running = self.state is State.RUNNING
            self.state = State.STOPPED
            try:
                if was_running:
                    self.components.stop()
            finally:
                self.components.close()

    def interrupt(self) -> None:
        """The first moment of a shutdown: stop anything that acts on the world."""
        self.components.interrupt()

    def reload(self) -> None:
        """SIGHUP and `POST /-/reload`: all the files or nothing (ConfigError says why)."""
        self.components.reload()

    def ready(self) -> tuple[bool, str]:
        return self.state is State.RUNNING, str(self.state)


def create_app(
    config: Config | None = None,
    *,
    components: Components | None = None,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] = time.time,
    session: requests.Session | None = None,
    blueprints: Sequence[Blueprint] = (),
    pipeline: bool = True,
) -> Flask:
    """`config` defaults to `load_config()` (file and environment); `components` replace the
    ones the config selects (tests pass fakes); `clock` is the default query time; `session`
    is the HTTP client of remote mode; `blueprints` are mounted too (the other /api/v1 APIs).
    With the config's own components, `pipeline` adds rules, notifications and runbooks."""
    config = config if config is not None else load_config()
    registry = registry if registry is not None else CollectorRegistry()
    mount_dash: Callable[[Flask], object] | None = None  # the dashboards, with the pipeline
    if components is None:
        components = build_components(config, registry=registry, clock=clock, session=session)
        if pipeline:
            components, blueprints, mount_dash = _with_pipeline(
                config, components, registry, clock, blueprints
            )
    plane = ControlPlane(config, components, registry)
    app = Flask("controlplane")
    # werkzeug refuses a larger body (413) before anything reads it, chunked ones included
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    app.extensions[EXTENSION] = plane
    app.register_blueprint(
        create_blueprint(
            querier=components.querier,
            catalog=components.catalog,
            targets=components.targets,
            clock=clock,
            max_concurrency=config.query.max_concurrency,
            parse_limits=parse_limits(config),
        )
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if mount_dash is not None:
        mount_dash(app)  # /dash/: Dash on this same Flask server
    app.register_blueprint(docs.create_blueprint(config.docs_dir))
    health.install_metrics(app, registry, components.backend)
    health.install_probes(app, plane.ready)
    health.install_errors(app)
    return app


def _with_pipeline(
    config: Config,
    components: Components,
    registry: CollectorRegistry,
    clock: Callable[[], float],
    blueprints: Sequence[Blueprint],
) -> tuple[Components, Sequence[Blueprint], Callable[[Flask], object]]:
    """Rules, notification routing and runbooks over the components' querier. In remote mode
    recording-rule output and ALERTS stay in a small local store: the remote is read-only.
    The third value mounts the dashboards, which read the pipeline's read models."""
    from controlplane.pipeline import build_pipeline

    sink = components.store or Store(retention_ms=3_600_000)
    cycle = build_pipeline(
        config,
        querier=components.querier,
        sink=sink,
        restore_source=sink,
        registry=registry,
        clock=clock,
    )

    def start() -> None:
        components.start()
        cycle.start()

    def stop() -> None:
        try:
            cycle.stop()
        finally:
            components.stop()

    reload = cycle.reload
    if components.store is not None and components.store.history is not None:
        reload = _follow_slos(config, components.store, cycle.slos, cycle.reload)
    combined = dataclasses.replace(
        components, start=start, stop=stop, interrupt=cycle.interrupt, reload=reload
    )
    mount = functools.partial(
        _mount_dash, config=config, cycle=cycle, querier=components.querier, clock=clock
    )
    return combined, (*blueprints, *cycle.blueprints), mount


def history_config(config: Config, slos: Sequence[SLO] = ()) -> HistoryConfig | None:
    """The store's long-term tier (None: `store.history_match` is null): what the SLO pages
    read, the `slo:*` series and the SLIs' inputs, for the longest SLO window (30 days until
    the specs are read) plus `store.history_margin`."""
    store = config.store
    if store.history_match is None:
        return None
    window = longest_window(slos)
    window_ms = DEFAULT_WINDOW_MS if window is None else round(window.total_seconds() * 1000)
    return HistoryConfig(
        match=store.history_match,
        names=sli_metric_names(slos),
        resolution_ms=round(store.history_resolution_s * 1000),
        retention_ms=window_ms + round(store.history_margin_s * 1000),
    )


def _follow_slos(
    config: Config, store: Store, slos: list[SLO], reload: Callable[[], None]
) -> Callable[[], None]:
    """Fit the tier to the SLOs now, and again after each successful reload (`slos` is the
    pipeline's live list, which a reload refills)."""

    def fit() -> None:
        wanted = history_config(config, slos)
        if wanted is not None:
            store.configure_history(wanted)

    def reload_and_fit() -> None:
        reload()
        fit()

    fit()
    return reload_and_fit


def _mount_dash(
    app: Flask,
    *,
    config: Config,
    cycle: Pipeline,
    querier: Querier,
    clock: Callable[[], float],
) -> object:
    """The dashboards at /dash/, reading the querier and the pipeline's read models, acting
    through its operations; and the gate that asks readers for a token or a session when
    anonymous reads are off."""
    from dashboards import PREFIX, ReadModels, create_dash
    from dashboards.acting import Acting

    sessions = cycle.sessions
    install_read_gate(
        app,
        cycle.access,
        lambda access: getattr(sessions.read(access, request.cookies.get(COOKIE)), "user", None),
        sign_in=f"{PREFIX}signin",
    )

    reads = ReadModels(
        querier=querier,
        slos=cycle.slos,  # the live list: a reload shows
        alerts=cycle.rules.alerts,
        executions=cycle.executions,
        automation=cycle.switches,
        audit=cycle.audit,
        budget=cycle.remediator.budget,
        runbooks=tuple(cycle.remediator.runbooks),
        clock=clock,
        acting=Acting(ops=cycle.ops, access=cycle.access, sessions=sessions),
        slack_api_url=config.slack.api_url if config.slack.bot_token else None,
    )
    return create_dash(app, reads=reads)


def build_components(
    config: Config,
    *,
    registry: CollectorRegistry,
    clock: Callable[[], float] = time.time,
    session: requests.Session | None = None,
) -> Components:
    """The components the config selects: remote when `query.prometheus_url` is set."""
    if config.query.prometheus_url:
        if config.scrape.targets:
            log.warning(
                "remote mode (%s): the %d configured scrape targets are not scraped here",
                config.query.prometheus_url,
                len(config.scrape.targets),
            )
        remote = RemotePrometheus(
            config.query.prometheus_url, session=session, timeout_s=config.query.timeout_s
        )
        return Components(querier=remote, catalog=remote, backend="remote", close=remote.close)
    return _embedded(config, registry=registry, clock=clock)


def _embedded(
    config: Config, *, registry: CollectorRegistry, clock: Callable[[], float]
) -> Components:
    """The store (with its checkpoint), the PromQL engine over it, and the scrape manager."""
    history = history_config(config)
    store = Store(
        retention_ms=round(config.store.retention_s * 1000),
        history=History(history) if history is not None else None,
    )
    path = config.store.checkpoint_path
    checkpointer = (
        Checkpointer(store, path, snapshot_interval_s=config.store.checkpoint_interval_s)
        if path is not None
        else None
    )
    engine = Engine(
        store,
        lookback_ms=round(config.query.lookback_s * 1000),
        max_samples=config.query.max_samples,
        timeout_s=config.query.timeout_s,
        parse_limits=parse_limits(config),
    )
    scraper = ScrapeManager(store, config.scrape.targets, clock=clock, checkpointer=checkpointer)
    registry.register(StoreCollector(store))
    return Components(
        querier=EmbeddedQuerier(engine),
        catalog=StoreCatalog(store),
        targets=scraper,
        store=store,
        scraper=scraper,
        start=functools.partial(_start_embedded, checkpointer, scraper),
        stop=functools.partial(_stop_embedded, checkpointer, scraper),
    )


def parse_limits(config: Config) -> ParseLimits:
    return ParseLimits(max_length=config.query.max_length, max_depth=config.query.max_depth)


def _start_embedded(checkpointer: Checkpointer | None, scraper: ScrapeManager) -> None:
    # restore before the first scrape appends, so restored samples are not "out of order"
    if checkpointer is not None:
        checkpointer.load()
    scraper.start()


def _stop_embedded(checkpointer: Checkpointer | None, scraper: ScrapeManager) -> None:
    try:
        scraper.stop()
    finally:
        if checkpointer is not None:
            checkpointer.close()


class EmbeddedQuerier:
    """The embedded engine, able to honour the API's per-request `timeout` parameter."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        return self.engine.instant(expr, time_ms)

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        return self.engine.range(expr, start_ms, end_ms, step_ms)

    def with_timeout(self, timeout_s: float) -> EmbeddedQuerier:
        bounded = copy.copy(self.engine)
        bounded.timeout_s = min(timeout_s, self.engine.timeout_s)
        return EmbeddedQuerier(bounded)
