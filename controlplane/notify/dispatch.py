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
drive time with a fake clock and production drives it with `DispatcherRunner`.

The dispatcher never sends. A flush's decisions (the notification log entries) and their
messages go to the outbox in one transaction (outbox.py), and sender threads deliver them
(sender.py): a slow or down receiver never holds up a tick, and a restart neither loses a
decided notification nor makes it twice. If that transaction fails, nothing was decided:
the group flushes again soon.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from controlplane.errors import ConfigError
from controlplane.model.series import Labels
from controlplane.notify.alerts import Alert, GroupKey, group_status, merge, sort_key
from controlplane.notify.inhibit import Inhibitor
from controlplane.notify.message import Decision, Message
from controlplane.notify.nflog import LogEntry, LogLine, log_key, needs_update
from controlplane.notify.notifiers import Integration, pace_key
from controlplane.notify.outbox import Outbox
from controlplane.notify.routing import Route, RoutingConfig
from controlplane.notify.silences import utc_now

log = logging.getLogger(__name__)

GroupId = tuple[tuple[int, ...], Labels]
"""(route path, group labels): one aggregation group."""
# a flush whose decisions could not be written is tried again this soon, not a group_interval later
RETRY_FLUSH = timedelta(seconds=10)
# An acknowledged group's repeat interval: no reminders (the log forgets after its retention)
ACKNOWLEDGED_REPEAT = timedelta(days=365)


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


class Dispatcher:
    def __init__(
        self,
        *,
        routing: RoutingConfig,
        integrations: Mapping[str, Sequence[Integration]],
        outbox: Outbox,
        silences: SilenceSource | None = None,
        clock: Callable[[], datetime] = utc_now,
        acknowledged: Callable[[GroupKey], bool] | None = None,
    ) -> None:
        missing = {r.options.receiver for r in routing.route.walk()} - set(integrations)
        if missing:
            raise ConfigError(f"{routing.source}: no integrations built for {sorted(missing)!r}")
        self._routing = routing
        self._integrations = {k: tuple(v) for k, v in integrations.items()}
        self._silences = silences
        self._last_silences: tuple[Mute, ...] = ()
        self._clock = clock
        self._outbox = outbox
        self._lock = threading.Lock()  # groups and alerts: put() comes from request threads
        self._tick_lock = threading.Lock()  # the log: one tick decides at a time
        self._groups: dict[GroupId, _Group] = {}
        self._alerts: dict[str, Alert] = {}
        self.wakeup = threading.Event()
        # someone is on the group (Slack's Acknowledge): news still notifies, repeats do not;
        # public so the pipeline can set it after build_notify. It must not raise.
        self.acknowledged = acknowledged

    def reconfigure(
        self, routing: RoutingConfig, integrations: Mapping[str, Sequence[Integration]]
    ) -> None:
        """A reload: new routes and receivers. Alerts are grouped again under the new tree; a
        group it still has keeps its timing and its log, so it is not told twice. Notifications
        already decided stay in the outbox and go to the integrations of the new receivers."""
        missing = {r.options.receiver for r in routing.route.walk()} - set(integrations)
        if missing:
            raise ConfigError(f"{routing.source}: no integrations built for {sorted(missing)!r}")
        now = self._clock()
        with self._tick_lock, self._lock:
            self._routing = routing
            self._integrations = {k: tuple(v) for k, v in integrations.items()}
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
        """Flush the groups that are due at `now`: their notifications go to the outbox."""
        now = self._clock() if now is None else now
        with self._tick_lock:
            self._flush_due(now)
            self._cleanup()

    def next_due(self) -> datetime | None:
        """When `tick` next has work, for a runner that sleeps until then."""
        with self._lock:
            return min((g.next_flush for g in self._groups.values()), default=None)

    def integration(self, receiver: str, name: str) -> Integration | None:
        """The integration `name` of `receiver` as configured now: whom the sender calls."""
        for integration in self._integrations.get(receiver, ()):
            if integration.name == name:
                return integration
        return None

    def _flush_due(self, now: datetime) -> None:
        with self._lock:
            due = [g for g in self._groups.values() if g.next_flush <= now]
            snapshots = []
            for group in due:
                group.next_flush = now + group.route.options.group_interval
                group.has_flushed = True
                snapshots.append((group, tuple(group.alerts.values())))
            everything = tuple(self._alerts.values()) if due else ()
        if not snapshots:
            return
        muted = self._muter(everything, now)
        for group, alerts in snapshots:
            try:
                self._plan(group, alerts, muted, now)
            except Exception:  # the database boundary: nothing was decided, so decide again
                log.exception("cannot record the flush of %s; retrying", str(group.key))
                with self._lock:
                    group.next_flush = min(group.next_flush, now + RETRY_FLUSH)

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
    ) -> None:
        resolved_now = {a.fingerprint: a for a in alerts if a.resolved_at(now)}
        # a firing alert is sent without its (future) end, so it never looks resolved
        view = [a if a.fingerprint in resolved_now else replace(a, ends_at=None) for a in alerts]
        view = sorted((a for a in view if not muted(a.labels)), key=sort_key)
        if self._routing.time_muted(group.route, now):
            view = []  # nothing sent and nothing logged: the group notifies once the time is over
        receiver = group.route.options.receiver
        integrations = self._integrations[receiver] if view else ()
        keys = {i.name: log_key(group.id[0], group.id[1], receiver, i.name) for i in integrations}
        known = self._outbox.nflog.get_many(keys.values())
        decisions = []
        for integration in integrations:
            key = keys[integration.name]
            decided = self._decide(group, integration, (key, known.get(key)), view, now)
            if decided is not None:
                decisions.append(decided)
        if decisions:
            self._outbox.record(decisions, now)
        # in the outbox, the resolved alerts will be told: those not re-sent since can go
        self._finish(group.id, resolved_now)

    def _decide(
        self,
        group: _Group,
        integration: Integration,
        logged: tuple[str, LogEntry | None],
        view: Sequence[Alert],
        now: datetime,
    ) -> Decision | None:
        """What this integration needs to be told now, if anything (Alertmanager's dedup):
        the log entry to write, and the message unless there is nothing it wants to hear."""
        firing = frozenset(a.fingerprint for a in view if a.ends_at is None)
        resolved = frozenset(a.fingerprint for a in view if a.ends_at is not None)
        repeat_interval = group.route.options.repeat_interval
        if self.acknowledged is not None and self.acknowledged(group.key):
            repeat_interval = ACKNOWLEDGED_REPEAT
        if not needs_update(
            logged[1],
            firing=firing,
            resolved=resolved,
            send_resolved=integration.send_resolved,
            repeat_interval=repeat_interval,
            now=now,
        ):
            return None
        entry = LogEntry(firing=firing, resolved=resolved, sent_at=now)
        return _decision(group, integration, logged[0], entry, view)

    def _finish(self, group_id: GroupId, resolved: Mapping[str, Alert]) -> None:
        """Every integration will hear of the resolved alerts: drop those not re-sent since."""
        with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                return
            for fp, original in resolved.items():
                if group.alerts.get(fp) is original:
                    del group.alerts[fp]

    def _cleanup(self) -> None:
        with self._lock:
            for gid in [gid for gid, g in self._groups.items() if not g.alerts]:
                del self._groups[gid]
            referenced = {fp for g in self._groups.values() for fp in g.alerts}
            for fp in [fp for fp in self._alerts if fp not in referenced]:
                del self._alerts[fp]

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


def _decision(
    group: _Group, integration: Integration, key: str, entry: LogEntry, view: Sequence[Alert]
) -> Decision:
    receiver = group.route.options.receiver
    line = LogLine(
        key=key,
        receiver=receiver,
        integration=integration.name,
        group_key=str(group.key),
        entry=entry,
    )
    sent = view if integration.send_resolved else [a for a in view if a.ends_at is None]
    if not sent:
        # nothing this integration wants to hear; only the log needs to forget
        return Decision(line=line, message=None)
    message = Message(
        receiver=receiver,
        integration=integration.name,
        group_key=group.key,
        alerts=tuple(sent),
        status=group_status(sent),
        pace_key=pace_key(integration, group.key, receiver),
    )
    return Decision(line=line, message=message)
