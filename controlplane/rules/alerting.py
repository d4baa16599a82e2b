"""Alert state of one alerting rule, with Prometheus's semantics (rules/alerting.go, 2.42) and
the Prometheus alert generator compliance specification.

Per evaluation at time t, each result sample becomes an alert identified by its labels (the
sample's labels without `__name__`, plus the rule's expanded labels, plus `alertname`):

- new alert: `pending` with activeAt = t (or straight to `firing` when `for` is 0);
- still returned: value and annotations updated; `pending` -> `firing` once t - activeAt >= for;
- not returned: a `pending` alert is dropped; a `firing` one stays firing while within
  `keep_firing_for` of the first evaluation that missed it, else becomes `inactive` with
  resolvedAt = t and is kept 15 minutes (so it is sent as resolved) before being dropped;
- returned again after resolving: a new alert (new activeAt).

Each pending/firing alert writes `ALERTS{alertstate=...} 1` and `ALERTS_FOR_STATE` (value:
activeAt in unix seconds) at t. `for` state survives a restart through ALERTS_FOR_STATE
(`restore_for_state`, Prometheus's RestoreForState with its outage tolerance and grace
period). Alerts to send are firing ones (first time, then every resend delay) and resolved ones
(once, then every resend delay while retained); endsAt is resolvedAt, or t + 4 x max(resend
delay, group interval) for firing ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from controlplane.errors import EvalError
from controlplane.model.series import (
    METRIC_NAME,
    Labels,
    Matcher,
    MatchOp,
    SeriesSource,
    is_stale_marker,
)
from controlplane.promql.results import InstantSample
from controlplane.rules.model import AlertingRule, Pairs
from controlplane.rules.templates import QueryFunc, TemplateContext, expand_or_error

RESOLVED_RETENTION_MS = 15 * 60_000
ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
ALERT_NAME = "alertname"
ALERT_STATE = "alertstate"


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"

    @property
    def rank(self) -> int:
        return (AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING).index(self)


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert instance at one moment. Times are ms since the epoch; None: not (yet) set."""

    rule: str  # the alerting rule's name
    expr: str
    labels: Labels
    annotations: Pairs
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    last_sent_at_ms: int | None = None
    valid_until_ms: int | None = None
    keep_firing_since_ms: int | None = None

    @property
    def starts_at_ms(self) -> int:
        """What Alertmanager is told: when the alert started firing."""
        return self.fired_at_ms if self.fired_at_ms is not None else self.active_at_ms

    @property
    def ends_at_ms(self) -> int | None:
        return self.resolved_at_ms if self.resolved_at_ms is not None else self.valid_until_ms


def _set_label(labels: dict[str, str], name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)  # as Prometheus's labels builder: an empty value removes it


class AlertTracker:
    """The mutable alert state of one alerting rule; not thread-safe (a group evaluates its
    rules one at a time; readers take `alerts()` snapshots under the group's lock)."""

    def __init__(
        self,
        rule: AlertingRule,
        *,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        restored: bool = True,
    ) -> None:
        self.rule = rule
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        # Until restored (after a restart), ALERTS/ALERTS_FOR_STATE are not written, so the
        # previous process's ALERTS_FOR_STATE is what restore_for_state reads.
        self.restored = restored
        self._active: dict[Labels, Alert] = {}

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(
        self,
        vector: Sequence[InstantSample],
        t_ms: int,
        *,
        query: QueryFunc | None = None,
        limit: int = 0,
    ) -> list[tuple[Labels, float]]:
        """Advance the state with the rule's result at t; returns the ALERTS and
        ALERTS_FOR_STATE samples to write (at t). EvalError leaves the state unchanged, except
        for an exceeded limit, which drops every alert of the rule as Prometheus does."""
        found = self._found(vector, t_ms, query)
        for key, alert in found.items():
            current = self._active.get(key)
            if current is not None and current.state is not AlertState.INACTIVE:
                self._active[key] = replace(
                    current,
                    value=alert.value,
                    annotations=alert.annotations,
                    keep_firing_since_ms=None,
                )
            else:
                self._active[key] = alert
        samples: list[tuple[Labels, float]] = []
        live = 0
        for key in list(self._active):
            stepped = self._step(key, t_ms, key in found)
            if stepped is None:
                continue
            live += 1
            if self.restored:
                active_s = float(stepped.active_at_ms // 1000)
                samples.append((self.alerts_labels(stepped), 1.0))
                samples.append((self.for_state_labels(stepped), active_s))
        if limit > 0 and live > limit:
            self._active.clear()
            raise EvalError(f"exceeded limit of {limit} with {live} alerts")
        return samples

    def _found(
        self, vector: Sequence[InstantSample], t_ms: int, query: QueryFunc | None
    ) -> dict[Labels, Alert]:
        found: dict[Labels, Alert] = {}
        name = f"__alert_{self.rule.name}"
        for sample in vector:
            ctx = TemplateContext(
                labels=dict(sample.labels),
                value=sample.value,
                external_labels=self.external_labels,
                external_url=self.external_url,
                t_ms=t_ms,
                query=query,
            )
            labels = {k: v for k, v in sample.labels if k != METRIC_NAME}
            for label, text in self.rule.labels:
                _set_label(labels, label, expand_or_error(text, name, ctx))
            labels[ALERT_NAME] = self.rule.name
            key: Labels = tuple(sorted(labels.items()))
            if key in found:
                raise EvalError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            annotations = tuple(
                sorted((a, expand_or_error(text, name, ctx)) for a, text in self.rule.annotations)
            )
            found[key] = Alert(
                rule=self.rule.name,
                expr=self.rule.expr,
                labels=key,
                annotations=annotations,
                state=AlertState.PENDING,
                value=sample.value,
                active_at_ms=t_ms,
            )
        return found

    def _step(self, key: Labels, t_ms: int, returned: bool) -> Alert | None:
        """Apply one evaluation to one alert; the alert if it is pending or firing after it."""
        alert = self._active[key]
        if not returned:
            keep = False
            if alert.state is AlertState.FIRING and self.rule.keep_firing_for_ms > 0:
                since = alert.keep_firing_since_ms
                if since is None:
                    since = t_ms
                    alert = replace(alert, keep_firing_since_ms=since)
                keep = t_ms - since < self.rule.keep_firing_for_ms
            resolved = alert.resolved_at_ms
            if alert.state is AlertState.PENDING or (
                resolved is not None and t_ms - resolved > RESOLVED_RETENTION_MS
            ):
                del self._active[key]
                return None
            if not keep:
                if alert.state is not AlertState.INACTIVE:
                    alert = replace(alert, state=AlertState.INACTIVE, resolved_at_ms=t_ms)
                self._active[key] = alert
                return None
        if alert.state is AlertState.PENDING and t_ms - alert.active_at_ms >= self.rule.for_ms:
            alert = replace(alert, state=AlertState.FIRING, fired_at_ms=t_ms)
        self._active[key] = alert
        return alert

    def alerts_labels(self, alert: Alert) -> Labels:
        labels = dict(alert.labels)
        labels[METRIC_NAME] = ALERTS_METRIC
        labels[ALERT_STATE] = alert.state.value
        return tuple(sorted(labels.items()))

    def for_state_labels(self, alert: Alert) -> Labels:
        labels = dict(alert.labels)
        labels[METRIC_NAME] = ALERTS_FOR_STATE_METRIC
        return tuple(sorted(labels.items()))

    # -- notification --------------------------------------------------------------------------

    def to_send(self, t_ms: int, *, resend_delay_ms: int, interval_ms: int) -> list[Alert]:
        """Firing and resolved alerts due to (re)send at t; marks them sent."""
        out: list[Alert] = []
        for key, alert in self._active.items():
            if alert.state is AlertState.PENDING:
                continue
            last = alert.last_sent_at_ms
            resolved_since_sent = alert.resolved_at_ms is not None and (
                last is None or alert.resolved_at_ms > last
            )
            if not resolved_since_sent and last is not None and last + resend_delay_ms >= t_ms:
                continue
            alert = replace(
                alert,
                last_sent_at_ms=t_ms,
                valid_until_ms=t_ms + 4 * max(resend_delay_ms, interval_ms),
            )
            self._active[key] = alert
            out.append(alert)
        return out

    # -- reading -------------------------------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """Every alert held, including resolved ones still retained, sorted by labels."""
        return [self._active[k] for k in sorted(self._active)]

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (what /api/v1/alerts and promtool's tests look at)."""
        return [a for a in self.alerts() if a.resolved_at_ms is None]

    def state(self) -> AlertState:
        states = [a.state for a in self._active.values()]
        return max(states, key=lambda s: s.rank, default=AlertState.INACTIVE)

    def adopt(self, other: AlertTracker) -> None:
        """Take over another tracker's alerts (a reloaded rule keeps its state)."""
        self._active.update(other._active)

    # -- restart -------------------------------------------------------------------------------

    def restore_for_state(
        self, source: SeriesSource, now_ms: int, *, outage_tolerance_ms: int, grace_ms: int
    ) -> None:
        """Prometheus's RestoreForState: shift activeAt of current alerts by the time the
        previous process was down, as recorded in its last ALERTS_FOR_STATE sample, so that
        `for` counts only time the condition was observed, never firing within `grace_ms`
        of the restart; alerts whose `for` is shorter than the grace period just wait `for`."""
        if self.rule.for_ms < grace_ms:
            self.restored = True
            return
        for key, alert in list(self._active.items()):
            restored = self._restored_active_at(
                alert, source, now_ms, outage_tolerance_ms=outage_tolerance_ms, grace_ms=grace_ms
            )
            if restored is not None:
                self._active[key] = replace(alert, active_at_ms=restored)
        self.restored = True

    def _restored_active_at(
        self,
        alert: Alert,
        source: SeriesSource,
        now_ms: int,
        *,
        outage_tolerance_ms: int,
        grace_ms: int,
    ) -> int | None:
        labels = self.for_state_labels(alert)
        matchers = [Matcher(name=k, op=MatchOp.EQ, value=v) for k, v in labels]
        found = [
            s
            for s in source.select(matchers, now_ms - outage_tolerance_ms, now_ms)
            if s.labels == labels and len(s.timestamps)
        ]
        if not found:
            return None
        t, v = int(found[0].timestamps[-1]), float(found[0].values[-1])
        if is_stale_marker(v):  # the alert was not active when the previous process stopped
            return None
        down_at_ms = (t // 1000) * 1000
        active_at_ms = int(v) * 1000
        remaining = self.rule.for_ms - (down_at_ms - active_at_ms)
        if remaining <= 0:
            return active_at_ms  # it was firing; the next evaluation fires it again
        if remaining < grace_ms:
            return now_ms + grace_ms - self.rule.for_ms
        return active_at_ms + (now_ms - down_at_ms)
