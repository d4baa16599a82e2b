"""Rule alerts -> the notification dispatcher's alerts, as Prometheus sends them to
Alertmanager: startsAt is when the alert started firing, endsAt its resolution time, or (while
firing) the time after which it is stale unless re-sent; generatorURL links to the expression.

    manager = RuleManager(..., on_alerts=to_dispatcher(dispatcher.put, external_url=url))
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from controlplane.notify.alerts import Alert as NotifyAlert
from controlplane.rules.alerting import Alert
from controlplane.rules.manager import AlertCallback


def generator_url(external_url: str, expr: str) -> str:
    """Prometheus's externalURL + TableLinkForExpression(expr)."""
    query = urllib.parse.quote_plus(expr.strip(), safe="-_.~")
    return f"{external_url.rstrip('/')}/graph?g0.expr={query}&g0.tab=1"


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_notify(alert: Alert, *, external_url: str = "") -> NotifyAlert:
    starts_at = _time(alert.starts_at_ms)
    assert starts_at is not None
    return NotifyAlert.of(
        dict(alert.labels),
        starts_at=starts_at,
        ends_at=_time(alert.ends_at_ms),
        annotations=dict(alert.annotations),
        generator_url=generator_url(external_url, alert.expr),
    )


def to_dispatcher(
    put: Callable[[Iterable[NotifyAlert]], None], *, external_url: str = ""
) -> AlertCallback:
    """An `on_alerts` callback for RuleManager that feeds `put` (Dispatcher.put)."""

    def hand_over(alerts: Sequence[Alert]) -> None:
        put([to_notify(a, external_url=external_url) for a in alerts])

    return hand_over
