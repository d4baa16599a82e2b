"""The dispatcher: alerts in, grouped notifications out, timed as Alertmanager times them.

Each alert joins one aggregation group per matching route, keyed by the route and the values
of its `group_by` labels. A new group flushes `group_wait` after it was created (at once if an
alert in it started more than `group_wait` ago and the group has never flushed), then every
`group_interval`. A flush drops inhibited and silenced alerts, and each integration of the
receiver is notified only if the notification log says there is news, or `repeat_interval`
has passed (see nflog.py). Resolved alerts leave the group once a flush has told every
integration about them; an empty group is dropped. An alert with `ends_at=None` fires until
an update resolves it; a source that may go quiet should send an end, as Prometheus does
(now + 4 evaluation intervals), so that its alerts resolve by themselves.

Time comes only from the injected clock: `tick(now)` does all the work due at `now`, so tests
drive time with a fake clock and production drives it with `DispatcherRunner`. A failed
notification is retried with exponential backoff on later ticks until the group's next flush,
which starts over from the notification log, as Alertmanager's retry stage gives up at its
flush deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from controlplane.errors import ConfigError
from controlplane.model.series import Labels
from controlplane.notify.alerts import Alert, GroupKey, group_status, merge, sort_key
from controlplane.notify.errors import NotifyError
from controlplane.notify.inhibit import Inhibitor
from controlplane.notify.nflog import LogEntry, NotificationLog, needs_update
from controlplane.notify.notifiers import Backoff, Integration
from controlplane.notify.routing import Route, RoutingConfig
from controlplane.notify.silences import utc_now

log = logging.getLogger(__name__)

GroupId = tuple[tuple[int, ...], Labels]
"""(route path, group labels): one aggregation group."""
LogKey = tuple[GroupId, str, str]
"""(group, receiver, integration name): one line of the notification log."""


class Mute(Protocol):
    def mutes(self, labels: Labels) -> bool: ...


class SilenceSource(Protocol):
    """What the dispatcher needs of silences; `SilenceStore` is one."""

    def active(self, now: datetime | None = None) -> Sequence[Mute]: ...


@dataclass(frozen=True, kw_only=True)
class GroupView:
    key: GroupKey
    receiver: str
    alerts: tuple[Alert, ...]
    next_flush: datetime


@dataclass(kw_only=True)
class _Group:
    id: GroupId
    key: GroupKey
    route: Route
    next_flush: datetime
    alerts: dict[str, Alert] = field(default_factory=dict)
    has_flushed: bool = False


@dataclass(kw_only=True)
class _Flush:
    """One flush of one group, done when every delivery it planned has succeeded."""

    group_id: GroupId
    resolved: dict[str, Alert]  # as they were at the flush, to drop if not re-sent since
    pending: int = 0
    failed: bool = False


@dataclass(kw_only=True)
class _Delivery:
    log_key: LogKey
    group_key: GroupKey
    integration: Integration
    alerts: tuple[Alert, ...]
    entry: LogEntry
    flush: _Flush
    due: datetime
    deadline: datetime
    attempt: int = 0


class Dispatcher:
    def __init__(
        self,
        *,
        routing: RoutingConfig,
        integrations: Mapping[str, Sequence[Integration]],
        silences: SilenceSource | None = None,
        clock: Callable[[], datetime] = utc_now,
        backoff: Backoff | None = None,
        nflog: NotificationLog | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        missing = {r.options.receiver for r in routing.route.walk()} - set(integrations)
        if missing:
            raise ConfigError(f"{routing.source}: no integrations built for {sorted(missing)!r}")
        self._routing = routing
        self._integrations = {k: tuple(v) for k, v in integrations.items()}
        self._silences = silences
        self._last_silences: tuple[Mute, ...] = ()
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._nflog = nflog or NotificationLog()
        self._lock = threading.Lock()  # groups and alerts: put() comes from request threads
        self._tick_lock = threading.Lock()  # deliveries and the log: one tick at a time
        self._groups: dict[GroupId, _Group] = {}
        self._alerts: dict[str, Alert] = {}
        self._deliveries: dict[LogKey, _Delivery] = {}
        self.wakeup = threading.Event()
        self._sent, self._failed = _counters(registry)

    def reconfigure(
        self, routing: RoutingConfig, integrations: Mapping[str, Sequence[Integration]]
    ) -> None:
        """A reload: new routes and receivers. Alerts are grouped again under the new tree; a
        group it still has keeps its timing and its log, so it is not told twice. Deliveries
        in flight are dropped: their group sends again at its next flush."""
        missing = {r.options.receiver for r in routing.route.walk()} - set(integrations)
        if missing:
            raise ConfigError(f"{routing.source}: no integrations built for {sorted(missing)!r}")
        now = self._clock()
        with self._tick_lock, self._lock:
            self._routing = routing
            self._integrations = {k: tuple(v) for k, v in integrations.items()}
            self._deliveries.clear()
            old, self._groups = self._groups, {}
            for alert in self._alerts.values():
                for route in routing.route.match(alert.labels):
                    self._insert(route, alert, now)
            for gid, group in self._groups.items():
                if gid in old:
                    group.next_flush, group.has_flushed = old[gid].next_flush, old[gid].has_flushed
        self.wakeup.set()

    # -- alerts in -----------------------------------------------------------------------

    def put(self, alerts: Iterable[Alert]) -> None:
        """Take new or updated alerts; a re-sent alert updates the one with its fingerprint."""
        now = self._clock()
        with self._lock:
            for alert in alerts:
                old = self._alerts.get(alert.fingerprint)
                alert = merge(old, alert) if old is not None else alert
                self._alerts[alert.fingerprint] = alert
                for route in self._routing.route.match(alert.labels):
                    self._insert(route, alert, now)
        self.wakeup.set()

    def _insert(self, route: Route, alert: Alert, now: datetime) -> None:
        labels = route.group_labels(alert.labels)
        gid: GroupId = (route.path, labels)
        group = self._groups.get(gid)
        if group is None:
            group = _Group(
                id=gid,
                key=GroupKey(route_key=route.key, labels=labels),
                route=route,
                next_flush=now + route.options.group_wait,
            )
            self._groups[gid] = group
        group.alerts[alert.fingerprint] = alert
        # an alert that has been firing for longer than group_wait is not held back
        if not group.has_flushed and alert.starts_at + route.options.group_wait < now:
            group.next_flush = min(group.next_flush, now)

    # -- time passes ---------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> None:
        """Flush the groups that are due at `now` and send the notifications that are due."""
        now = self._clock() if now is None else now
        with self._tick_lock:
            self._flush_due(now)
            for delivery in sorted(
                (d for d in self._deliveries.values() if d.due <= now), key=lambda d: d.due
            ):
                self._attempt(delivery, now)
            self._cleanup(now)

    def next_due(self) -> datetime | None:
        """When `tick` next has work, for a runner that sleeps until then."""
        with self._lock:
            times = [g.next_flush for g in self._groups.values()]
        times += [d.due for d in list(self._deliveries.values())]
        return min(times, default=None)

    def _flush_due(self, now: datetime) -> None:
        with self._lock:
            due = [g for g in self._groups.values() if g.next_flush <= now]
            snapshots = []
            for group in due:
                group.next_flush = now + group.route.options.group_interval
                group.has_flushed = True
                snapshots.append((group, tuple(group.alerts.values()), group.next_flush))
            everything = tuple(self._alerts.values()) if due else ()
        if not snapshots:
            return
        muted = self._muter(everything, now)
        for group, alerts, deadline in snapshots:
            self._plan(group, alerts, muted, now, deadline)

    def _muter(self, alerts: Sequence[Alert], now: datetime) -> Callable[[Labels], bool]:
        inhibitor = Inhibitor(self._routing.inhibit_rules, alerts, now)
        silences = self._active_silences(now)
        return lambda labels: inhibitor.mutes(labels) or any(s.mutes(labels) for s in silences)

    def _active_silences(self, now: datetime) -> Sequence[Mute]:
        if self._silences is None:
            return ()
        try:
            self._last_silences = tuple(self._silences.active(now))
        except Exception:  # the database boundary: notify on, with what was last known
            log.exception("cannot read silences; using the %d last read", len(self._last_silences))
        return self._last_silences

    def _plan(
        self,
        group: _Group,
        alerts: Sequence[Alert],
        muted: Callable[[Labels], bool],
        now: datetime,
        deadline: datetime,
    ) -> None:
        resolved_now = {a.fingerprint: a for a in alerts if a.resolved_at(now)}
        flush = _Flush(group_id=group.id, resolved=resolved_now)
        # a firing alert is sent without its (future) end, so it never looks resolved
        view = [a if a.fingerprint in resolved_now else replace(a, ends_at=None) for a in alerts]
        view = sorted((a for a in view if not muted(a.labels)), key=sort_key)
        if self._routing.time_muted(group.route, now):
            view = []  # nothing sent and nothing logged: the group notifies once the time is over
        receiver = group.route.options.receiver
        for integration in self._integrations[receiver]:
            log_key: LogKey = (group.id, receiver, integration.name)
            self._supersede(log_key)
            decided = self._decide(group, integration, log_key, view, now) if view else None
            if decided is not None:
                flush.pending += 1
                self._deliveries[log_key] = _Delivery(
                    log_key=log_key,
                    group_key=group.key,
                    integration=integration,
                    alerts=decided[0],
                    entry=decided[1],
                    flush=flush,
                    due=now,
                    deadline=deadline,
                )
        if flush.pending == 0:
            self._finish(flush)

    def _decide(
        self,
        group: _Group,
        integration: Integration,
        log_key: LogKey,
        view: Sequence[Alert],
        now: datetime,
    ) -> tuple[tuple[Alert, ...], LogEntry] | None:
        """What this integration needs to be sent now, if anything (Alertmanager's dedup),
        and the log entry to write once it is."""
        firing = frozenset(a.fingerprint for a in view if a.ends_at is None)
        resolved = frozenset(a.fingerprint for a in view if a.ends_at is not None)
        if not needs_update(
            self._nflog.get(log_key),
            firing=firing,
            resolved=resolved,
            send_resolved=integration.send_resolved,
            repeat_interval=group.route.options.repeat_interval,
            now=now,
        ):
            return None
        entry = LogEntry(firing=firing, resolved=resolved, sent_at=now)
        sent = view if integration.send_resolved else [a for a in view if a.ends_at is None]
        if not sent:
            # nothing this integration wants to hear; only the log needs to forget
            self._nflog.log(log_key, entry)
            return None
        return tuple(sent), entry

    def _supersede(self, log_key: LogKey) -> None:
        old = self._deliveries.pop(log_key, None)
        if old is not None:
            log.warning("notification %s gave up: superseded by the next flush", _where(old))
            old.flush.failed = True

    def _attempt(self, delivery: _Delivery, now: datetime) -> None:
        integration = delivery.integration
        kind = integration.name.split("[")[0]
        receiver = delivery.log_key[1]
        if self._sent is not None:
            self._sent.labels(kind).inc()
        try:
            integration.notifier.notify(
                delivery.group_key, receiver, delivery.alerts, group_status(delivery.alerts)
            )
        except Exception as exc:  # the notifier boundary: a bug there must not stop dispatch
            if self._failed is not None:
                self._failed.labels(kind).inc()
            self._retry_or_drop(delivery, exc, now)
            return
        del self._deliveries[delivery.log_key]
        self._nflog.log(delivery.log_key, replace(delivery.entry, sent_at=now))
        delivery.flush.pending -= 1
        if delivery.flush.pending == 0 and not delivery.flush.failed:
            self._finish(delivery.flush)

    def _retry_or_drop(self, delivery: _Delivery, exc: Exception, now: datetime) -> None:
        delivery.attempt += 1
        retry_at = now + self._backoff.delay(delivery.attempt)
        retryable = not isinstance(exc, NotifyError) or exc.retryable
        if retryable and retry_at < delivery.deadline:
            delivery.due = retry_at
            log.warning(
                "notification %s failed (attempt %d), retrying at %s: %s",
                _where(delivery),
                delivery.attempt,
                retry_at.isoformat(),
                exc,
            )
            return
        log.error(
            "notification %s failed, giving up until the next flush: %s", _where(delivery), exc
        )
        del self._deliveries[delivery.log_key]
        delivery.flush.failed = True

    def _finish(self, flush: _Flush) -> None:
        """Every integration has heard of the resolved alerts: drop those not re-sent since."""
        with self._lock:
            group = self._groups.get(flush.group_id)
            if group is None:
                return
            for fp, original in flush.resolved.items():
                if group.alerts.get(fp) is original:
                    del group.alerts[fp]

    def _cleanup(self, now: datetime) -> None:
        with self._lock:
            for gid in [gid for gid, g in self._groups.items() if not g.alerts]:
                del self._groups[gid]
            referenced = {fp for g in self._groups.values() for fp in g.alerts}
            for fp in [fp for fp in self._alerts if fp not in referenced]:
                del self._alerts[fp]
        self._nflog.gc(now)

    # -- views ---------------------------------------------------------------------------

    def groups(self) -> list[GroupView]:
        with self._lock:
            return [
                GroupView(
                    key=g.key,
                    receiver=g.route.options.receiver,
                    alerts=tuple(sorted(g.alerts.values(), key=sort_key)),
                    next_flush=g.next_flush,
                )
                for g in self._groups.values()
            ]

    def alerts(self) -> list[Alert]:
        with self._lock:
            return sorted(self._alerts.values(), key=sort_key)


def _counters(registry: CollectorRegistry | None) -> tuple[Counter | None, Counter | None]:
    if registry is None:
        return None, None
    sent = Counter(
        "controlplane_notifications_total",
        "Notifications attempted, by integration kind.",
        ["integration"],
        registry=registry,
    )
    failed = Counter(
        "controlplane_notifications_failed_total",
        "Notifications that failed, by integration kind.",
        ["integration"],
        registry=registry,
    )
    return sent, failed


def _where(delivery: _Delivery) -> str:
    return f"{delivery.log_key[1]}/{delivery.integration.name} {str(delivery.group_key)!r}"
