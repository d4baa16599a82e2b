"""The PromQL each panel runs, in one place: read it here to know what a chart shows.

Panels read the series the generated SLO rules record (`controlplane/slo/generate.py`), so
they cost the same against the embedded engine and against a remote Prometheus. A range query's
step comes from the range (`view.step_ms`); past the 5m window the SLI is averaged over each
step, so no sample between two points is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

import promql_parser

from controlplane.slo import SLO

SHORTEST_WINDOW_MS = 5 * 60_000


def selector(metric: str, slo: SLO, labels: Mapping[str, str] | None = None) -> str:
    """`metric{slo_id="...", <labels>}` with every value quoted as PromQL needs."""
    matchers = {"slo_id": slo.id, **(labels or {})}
    inside = ", ".join(f"{name}={_quote(value)}" for name, value in matchers.items())
    return f"{metric}{{{inside}}}"


def slo_status(slo: SLO) -> str:
    """Every series recorded for the SLO, at one instant (what `slo.status` reads)."""
    return f'{{__name__=~"slo:.+", slo_id={_quote(slo.id)}}}'


def availability(slo: SLO, labels: Mapping[str, str], step_ms: int) -> str:
    """The SLI (good / total) over time, for the chart against the objective."""
    five = selector("slo:sli_error:ratio_rate5m", slo, labels)
    if step_ms <= SHORTEST_WINDOW_MS:
        return f"1 - {five}"
    return f"1 - avg_over_time({five}[{_duration(step_ms)}])"


def budget_remaining(slo: SLO, labels: Mapping[str, str]) -> str:
    """The share of the window's error budget left, as the status reports it, over time."""
    return selector("slo:period_error_budget_remaining:ratio", slo, labels)


def events_in_window(slo: SLO) -> str | None:
    """All events over the SLO's window, by its `by` labels (None: the SLI has no total)."""
    window = promql_parser.display_duration(slo.window)
    total = slo.sli.total_rate(window)
    if total is None:
        return None
    return f"({total}) * {slo.window.total_seconds():g}"


def _duration(ms: int) -> str:
    seconds = max(1, ms // 1000)
    return f"{seconds}s"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
