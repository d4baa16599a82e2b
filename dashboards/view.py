"""The view's state, kept in the URL so that a link reproduces what its sender saw.

    ?range=6h&refresh=10s             the last 6 hours, refreshed every 10 s
    ?range=custom&from=2026-03-01T10:00:00Z&to=2026-03-01T12:00:00Z&paused=1

Values that do not parse fall back to the defaults: a mangled link still opens a page. Charts
ask for at most `MAX_POINTS` points per series, the step rounded up to a readable interval
(Grafana's maxDataPoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from controlplane.model.times import iso, parse_duration

RANGES = ("15m", "1h", "6h", "24h", "7d", "30d")
CUSTOM = "custom"
REFRESHES = ("5s", "10s", "30s", "1m", "5m")
DEFAULT_RANGE = "1h"
DEFAULT_REFRESH = "5s"
MAX_POINTS = 1000
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
VIEW_KEYS = ("range", "from", "to", "refresh", "paused")


@dataclass(frozen=True, kw_only=True)
class Window:
    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, kw_only=True)
class View:
    range: str = DEFAULT_RANGE  # one of RANGES, or CUSTOM with start_ms and end_ms
    start_ms: int | None = None
    end_ms: int | None = None
    refresh: str = DEFAULT_REFRESH
    paused: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> View:
        def text(key: str) -> str:
            value = params.get(key)
            return value if isinstance(value, str) else ""

        start, end = parse_time(text("from")), parse_time(text("to"))
        chosen = text("range")
        if chosen == CUSTOM and start is not None and end is not None and start < end:
            rng: str = CUSTOM
        else:
            rng, start, end = (chosen if chosen in RANGES else DEFAULT_RANGE), None, None
        refresh = text("refresh")
        return cls(
            range=rng,
            start_ms=start,
            end_ms=end,
            refresh=refresh if refresh in REFRESHES else DEFAULT_REFRESH,
            paused=text("paused") in ("1", "true"),
        )

    @classmethod
    def from_search(cls, search: str | None) -> View:
        return cls.from_params(query_params(search))

    def params(self) -> dict[str, str]:
        """The non-default parts, for the URL."""
        out: dict[str, str] = {}
        if self.range != DEFAULT_RANGE:
            out["range"] = self.range
        if self.range == CUSTOM and self.start_ms is not None and self.end_ms is not None:
            out["from"], out["to"] = iso(self.start_ms), iso(self.end_ms)
        if self.refresh != DEFAULT_REFRESH:
            out["refresh"] = self.refresh
        if self.paused:
            out["paused"] = "1"
        return out

    def window(self, now_ms: int) -> Window:
        if self.range == CUSTOM and self.start_ms is not None and self.end_ms is not None:
            start, end = self.start_ms, self.end_ms
        else:
            end = now_ms
            start = end - round(parse_duration(self.range) * 1000)
        return Window(start_ms=start, end_ms=end, step_ms=step_ms(end - start))

    @property
    def refresh_ms(self) -> int:
        return round(parse_duration(self.refresh) * 1000)


def ignored(search: str | None) -> list[str]:
    """The view's parameters in `search` that did not parse and were replaced by defaults,
    as `name=value`, for the note that says so."""
    given = query_params(search)
    view = View.from_params(given)
    bad = []
    if given.get("range") and given["range"] != view.range:
        bad.append(f"range={given['range']}")
    if view.range != CUSTOM:
        bad += [f"{k}={given[k]}" for k in ("from", "to") if given.get(k)]
    if given.get("refresh") and given["refresh"] != view.refresh:
        bad.append(f"refresh={given['refresh']}")
    if given.get("paused") and given["paused"] not in ("1", "true", "0", "false"):
        bad.append(f"paused={given['paused']}")
    return bad


def step_ms(span_ms: int, max_points: int = MAX_POINTS) -> int:
    """The smallest readable step that keeps a series over `span_ms` within `max_points`."""
    raw_s = span_ms / 1000 / max_points
    for step in NICE_STEPS_S:
        if step >= raw_s:
            return step * 1000
    return -(-int(raw_s) // 86_400) * 86_400_000  # whole days beyond the table


def parse_time(text: str) -> int | None:
    """RFC3339 (`2026-03-01T10:00:00Z`), a naive `2026-03-01 10:00:00` taken as UTC, or unix
    seconds; None when it is none of them."""
    if not text:
        return None
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def query_params(search: str | None) -> dict[str, str]:
    return dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=False))


def merge_search(search: str | None, updates: Mapping[str, str | None]) -> str:
    """`search` with `updates` applied (None or "" removes a key); "" when nothing is left."""
    params = query_params(search)
    for key, value in updates.items():
        if value:
            params[key] = value
        else:
            params.pop(key, None)
    return f"?{urlencode(params)}" if params else ""


def with_view(search: str | None, view: View) -> str:
    """`search` with the view's keys replaced by `view`'s (other keys, filters, kept)."""
    updates: dict[str, str | None] = dict.fromkeys(VIEW_KEYS)
    updates.update(view.params())
    return merge_search(search, updates)


def href(path: str, params: Mapping[str, str]) -> str:
    """`path` (already prefixed) with `params` as its query string."""
    clean = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(clean)}" if clean else path
