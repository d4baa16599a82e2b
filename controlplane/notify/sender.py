"""The sender: takes due rows from the outbox, calls their integration's notifier, records how
it went. Runs on its own threads (runner.py `SenderRunner`), so a slow or dead receiver holds
up only its own rows, never evaluation nor the dispatcher's tick.

Outcomes: delivered rows are marked sent and audited (`notified`); a retryable failure (a
NotifyError with `retryable`, a connection error, a notifier bug) is tried again after
exponential backoff, or after the receiver's Retry-After, whichever is longer; a refusal, or
`max_attempts` failures, makes a dead letter: kept with its error, counted, audited
(`notification_failed`), and its log entry forgotten so that the group's next flush decides
again, as Alertmanager retries at its next flush.

Exactly once, nearly: the row is marked sent right after the notifier returns. A crash in
between (the receiver has it, the database does not know) makes the row look abandoned; when
its lease expires it is sent again. That window is one database commit long; PagerDuty's
dedup_key and Slack's message updates make the repeat land on the same incident or message.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.notify.errors import NotifyError, RetryAfter
from controlplane.notify.message import Message
from controlplane.notify.notifiers import Backoff, Integration
from controlplane.notify.outbox import Claimed, Outbox
from controlplane.notify.silences import utc_now

log = logging.getLogger(__name__)

IntegrationLookup = Callable[[str, str], Integration | None]
"""(receiver, integration name) -> the integration as configured now (None: gone)."""


class AuditSink(Protocol):
    """What the sender needs of the audit log (`controlplane.audit.AuditLog` is one)."""

    def append(self, kind: str, data: Mapping[str, Any], *, actor: str = ...) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class SendPolicy:
    backoff: Backoff = field(default_factory=Backoff)
    max_attempts: int = 10  # with the default backoff: about 4 minutes of trying
    # longer than any notifier's timeout, or a slow send would be taken over and repeated
    lease: timedelta = timedelta(minutes=2)
    pace: timedelta = timedelta(seconds=1)  # per pace key
    keep_sent: timedelta = timedelta(days=1)
    keep_dead: timedelta = timedelta(days=7)
    upkeep_every: timedelta = timedelta(minutes=10)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # the first two are the contract of rules/controlplane.yml: attempts, retries included
        self.attempts = Counter(
            "controlplane_notifications_total",
            "Notifications attempted, by integration kind.",
            ["integration"],
            registry=registry,
        )
        self.failed = Counter(
            "controlplane_notifications_failed_total",
            "Notifications that failed, by integration kind.",
            ["integration"],
            registry=registry,
        )
        self.outcomes = Counter(
            "controlplane_notify_deliveries_total",
            "Delivery attempts by integration kind and outcome "
            "(sent, retried, rate_limited, dead).",
            ["integration", "outcome"],
            registry=registry,
        )
        self.dead = Counter(
            "controlplane_notify_dead_letters_total",
            "Notifications given up on, by integration kind.",
            ["integration"],
            registry=registry,
        )


class OutboxCollector(Collector):
    """Depth, oldest age and dead letters, read from the database at each scrape (so every
    replica reports the one shared outbox)."""

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime]) -> None:
        self._outbox = outbox
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        # registration must not read the database: the tables may not be migrated yet
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        depth, age, dead = self._families()
        try:
            stats = self._outbox.stats()
        except Exception:  # the database boundary: a scrape goes on without these
            return
        depth.add_metric([], stats.depth)
        oldest = stats.oldest
        age.add_metric([], 0.0 if oldest is None else (self._clock() - oldest).total_seconds())
        dead.add_metric([], stats.dead)
        yield from (depth, age, dead)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "controlplane_notify_outbox_depth", "Notifications decided and not yet sent."
            ),
            GaugeMetricFamily(
                "controlplane_notify_outbox_oldest_age_seconds",
                "Age of the oldest notification not yet sent (0 when none).",
            ),
            GaugeMetricFamily(
                "controlplane_notify_outbox_dead_letters",
                "Notifications given up on, still kept in the outbox for inspection.",
            ),
        )


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        integrations: IntegrationLookup,
        *,
        clock: Callable[[], datetime] = utc_now,
        policy: SendPolicy | None = None,
        audit: AuditSink | None = None,
        registry: CollectorRegistry | None = None,
        owner: str | None = None,
    ) -> None:
        self.outbox = outbox
        self._integrations = integrations
        self._clock = clock
        self.policy = policy or SendPolicy()
        self._audit_log = audit
        self._owner = owner or default_owner()
        self._metrics = _Metrics(registry or CollectorRegistry())
        if registry is not None:
            registry.register(OutboxCollector(outbox, clock))
        self._last_upkeep: datetime | None = None

    def run_once(self, now: datetime | None = None, *, limit: int | None = None) -> int:
        """Deliver what is due (at `now`, else the clock's time), up to `limit` rows; how many
        were attempted."""
        done = 0
        while limit is None or done < limit:
            at = self._clock() if now is None else now
            policy = self.policy
            claimed = self.outbox.claim(self._owner, at, lease=policy.lease, pace=policy.pace)
            if claimed is None:
                break
            self._deliver(claimed, now)
            done += 1
        return done

    def next_due(self) -> datetime | None:
        return self.outbox.next_due()

    def upkeep(self, now: datetime | None = None) -> None:
        """Forget old rows and log entries, at most every `upkeep_every`."""
        now = self._clock() if now is None else now
        if self._last_upkeep is not None and now - self._last_upkeep < self.policy.upkeep_every:
            return
        self._last_upkeep = now
        policy = self.policy
        self.outbox.gc(now, keep_sent=policy.keep_sent, keep_dead=policy.keep_dead)

    def _deliver(self, claimed: Claimed, now: datetime | None) -> None:
        kind = claimed.integration.split("[")[0]
        integration = self._integrations(claimed.receiver, claimed.integration)
        if integration is None:
            gone = f"receiver {claimed.receiver!r} has no {claimed.integration} any more"
            self._dead(claimed, kind, now or self._clock(), gone, None)
            return
        try:
            message = claimed.message()
        except (KeyError, TypeError, ValueError) as exc:
            self._dead(claimed, kind, now or self._clock(), f"unreadable row: {exc!r}", None)
            return
        self._metrics.attempts.labels(kind).inc()
        try:
            integration.notifier.notify(
                message.group_key, message.receiver, message.alerts, message.status
            )
        except Exception as exc:  # the notifier boundary: a bug there must not stop sending
            self._metrics.failed.labels(kind).inc()
            self._after_failure(claimed, message, kind, exc, now or self._clock())
            return
        self._mark_sent(claimed, now or self._clock())
        self._metrics.outcomes.labels(kind, "sent").inc()
        self._audit("notified", audit_data(claimed, message))

    def _mark_sent(self, claimed: Claimed, now: datetime) -> None:
        # the exactly-once window: until this commits, a crash means sending again; a database
        # blip here is retried briefly rather than widening the window to the lease
        for attempt in range(3):
            try:
                if not self.outbox.mark_sent(claimed, now):
                    log.warning(
                        "notification %d was delivered after its lease passed to another "
                        "sender: it may arrive twice",
                        claimed.id,
                    )
                return
            except Exception:
                log.exception("cannot mark notification %d sent (try %d)", claimed.id, attempt + 1)
                time.sleep(0.2 * (attempt + 1))
        log.error("notification %d: sent, but will be sent again after its lease", claimed.id)

    def _after_failure(
        self, claimed: Claimed, message: Message, kind: str, exc: Exception, now: datetime
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        retryable = not isinstance(exc, NotifyError) or exc.retryable
        if not retryable or claimed.attempts >= self.policy.max_attempts:
            self._dead(claimed, kind, now, error, message)
            return
        delay = self.policy.backoff.delay(claimed.attempts)
        limited = isinstance(exc, RetryAfter)
        if isinstance(exc, RetryAfter):
            delay = max(delay, timedelta(seconds=exc.seconds))
        self.outbox.retry(claimed, at=now + delay, error=error, hold_key=limited)
        self._metrics.outcomes.labels(kind, "rate_limited" if limited else "retried").inc()
        log.warning(
            "notification %s (attempt %d) failed, retrying in %.0fs: %s",
            _where(claimed),
            claimed.attempts,
            delay.total_seconds(),
            error,
        )

    def _dead(
        self, claimed: Claimed, kind: str, now: datetime, error: str, message: Message | None
    ) -> None:
        self.outbox.dead_letter(claimed, now, error)
        self._metrics.outcomes.labels(kind, "dead").inc()
        self._metrics.dead.labels(kind).inc()
        log.error(
            "notification %s gave up after %d attempts: %s",
            _where(claimed),
            claimed.attempts,
            error,
        )
        data = audit_data(claimed, message) if message is not None else _where_data(claimed)
        self._audit("notification_failed", {**data, "error": error})

    def _audit(self, kind: str, data: Mapping[str, Any]) -> None:
        if self._audit_log is None:
            return
        try:
            self._audit_log.append(kind, data, actor="controlplane")
        except Exception:  # the audit boundary: never send again because the audit failed
            log.exception("cannot audit %s %s", kind, data.get("notification"))


def _where(claimed: Claimed) -> str:
    return f"{claimed.id} {claimed.receiver}/{claimed.integration} {claimed.group_key!r}"


def _where_data(claimed: Claimed) -> dict[str, Any]:
    return {
        "receiver": claimed.receiver,
        "integration": claimed.integration,
        "group_key": claimed.group_key,
        "notification": claimed.id,
        "attempts": claimed.attempts,
    }


def audit_data(claimed: Claimed, message: Message) -> dict[str, Any]:
    """The audit event of one notification: who heard what about which alerts."""
    names = sorted({a.label_map.get("alertname", "") for a in message.alerts})
    return {
        **_where_data(claimed),
        "status": message.status.value,
        "alertnames": names,
        "alerts": names,  # the key the Dash incident timeline reads
        "fingerprints": [a.fingerprint for a in message.alerts],
    }
