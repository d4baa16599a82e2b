"""Prometheus durations as text (`1h30m`, both ways) and timestamps as RFC3339 text."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_duration(text: str) -> float:
    """A Prometheus duration (`1h30m`, `15s`, `0`) in seconds; ValueError when it is not one."""
    match = _DURATION.match(text)
    if text == "0":
        return 0.0
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration")
    ms = sum(int(g) * unit for g, unit in zip(match.groups(), _UNIT_MS, strict=True) if g)
    return ms / 1000


def format_duration(seconds: float) -> str:
    """Prometheus's own rendering (`1m30s`, `0s`), as /api/v1/targets shows intervals."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, suffix in zip(_UNIT_MS, ("y", "w", "d", "h", "m", "s", "ms"), strict=True):
        count, ms = divmod(ms, unit)
        if count:
            out.append(f"{count}{suffix}")
    return "".join(out)


def iso(t_ms: int) -> str:
    moment = datetime.fromtimestamp(t_ms / 1000, UTC)
    spec = "milliseconds" if t_ms % 1000 else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
