"""Tables of the providers and regions pages, as pure functions of `fleet` data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_mantine_components as dmc

from dashboards import text
from dashboards.fleet import BREAKER, FAILOVER_KINDS, FailoverCount, ProviderNow
from dashboards.panels import badge, empty, scroll, table

BREAKER_COLOURS = ("green", "red", "orange")
SLOW_S, FAILING = 1.0, 0.2  # ProviderLatencyHigh's and ProviderLaunchFailing's thresholds


def _level(value: float | None, bad: float) -> str | None:
    """Red from the alert's threshold, orange from half of it."""
    if value is None:
        return None
    return "red" if value >= bad else "orange" if value >= bad / 2 else None


def _text(value: str, colour: str | None = None, **props: Any) -> dmc.Text:
    """Mantine takes no colour as "none given"; a null colour breaks its colour parser."""
    return dmc.Text(value, size="sm", **props, **({"c": colour} if colour else {}))


def latency_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def _breaker(state: int | None) -> Any:
    if state is None or not 0 <= state < len(BREAKER):
        return dmc.Text("-", size="sm")
    return badge(BREAKER[state], BREAKER_COLOURS[state], variant="light")


def _isolated(row: ProviderNow) -> Any:
    if row.isolated is None:
        return _text("-")
    return badge("isolated", "red", variant="filled") if row.isolated else _text("no", "dimmed")


def _canary(row: ProviderNow) -> Any:
    """Below 100%: a restore still ramping up (only that share of launches goes there)."""
    if row.canary_percent is None:
        return _text("-")
    if row.canary_percent < 100:
        return badge(f"{row.canary_percent:g}%", "violet", variant="light", tt="none")
    return _text("100%", "dimmed")


def providers_table(rows: Sequence[ProviderNow]) -> Any:
    """One row per region and provider, isolated or breaker not closed first."""
    if not rows:
        return empty("No provider reports calls.")
    return scroll(
        table(
            ["region", "provider", "p99 latency", "errors", "breaker", "isolated", "canary"],
            [
                [
                    dmc.Text(r.region, size="sm"),
                    dmc.Text(r.provider, size="sm", fw=600),
                    _text(latency_text(r.p99_s), _level(r.p99_s, SLOW_S)),
                    _errors(r),
                    _breaker(r.breaker),
                    _isolated(r),
                    _canary(r),
                ]
                for r in rows
            ],
            wrap=(),
        )
    )


def _errors(row: ProviderNow) -> Any:
    if row.error_ratio is None:
        # isolated or breaker open: nothing was sent, so nothing failed
        return dmc.Text("no calls sent", size="sm", c="dimmed")
    return _text(text.percent(row.error_ratio), _level(row.error_ratio, FAILING))


def failover_table(counts: Sequence[FailoverCount]) -> Any:
    """Events in the range: a row per kind, a column per region (regions are few)."""
    if not counts:
        return empty("No failover events reported in this range.")
    kinds = [k for k in FAILOVER_KINDS if any(c.kind == k for c in counts)]
    kinds += sorted({c.kind for c in counts} - set(kinds))
    regions = sorted({c.region for c in counts})
    found = {(c.region, c.kind): c.count for c in counts}
    return table(
        ["kind", *regions],
        [
            [
                dmc.Text(kind.replace("_", " "), size="sm"),
                *[_count(found.get((region, kind))) for region in regions],
            ]
            for kind in kinds
        ],
        wrap=(),
    )


def _count(value: float | None) -> Any:
    # increase() extrapolates to the range's edges: whole events read better
    shown = None if value is None else round(value)
    return _text(text.count(shown), None if shown else "dimmed", fw=700 if shown else 400)
