"""The evaluate -> alert -> notify / remediate cycle, composed once.

    rule manager --alerts--> notification dispatcher (routing, silences, inhibition)
                 \\-------> remediation worker --> remediator --> executions (thread pool)
    POST /api/v1/alertmanager (external alerts) --> the same two

Silences and inhibition only shape notifications; runbooks see every alert, and maintenance
windows and the kill switch are what stop actions. Building starts nothing; `start` migrates
the database, resumes interrupted executions and starts the threads; `stop` stops them, and an
execution that was mid-way stays running in the database, to be resumed at the next start.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from controlplane import migrations
from controlplane.access import Access, AccessHolder
from controlplane.access.session import Sessions, stored_secret
from controlplane.api import notify as notify_api
from controlplane.api import reload as reload_api
from controlplane.api import rules as rules_api
from controlplane.api import runbooks as runbooks_api
from controlplane.api import slo as slo_api
from controlplane.audit import Anchorer, AuditLog, HeadCollector, default_anchor_path
from controlplane.config import Config
from controlplane.db import create_engine
from controlplane.model.series import SeriesSource
from controlplane.notify.alerts import Alert as NotifyAlert
from controlplane.notify.alerts import fingerprint
from controlplane.notify.handover import to_dispatcher
from controlplane.notify.runner import DispatcherRunner
from controlplane.notify.service import Notify, build_notify
from controlplane.operate import Operations, Silencing
from controlplane.promql.results import Querier
from controlplane.reload import build_reloader, read_access, rule_groups, slo_specs
from controlplane.rules.alerting import Alert as RuleAlert
from controlplane.rules.group import Sink
from controlplane.rules.manager import RuleManager
from controlplane.runbooks import crashpoint
from controlplane.runbooks.act import (
    ActionRunner,
    AggregatorTargets,
    interruptible_sleep,
    log_notification,
    submitter,
)
from controlplane.runbooks.act import Notify as TellPeople
from controlplane.runbooks.engine import AlertEvent, Remediator
from controlplane.runbooks.fleet import FleetReader
from controlplane.runbooks.load import load_runbooks
from controlplane.runbooks.metrics import RemediationCollector
from controlplane.runbooks.recovery import settled_alerts
from controlplane.runbooks.store import ExecutionStore
from controlplane.runbooks.switches import Switches
from controlplane.slack import Slack, build_slack
from controlplane.slack.messaging import build_messaging
from controlplane.slo import SLO, known_alerts

log = logging.getLogger(__name__)
RESEND_DELAY_MS = 5_000


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    blueprints: tuple[Blueprint, ...]
    rules: RuleManager
    remediator: Remediator
    start: Callable[[], None]
    stop: Callable[[], None]
    interrupt: Callable[[], None]  # quick: executions stop where they are (resumed at start)
    reload: Callable[[], None]  # SIGHUP and POST /-/reload: all files or nothing
    slos: list[SLO]  # read by the SLO API and the dashboards; a reload replaces its contents
    executions: ExecutionStore  # the read models the dashboards show
    switches: Switches
    audit: AuditLog
    ops: Operations  # what people do: the API, the dashboards and Slack call the same
    access: AccessHolder  # who may; /-/reload replaces it
    sessions: Sessions  # the dashboards' sign-in cookies
    slack: Slack | None = None  # buttons (the message renderer's hook), acknowledgements


class RemediationWorker:
    """Hands alerts to the remediator on its own thread, so rule evaluation never waits for
    guards or the aggregator, and expires approvals every `tick_s`.

    Every tick it also ends the episodes of rule alerts that neither fire nor are pending any
    more (`Remediator.reconcile`), for the groups that have evaluated twice since the start:
    an alert that resolved while the control plane was down, or that went pending again after
    the restart and cleared, sends no resolved event, and its on_resolved would never run."""

    def __init__(
        self,
        remediator: Remediator,
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
        stopping: threading.Event | None = None,  # shared with the executions' sleep
    ) -> None:
        self._remediator, self._clock, self._tick_s = remediator, clock, tick_s
        self._queue: queue.Queue[AlertEvent] = queue.Queue()
        self._stopping = stopping or threading.Event()
        self._thread: threading.Thread | None = None
        self._rules: RuleManager | None = None
        self._started_ms = 0
        self._first_seen: dict[str, int] = {}  # group -> its first evaluation seen since start

    def follow_rules(self, rules: RuleManager) -> None:
        """The rule manager whose alerts reach `rule_alerts`, for the reconciliation."""
        self._rules = rules

    def rule_alerts(self, alerts: Sequence[RuleAlert]) -> None:
        for a in alerts:
            labels = dict(a.labels)
            self._queue.put(
                AlertEvent(
                    labels=labels,
                    fingerprint=fingerprint(a.labels),
                    firing=a.resolved_at_ms is None,
                    active_at=a.active_at_ms / 1000,
                    value=a.value,
                    source="rules",
                )
            )

    def external_alerts(self, alerts: Sequence[NotifyAlert]) -> None:
        now = self._clock()
        for a in alerts:
            firing = a.ends_at is None or a.ends_at.timestamp() > now
            self._queue.put(
                AlertEvent(
                    labels=a.label_map,
                    fingerprint=a.fingerprint,
                    firing=firing,
                    active_at=a.starts_at.timestamp(),
                    source="external",
                )
            )

    def start(self) -> None:
        self._started_ms = int(self._clock() * 1000)
        self._remediator.resume()
        self._thread = threading.Thread(target=self._run, name="remediation", daemon=True)
        self._thread.start()

    def interrupt(self) -> None:
        """No new remediation, and executions stop at their next sleep or step."""
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_tick = self._clock()
        while not self._stopping.is_set():
            try:
                event = self._queue.get(timeout=self._tick_s)
            except queue.Empty:
                event = None
            try:
                if event is not None:
                    self._remediator.on_alert(event)
                if self._clock() >= next_tick:
                    self._remediator.tick()
                    self.reconcile()
                    next_tick = self._clock() + self._tick_s
            except Exception:  # one bad alert or a database hiccup must not end remediation
                log.exception("remediation of %s failed", event)

    def reconcile(self) -> list[str]:
        """End the episodes of rule alerts that neither fire nor are pending any more."""
        if self._rules is None:
            return []
        settled = settled_alerts(self._rules.groups(), self._started_ms, self._first_seen)
        if not settled:
            return []
        firing = {fingerprint(a.labels) for a in self._rules.alerts()}
        return self._remediator.reconcile(firing, settled)


def build_pipeline(
    config: Config,
    *,
    querier: Querier,
    sink: Sink,
    restore_source: SeriesSource | None,
    registry: CollectorRegistry,
    clock: Callable[[], float] = time.time,
) -> Pipeline:
    db = create_engine(config.database_url)
    access = AccessHolder(read_access(config))
    _warn_if_nobody_writes(access())
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="runbook")
    audit, anchorer = _audit(config, db, registry, clock)
    messaging = build_messaging(config, engine=db, clock=clock)  # None without a bot token
    worker, remediator, (store, switches) = _remediation(
        config,
        querier=querier,
        db=db,
        clock=clock,
        executor=executor,
        audit=audit,
        registry=registry,
        people=messaging.notify if messaging else log_notification,  # + the alert's thread
    )
    notify = build_notify(
        routing=config.routing_file,
        engine=db,
        registry=registry,
        external_url=config.external_url,
        audit=audit,  # every notification sent is on the incident timeline
        slack=messaging.context if messaging else None,
    )
    rules = _rule_manager(
        config, querier, sink, restore_source, registry, clock, notify=notify, worker=worker
    )
    specs = slo_specs(config.rules_dir)
    rules.update(rule_groups(config.rules_dir, specs))
    slos = [slo for spec in specs for slo in spec.slos]
    reloader = build_reloader(
        config,
        rules=rules,
        remediator=remediator,
        notify=notify,
        slos=slos,
        access=access,
        registry=registry,
    )
    ops = Operations(
        remediator=remediator,
        executions=store,
        switches=switches,
        audit=audit,
        silencing=Silencing(silences=notify.silences, audit=audit),
        clock=clock,
    )
    slack = build_slack(
        config.slack,
        ops=ops,
        access=access,
        engine=db,
        groups=notify.dispatcher.groups,
        alerts=notify.dispatcher.alerts,
        clock=clock,
        max_silence_s=config.silence_max_duration_s,
    )
    notify.dispatcher.acknowledged = slack.acknowledged  # acknowledged groups: no reminders
    if messaging is not None:
        messaging.use_buttons(slack.buttons)  # the messages' buttons need ops: built just now
    blueprints = (
        rules_api.create_blueprint(rules),
        notify_api.create_blueprint(
            dispatcher=notify.dispatcher,
            silencing=Silencing(silences=notify.silences, audit=audit),
            access=access,
            on_ingest=worker.external_alerts,  # external alerts trigger runbooks too
            max_silence=timedelta(seconds=config.silence_max_duration_s),
        ),
        runbooks_api.create_blueprint(
            ops, access=access, max_maintenance_s=config.automation.maintenance_max_duration_s
        ),
        slo_api.create_blueprint(slos, querier, rules.alerts, clock=clock),
        reload_api.create_blueprint(reloader.reload, access=access),
        slack.blueprint,  # /slack/actions, /slack/commands (401 without a signing secret)
    )
    start, stop = _lifecycle(db, executor, worker, notify.runner, rules, anchorer)
    stop = slack.stopping_first(stop)  # Slack's worker acts through the database stop closes
    if messaging is not None:
        start, stop = messaging.around(start, stop)  # the thread replies' worker
    return Pipeline(
        blueprints=blueprints,
        rules=rules,
        remediator=remediator,
        start=start,
        stop=stop,
        interrupt=worker.interrupt,
        reload=reloader.reload,
        slos=slos,
        executions=store,
        switches=switches,
        audit=audit,
        ops=ops,
        access=access,
        sessions=Sessions(
            (lambda: config.secret_key or "") if config.secret_key else stored_secret(db),
            ttl_s=config.server.session_ttl_s,
        ),
        slack=slack,
    )


def _rule_manager(
    config: Config,
    querier: Querier,
    sink: Sink,
    restore_source: SeriesSource | None,
    registry: CollectorRegistry,
    clock: Callable[[], float],
    *,
    notify: Notify,
    worker: RemediationWorker,
) -> RuleManager:
    """The rule manager, whose alerts go to both the notifications and the runbooks."""
    to_notify = to_dispatcher(notify.dispatcher.put, external_url=config.external_url)

    def on_alerts(alerts: Sequence[RuleAlert]) -> None:
        to_notify(alerts)
        worker.rule_alerts(alerts)

    # Re-sent every 5s rather than Prometheus's 1m: the dispatcher's group timing still
    # decides what reaches people, and a refused runbook gets its next chance in seconds.
    rules = RuleManager(
        querier=querier,
        sink=sink,
        restore_source=restore_source,
        on_alerts=on_alerts,
        registry=registry,
        clock=clock,
        external_url=config.external_url,
        resend_delay_ms=RESEND_DELAY_MS,
    )
    worker.follow_rules(rules)
    return rules


def _lifecycle(
    db: Engine,
    executor: ThreadPoolExecutor,
    worker: RemediationWorker,
    runner: DispatcherRunner,
    rules: RuleManager,
    anchorer: Anchorer,
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Start and stop, in dependency order: the schema first; rules stop before what they feed;
    the audit head is anchored last, after every writer stopped."""

    def start() -> None:
        migrations.upgrade(db)
        anchorer.start()
        worker.start()
        runner.start()
        rules.start()

    def stop() -> None:
        for step in (rules.stop, runner.stop, worker.stop, anchorer.stop):
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", step)
        executor.shutdown(wait=True, cancel_futures=True)
        db.dispose()

    return start, stop


def _remediation(
    config: Config,
    *,
    querier: Querier,
    db: Engine,
    clock: Callable[[], float],
    executor: ThreadPoolExecutor,
    audit: AuditLog,
    registry: CollectorRegistry,
    people: TellPeople = log_notification,
) -> tuple[RemediationWorker, Remediator, tuple[ExecutionStore, Switches]]:
    """Runbooks, their stores and their worker, acting on the aggregator the config names."""
    automation = config.automation
    targets = AggregatorTargets(
        frontdoor_url=automation.frontdoor_url or "",
        regions=dict(automation.region_urls),
        token=automation.aggregator_token or "",
    )
    stopping = threading.Event()
    runner = ActionRunner(
        targets,
        querier,
        notify=people,
        clock=clock,
        sleep=functools.partial(interruptible_sleep, stopping),
    )
    runbooks = load_runbooks(config.runbooks_dir, known_alerts([str(config.rules_dir)]))
    store, switches = ExecutionStore(db, clock), Switches(db, clock)
    remediator = Remediator(
        runbooks,
        store,
        switches,
        audit,
        runner,
        fleet=FleetReader(targets),
        notify=people,
        clock=clock,
        submit=submitter(executor),
        budget_max_actions=automation.budget_max_actions,
        budget_window_s=automation.budget_window_s,
        crash=crashpoint.from_env(),  # a no-op unless CONTROLPLANE_TEST_HOOKS=1
    )
    worker = RemediationWorker(remediator, clock=clock, stopping=stopping)
    registry.register(RemediationCollector(store, switches, lambda: remediator.budget, db, clock))
    return worker, remediator, (store, switches)


def _audit(
    config: Config, db: Engine, registry: CollectorRegistry, clock: Callable[[], float]
) -> tuple[AuditLog, Anchorer]:
    """The audit log, and its head kept outside the database: in the anchor file and on
    /metrics (for the Prometheus that scrapes this process)."""
    audit = AuditLog(db, clock)
    path = config.audit.anchor_path or default_anchor_path(config.database_url)
    anchorer = Anchorer(audit, path, interval_s=config.audit.anchor_interval_s, clock=clock)
    registry.register(HeadCollector(audit, anchorer))
    return audit, anchorer


def _warn_if_nobody_writes(access: Access) -> None:
    if not any(u.token_sha256 for u in access.users):
        log.warning(
            "no CONTROLPLANE_API_TOKEN and no user with a token in %s: every write call will"
            " be refused (401)",
            access.source,
        )
