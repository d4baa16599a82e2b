"""Run rule groups at their intervals on an APScheduler BackgroundScheduler.

    manager = RuleManager(querier=engine, sink=store, restore_source=store,
                          on_alerts=dispatcher.receive, registry=registry)
    manager.load(["rules/"])      # or manager.update(groups)
    manager.start()               # one interval job per group
    ...
    manager.stop()

Each group evaluates at timestamps aligned to its interval (plus a per-group offset, so groups
spread over the interval as in Prometheus); a late run evaluates at the latest aligned time and
counts the iterations it skipped. Firing and resolved alerts due to be sent go to `on_alerts`
(the notification dispatcher). After a start, alerting rules restore their `for` state from
ALERTS_FOR_STATE in `restore_source` after the group's second evaluation, as Prometheus does;
until then they do not write ALERTS series. `update` keeps the state of surviving rules and
ends the series of removed groups. `evaluate_group(key, t_ms)` runs one iteration without the
scheduler (backtests, tests).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from prometheus_client import CollectorRegistry

from controlplane.model.series import SeriesSource
from controlplane.promql.results import Querier
from controlplane.rules.alerting import Alert
from controlplane.rules.group import (
    DEFAULT_RESEND_DELAY_MS,
    GroupEvaluator,
    GroupStatus,
    RuleMetrics,
    Sink,
)
from controlplane.rules.load import load_files, rule_files
from controlplane.rules.model import DEFAULT_INTERVAL_MS, RuleGroup

log = logging.getLogger(__name__)

DEFAULT_OUTAGE_TOLERANCE_MS = 3_600_000  # Prometheus's --rules.alert.for-outage-tolerance
DEFAULT_FOR_GRACE_PERIOD_MS = 600_000  # --rules.alert.for-grace-period

AlertCallback = Callable[[Sequence[Alert]], None]


class RuleManager:
    def __init__(
        self,
        *,
        querier: Querier,
        sink: Sink,
        scheduler: BaseScheduler | None = None,
        clock: Callable[[], float] = time.time,
        on_alerts: AlertCallback | None = None,
        restore_source: SeriesSource | None = None,
        default_interval_ms: int = DEFAULT_INTERVAL_MS,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS,
        outage_tolerance_ms: int = DEFAULT_OUTAGE_TOLERANCE_MS,
        for_grace_period_ms: int = DEFAULT_FOR_GRACE_PERIOD_MS,
        registry: CollectorRegistry | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.querier, self.sink = querier, sink
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or BackgroundScheduler(timezone=UTC)
        self.clock, self.timer = clock, timer
        self.on_alerts = on_alerts
        self.restore_source = restore_source
        self.default_interval_ms = default_interval_ms
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.resend_delay_ms = resend_delay_ms
        self.outage_tolerance_ms = outage_tolerance_ms
        self.for_grace_period_ms = for_grace_period_ms
        self.metrics = RuleMetrics(registry) if registry is not None else None
        self._lock = threading.Lock()
        self._groups: dict[str, GroupEvaluator] = {}
        self._iterations: dict[str, int] = {}
        self._last_t: dict[str, int] = {}
        self._pending_restore: set[str] = set()
        self._first_load = True
        self._running = False

    # -- configuration -------------------------------------------------------------------------

    def load(self, paths: Iterable[str | Path]) -> list[RuleGroup]:
        """Load rule files/directories (RuleFileError lists every problem) and apply them."""
        files, skipped = rule_files(paths)
        for path in skipped:
            log.info("skipping %s: not a rule file (no top-level 'groups' key)", path)
        groups = load_files(files)
        self.update(groups)
        return groups

    def update(self, groups: Sequence[RuleGroup]) -> None:
        restoring = self._first_load and self.restore_source is not None
        self._first_load = False
        fresh: dict[str, GroupEvaluator] = {}
        for group in groups:
            evaluator = GroupEvaluator(
                group,
                querier=self.querier,
                sink=self.sink,
                default_interval_ms=self.default_interval_ms,
                external_labels=self.external_labels,
                external_url=self.external_url,
                resend_delay_ms=self.resend_delay_ms,
                restored=not restoring,
                metrics=self.metrics,
                timer=self.timer,
            )
            old = self._groups.get(group.key)
            if old is not None:
                evaluator.copy_state(old)
            fresh[group.key] = evaluator
        with self._lock:
            removed = [g for k, g in self._groups.items() if k not in fresh]
            self._groups = fresh
            if restoring:
                self._pending_restore = set(fresh)
            self._iterations = {k: self._iterations.get(k, 0) for k in fresh}
        now_ms = self._now_ms()
        for evaluator in removed:
            evaluator.mark_all_stale(now_ms)
        if self._running:
            self._schedule()

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._schedule()
        if self._own_scheduler and not self.scheduler.running:
            self.scheduler.start()

    def stop(self) -> None:
        self._running = False
        for job in self.scheduler.get_jobs():
            if job.id.startswith("rules:"):
                job.remove()
        if self._own_scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def _schedule(self) -> None:
        wanted = {f"rules:{key}": g for key, g in self._groups.items()}
        for job in self.scheduler.get_jobs():
            if job.id.startswith("rules:") and job.id not in wanted:
                job.remove()
        for job_id, evaluator in wanted.items():
            interval_s = evaluator.interval_ms / 1000
            first = self._aligned_ms(evaluator, self._now_ms()) + evaluator.interval_ms
            self.scheduler.add_job(
                self._tick,
                "interval",
                seconds=interval_s,
                args=[evaluator.key],
                id=job_id,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(interval_s)),
                next_run_time=datetime.fromtimestamp(first / 1000, tz=UTC),
            )

    def _tick(self, key: str) -> None:
        evaluator = self._groups.get(key)
        if evaluator is None:
            return
        self.evaluate_group(key, self._aligned_ms(evaluator, self._now_ms()))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @staticmethod
    def _aligned_ms(evaluator: GroupEvaluator, now_ms: int) -> int:
        """The latest evaluation time of the group's grid at or before now."""
        interval = evaluator.interval_ms
        offset = zlib.crc32(evaluator.key.encode()) % interval
        return (now_ms - offset) // interval * interval + offset

    def evaluate_group(self, key: str, t_ms: int) -> list[Alert]:
        """One iteration of one group at t: evaluate, restore if due, hand over alerts."""
        evaluator = self._groups[key]
        last = self._last_t.get(key)
        if last is not None and self.metrics is not None and t_ms - last > evaluator.interval_ms:
            missed = (t_ms - last) // evaluator.interval_ms - 1
            self.metrics.iterations_missed.labels(key).inc(missed)
        self._last_t[key] = t_ms
        alerts = evaluator.evaluate(t_ms)
        with self._lock:
            self._iterations[key] = self._iterations.get(key, 0) + 1
            restore = key in self._pending_restore and self._iterations[key] >= 2
            if restore:
                self._pending_restore.discard(key)
        if restore and self.restore_source is not None:
            evaluator.restore_for_state(
                self.restore_source,
                t_ms,  # Prometheus uses the wall clock here; t is it, give or take a tick
                outage_tolerance_ms=self.outage_tolerance_ms,
                grace_ms=self.for_grace_period_ms,
            )
        if alerts and self.on_alerts is not None:
            try:
                self.on_alerts(alerts)
            except Exception:  # the dispatcher's failure must not stop evaluation
                log.exception("handing %d alerts of group %r over failed", len(alerts), key)
        return alerts

    def evaluate_all(self, t_ms: int) -> list[Alert]:
        """Every group once at t, in load order (backtests)."""
        return [a for key in list(self._groups) for a in self.evaluate_group(key, t_ms)]

    # -- reading -------------------------------------------------------------------------------

    def groups(self) -> list[GroupStatus]:
        return [g.status() for g in list(self._groups.values())]

    def alerts(self) -> list[Alert]:
        """Pending and firing alerts of every rule (what /api/v1/alerts lists)."""
        return [
            a for g in list(self._groups.values()) for a in g.alerts() if a.resolved_at_ms is None
        ]
