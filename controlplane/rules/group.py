"""Evaluate one rule group at a time t, as Prometheus's Group.Eval does.

Rules run in file order, each as an instant query at t; a recording rule's output is written
to the sink at once, so later rules of the same group see it. An alerting rule advances its
alerts (alerting.py) and writes ALERTS/ALERTS_FOR_STATE. Series a rule wrote last time and not
this time get a staleness marker. A failing rule (query error, duplicate output labels, limit
exceeded) gets health `err` and its lastError, counts a failure, and does not stop the others.

The querier, the sink and the registry are passed in; so is the timer that measures
evaluationTime (wall-clock cost, not the evaluation timestamp).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from controlplane.errors import ControlPlaneError, EvalError
from controlplane.model.series import METRIC_NAME, STALE_NAN, Labels, SeriesSource
from controlplane.promql.results import InstantSample, Querier, ResultType
from controlplane.rules.alerting import Alert, AlertState, AlertTracker
from controlplane.rules.model import (
    DEFAULT_INTERVAL_MS,
    AlertingRule,
    RecordingRule,
    Rule,
    RuleGroup,
)

log = logging.getLogger(__name__)

DEFAULT_RESEND_DELAY_MS = 60_000


class Sink(Protocol):
    """Where rule output goes (the store, or a test's list): one sample at a time, readable
    by the next query as soon as `append` returns."""

    def append(self, labels: Labels, t_ms: int, value: float) -> object: ...


class RuleHealth(StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    ERR = "err"


@dataclass(frozen=True, kw_only=True)
class RuleStatus:
    rule: Rule
    health: RuleHealth = RuleHealth.UNKNOWN
    last_error: str = ""
    last_evaluation_ms: int | None = None
    evaluation_s: float = 0.0
    alerts: tuple[Alert, ...] = ()  # pending and firing, for alerting rules
    state: AlertState | None = None  # the highest alert state, for alerting rules


@dataclass(frozen=True, kw_only=True)
class GroupStatus:
    group: RuleGroup
    interval_ms: int
    rules: tuple[RuleStatus, ...]
    last_evaluation_ms: int | None = None
    evaluation_s: float = 0.0


class RuleMetrics:
    """The rule engine's own health, on the registry passed in (names mirror Prometheus's
    prometheus_rule_* family, label rule_group = "<file>;<group>")."""

    def __init__(self, registry: CollectorRegistry) -> None:
        label = ["rule_group"]
        self.evaluations = Counter(
            "controlplane_rule_evaluations", "Rule evaluations.", label, registry=registry
        )
        self.failures = Counter(
            "controlplane_rule_evaluation_failures",
            "Rule evaluations that failed.",
            label,
            registry=registry,
        )
        self.duration = Gauge(
            "controlplane_rule_group_last_duration_seconds",
            "Time the last evaluation of the group took.",
            label,
            registry=registry,
        )
        self.samples = Gauge(
            "controlplane_rule_group_last_evaluation_samples",
            "Samples the last evaluation of the group returned.",
            label,
            registry=registry,
        )
        self.interval = Gauge(
            "controlplane_rule_group_interval_seconds",
            "The interval of the group (compare with its last duration).",
            label,
            registry=registry,
        )
        self.iterations_missed = Counter(
            "controlplane_rule_group_iterations_missed",
            "Scheduled evaluations skipped because the previous one ran late.",
            label,
            registry=registry,
        )


def query_vector(querier: Querier, expr: str, t_ms: int) -> list[InstantSample]:
    """A rule's query: an instant vector, a scalar as one sample without labels, else an
    error (Prometheus's EngineQueryFunc)."""
    result = querier.instant(expr, t_ms)
    if result.type is ResultType.VECTOR:
        return list(result.vector)
    if result.type is ResultType.SCALAR and result.scalar is not None:
        return [InstantSample(labels=(), t_ms=t_ms, value=result.scalar.value)]
    raise EvalError("rule result is not a vector or scalar")


def recorded(
    rule: RecordingRule, vector: Sequence[InstantSample], limit: int
) -> list[tuple[Labels, float]]:
    """The series a recording rule writes: result labels, the record name, the rule labels."""
    out: dict[Labels, float] = {}
    for sample in vector:
        labels = dict(sample.labels)
        labels[METRIC_NAME] = rule.name
        for name, value in rule.labels:
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
        key: Labels = tuple(sorted(labels.items()))
        if key in out:
            raise EvalError(
                "vector contains metrics with the same labelset after applying rule labels"
            )
        out[key] = sample.value
    if limit > 0 and len(out) > limit:
        raise EvalError(f"exceeded limit of {limit} with {len(out)} series")
    return list(out.items())


class GroupEvaluator:
    """The runtime state of one group: per-rule health and timings, alert trackers, and the
    series each rule wrote last time (for staleness markers). Thread-safe."""

    def __init__(
        self,
        group: RuleGroup,
        *,
        querier: Querier,
        sink: Sink,
        default_interval_ms: int = DEFAULT_INTERVAL_MS,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS,
        restored: bool = True,
        metrics: RuleMetrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
        log_failures: bool = True,
    ) -> None:
        self.group = group
        self.log_failures = log_failures  # unit-test runs report failures themselves
        self.interval_ms = group.interval_or(default_interval_ms)
        self.querier, self.sink, self.metrics, self.timer = querier, sink, metrics, timer
        self.resend_delay_ms = resend_delay_ms
        if metrics is not None:
            metrics.interval.labels(self.key).set(self.interval_ms / 1000)
        self.lock = threading.RLock()
        self.trackers: dict[int, AlertTracker] = {
            i: AlertTracker(
                rule,
                external_labels=external_labels,
                external_url=external_url,
                restored=restored,
            )
            for i, rule in enumerate(group.rules)
            if isinstance(rule, AlertingRule)
        }
        self._status = [RuleStatus(rule=rule) for rule in group.rules]
        self._previous: list[set[Labels]] = [set() for _ in group.rules]
        self._last_ms: int | None = None
        self._evaluation_s = 0.0

    @property
    def key(self) -> str:
        return self.group.key

    def evaluate(self, t_ms: int) -> list[Alert]:
        """Evaluate every rule at t; returns the alerts due to be sent to notifiers."""
        with self.lock:
            started = self.timer()
            to_send: list[Alert] = []
            written = 0
            for i, rule in enumerate(self.group.rules):
                sent, count = self._evaluate_rule(i, rule, t_ms)
                to_send.extend(sent)
                written += count
            self._evaluation_s = self.timer() - started
            self._last_ms = t_ms
            if self.metrics is not None:
                self.metrics.duration.labels(self.key).set(self._evaluation_s)
                self.metrics.samples.labels(self.key).set(written)
            return to_send

    def _evaluate_rule(self, i: int, rule: Rule, t_ms: int) -> tuple[list[Alert], int]:
        started = self.timer()
        if self.metrics is not None:
            self.metrics.evaluations.labels(self.key).inc()
        try:
            vector = query_vector(self.querier, rule.expr, t_ms)
            if isinstance(rule, RecordingRule):
                samples = recorded(rule, vector, self.group.limit)
            else:
                samples = self.trackers[i].evaluate(
                    vector, t_ms, query=self._template_query, limit=self.group.limit
                )
        except Exception as exc:  # any failure is this rule's, never the group's
            self._failed(i, rule, t_ms, exc, started)
            return [], 0
        sent: list[Alert] = []
        if isinstance(rule, AlertingRule):
            sent = self.trackers[i].to_send(
                t_ms, resend_delay_ms=self.resend_delay_ms, interval_ms=self.interval_ms
            )
        error = self._write(i, samples, t_ms)
        self._status[i] = self._rule_status(i, rule, t_ms, started, error)
        return sent, len(samples)

    def _template_query(self, expr: str, t_ms: int) -> list[InstantSample]:
        return query_vector(self.querier, expr, t_ms)

    def _failed(self, i: int, rule: Rule, t_ms: int, exc: Exception, started: float) -> None:
        if self.log_failures and isinstance(exc, ControlPlaneError):
            log.warning(
                "evaluating rule failed: group=%r rule=%r err=%s", self.group.name, rule.name, exc
            )
        elif self.log_failures:  # not one of ours: a bug, worth its traceback
            log.exception("rule %r of group %r failed unexpectedly", rule.name, self.group.name)
        if self.metrics is not None:
            self.metrics.failures.labels(self.key).inc()
        self._status[i] = self._rule_status(i, rule, t_ms, started, str(exc) or repr(exc))

    def _rule_status(self, i: int, rule: Rule, t_ms: int, started: float, error: str) -> RuleStatus:
        tracker = self.trackers.get(i)
        return RuleStatus(
            rule=rule,
            health=RuleHealth.ERR if error else RuleHealth.OK,
            last_error=error,
            last_evaluation_ms=t_ms,
            evaluation_s=self.timer() - started,
            alerts=tuple(tracker.active_alerts()) if tracker else (),
            state=tracker.state() if tracker else None,
        )

    def _write(self, i: int, samples: Sequence[tuple[Labels, float]], t_ms: int) -> str:
        """Append the rule's samples and staleness markers; an append error is the rule's."""
        error = ""
        seen: set[Labels] = set()
        for labels, value in samples:
            try:
                self.sink.append(labels, t_ms, value)
                seen.add(labels)
            except ControlPlaneError as exc:
                error = f"appending {labels!r}: {exc}"
        for labels in self._previous[i] - seen:
            try:
                self.sink.append(labels, t_ms, STALE_NAN)
            except ControlPlaneError as exc:
                log.warning("marking %r stale failed: %s", labels, exc)
        self._previous[i] = seen
        return error

    def mark_all_stale(self, t_ms: int) -> None:
        """A removed group ends its series, as Prometheus does on reload."""
        with self.lock:
            for i in range(len(self._previous)):
                self._write(i, (), t_ms)

    def status(self) -> GroupStatus:
        with self.lock:
            return GroupStatus(
                group=self.group,
                interval_ms=self.interval_ms,
                rules=tuple(self._status),
                last_evaluation_ms=self._last_ms,
                evaluation_s=self._evaluation_s,
            )

    def alerts(self) -> list[Alert]:
        """Every alert held by the group's rules, resolved ones included."""
        with self.lock:
            return [a for i in sorted(self.trackers) for a in self.trackers[i].alerts()]

    def restore_for_state(
        self, source: SeriesSource, now_ms: int, *, outage_tolerance_ms: int, grace_ms: int
    ) -> None:
        with self.lock:
            for tracker in self.trackers.values():
                tracker.restore_for_state(
                    source, now_ms, outage_tolerance_ms=outage_tolerance_ms, grace_ms=grace_ms
                )

    def copy_state(self, old: GroupEvaluator) -> None:
        """Keep alerts and written-series memory of rules that survive a reload (matched by
        name and labels, in order), as Prometheus's Group.CopyState."""
        with self.lock, old.lock:
            pool: dict[tuple[str, object], list[int]] = {}
            for j, rule in enumerate(old.group.rules):
                pool.setdefault((rule.name, rule.labels), []).append(j)
            for i, rule in enumerate(self.group.rules):
                matches = pool.get((rule.name, rule.labels))
                if not matches:
                    continue
                j = matches.pop(0)
                self._previous[i] = old._previous[j]
                self._status[i] = RuleStatus(rule=rule, health=old._status[j].health)
                if i in self.trackers and j in old.trackers:
                    self.trackers[i].adopt(old.trackers[j])
            self._last_ms, self._evaluation_s = old._last_ms, old._evaluation_s
