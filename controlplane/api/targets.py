"""/api/v1/targets: the scrape targets and their health, in Prometheus's JSON shape."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from controlplane.collect.scrape import ScrapeStatus, ScrapeTarget
from controlplane.model.times import format_duration

# what Prometheus shows for a target that was never scraped (Go's zero time)
NEVER = "0001-01-01T00:00:00Z"

TargetState = tuple[ScrapeTarget, ScrapeStatus]


class TargetLister(Protocol):
    """What ScrapeManager answers: each target with its last scrape."""

    def statuses(self) -> Sequence[TargetState]: ...


class NoTargets:
    """The target list of a control plane that scrapes nothing (remote mode)."""

    def statuses(self) -> Sequence[TargetState]:
        return ()


def rfc3339(unix_s: float | None) -> str:
    if unix_s is None:
        return NEVER
    moment = datetime.fromtimestamp(unix_s, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_target(target: ScrapeTarget, status: ScrapeStatus) -> dict[str, Any]:
    parts = urlsplit(target.url)
    discovered = {
        "__address__": parts.netloc,
        "__metrics_path__": parts.path,
        "__scheme__": parts.scheme,
        "__scrape_interval__": format_duration(target.interval_s),
        "__scrape_timeout__": format_duration(target.timeout_s),
        "job": target.job,
    }
    return {
        "discoveredLabels": discovered,
        "labels": dict(target.target_labels()),
        "scrapePool": target.job,
        "scrapeUrl": target.url,
        "globalUrl": target.url,
        "lastError": status.last_error,
        "lastScrape": rfc3339(status.last_scrape_s),
        "lastScrapeDuration": status.last_duration_s,
        "health": str(status.health),
        "scrapeInterval": format_duration(target.interval_s),
        "scrapeTimeout": format_duration(target.timeout_s),
    }


def targets_data(targets: Iterable[TargetState], state: str) -> dict[str, Any]:
    """`state` is Prometheus's filter: active, dropped or any (we never drop targets)."""
    active = [encode_target(*t) for t in targets] if state in ("", "any", "active") else []
    return {"activeTargets": active, "droppedTargets": []}
