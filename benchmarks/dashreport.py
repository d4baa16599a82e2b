"""Figures of the dashboard benchmark (benchmarks/dash.py): per page and range, the server time
of its callbacks, the bytes of a load, and its PromQL against the peer; and the markdown."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dashload import PageLoad, Query

Replays = Mapping[Query, tuple[float, float | None]]


@dataclass(frozen=True)
class PageFigures:
    page: str
    path: str
    search: str
    callbacks: int  # fired per load, the page router included
    p50_ms: float
    p95_ms: float
    cpu_p95_ms: float  # the serving thread's CPU: steadier on a shared machine
    slowest: str  # the callback with the highest p95
    slowest_p95_ms: float
    bytes: int  # median per load
    queries: int  # PromQL queries per load
    ours_ms: float  # those queries replayed over HTTP: the control plane's API
    prometheus_ms: float | None
    failed: int  # callback answers other than 200

    @property
    def met(self) -> bool:
        return self.p95_ms < 300 and self.bytes < 2_000_000 and not self.failed


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def figures(loads: Sequence[PageLoad], replays: Replays) -> list[PageFigures]:
    """Per page and range; the Prometheus column only if `replays` hold its times."""
    grouped: dict[tuple[str, str, str], list[PageLoad]] = {}
    for load in loads:
        grouped.setdefault((load.page, load.path, load.search), []).append(load)
    peer = any(theirs is not None for _ours, theirs in replays.values())
    return [_page(key, group, replays, peer) for key, group in grouped.items()]


def _page(
    key: tuple[str, str, str], group: list[PageLoad], replays: Replays, peer: bool
) -> PageFigures:
    times = [c.server_ms for load in group for c in load.calls]
    per_callback: dict[str, list[float]] = {}
    for load in group:
        for call in load.calls:
            per_callback.setdefault(call.output, []).append(call.server_ms)
    slowest = max(per_callback, key=lambda name: p95(per_callback[name]))
    queries = [q for call in group[-1].calls for q, _ms in call.queries]
    theirs = [replays[q][1] or 0.0 for q in queries if q in replays]
    return PageFigures(
        page=key[0],
        path=key[1],
        search=key[2],
        callbacks=len(group[-1].calls),
        p50_ms=statistics.median(times),
        p95_ms=p95(times),
        cpu_p95_ms=p95([c.cpu_ms for load in group for c in load.calls]),
        slowest=slowest,
        slowest_p95_ms=p95(per_callback[slowest]),
        bytes=int(statistics.median(load.bytes for load in group)),
        queries=len(queries),
        ours_ms=sum(replays[q][0] for q in queries if q in replays),
        prometheus_ms=sum(theirs) if peer else None,
        failed=sum(1 for load in group for c in load.calls if c.status != 200),
    )


def table(rows: Sequence[PageFigures]) -> list[str]:
    peer = any(r.prometheus_ms is not None and r.queries for r in rows)
    head = "| page | range | callbacks | server ms p50 / p95 (CPU p95) |"
    head += " slowest callback (p95) | KB |"
    head += " PromQL per load: queries, ours / Prometheus ms |" if peer else " queries |"
    lines = [head + " met |", "|---|---|---:|---:|---|---:|---:|---|"]
    for r in rows:
        view = r.search.removeprefix("?range=") or "1h"
        theirs = "-" if r.prometheus_ms is None else f"{r.prometheus_ms:.0f}"
        promql = f"{r.queries}, {r.ours_ms:.0f} / {theirs}" if peer else str(r.queries)
        failed = f" ({r.failed} failed)" if r.failed else ""
        lines.append(
            f"| {r.page} (`{r.path}`) | {view} | {r.callbacks} | {r.p50_ms:.0f} / {r.p95_ms:.0f}"
            f" ({r.cpu_p95_ms:.0f})"
            f" | `{_short(r.slowest)}` ({r.slowest_p95_ms:.0f}) | {r.bytes / 1000:.0f} |"
            f" {promql} | {'yes' if r.met else 'NO'}{failed} |"
        )
    return lines


def _short(output: str) -> str:
    first = output.strip(".").split("...")[0]
    return first if len(first) <= 40 else first[:37] + "..."


def slowest_queries(replays: Replays, n: int = 8) -> list[str]:
    """The queries the pages wait for longest on the control plane's API, beside Prometheus."""
    ranked = sorted(replays.items(), key=lambda item: -item[1][0])[:n]
    lines = ["| query | kind | ours ms | Prometheus ms |", "|---|---|---:|---:|"]
    for query, (ours, theirs) in ranked:
        kind = "instant"
        if query.kind == "range":
            start, end, step = query.args
            kind = f"range {(end - start) / 3_600_000:g} h / {step / 1000:g} s"
        expr = " ".join(query.expr.split()).replace("|", "\\|")
        expr = expr if len(expr) <= 110 else expr[:107] + "..."
        shown = "-" if theirs is None else f"{theirs:.1f}"
        lines.append(f"| `{expr}` | {kind} | {ours:.1f} | {shown} |")
    return lines
