"""Query latency of the control plane's Prometheus-compatible API, side by side with the real
`prometheus` on the same data, and how it grows with series and with points.

Synthetic casino telemetry (request counters and latency histogram buckets per region,
provider and operation, scraped every 15 s) goes into the embedded store, served by
`create_app` under waitress on 127.0.0.1, and, through `promtool tsdb create-blocks-from
openmetrics`, into a real Prometheus 2.42 on 127.0.0.1 (benchmarks/peer.py). Every query is
sent `--repeat` times over HTTP to both, one at a time after two warm-ups; the script reports
median / p95 latency, CPU per query (ours: this process, which serves the API and also runs
the HTTP client; Prometheus: its process), and whether the two answers agree (same series,
values within 1e-9 relative).

    .venv/bin/python benchmarks/query.py      # scaling: 10k, 25k, 50k series x 15m, 30m, 1h
    .venv/bin/python benchmarks/query.py --series 10000 --spans 30m --no-write
    .venv/bin/python benchmarks/query.py --mix --providers 25    # the five-query mix, 2 h

The scaling run rewrites its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests

sys.path.append(str(Path(__file__).resolve().parent))
from benchmd import machine, write_section
from peer import Prometheus, Served, process_cpu_s

from controlplane.model.times import parse_duration
from controlplane.tsdb.store import Store

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("<!-- query-scaling:begin -->", "<!-- query-scaling:end -->")
STEP_S = 15
OUTCOMES = ("ok", "error", "timeout", "rejected")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
REQUESTS = "casino_provider_requests_total"
DURATION = "casino_provider_request_duration_seconds_bucket"
SERIES_PER_PROVIDER = 64  # 2 regions x 2 operations x (4 outcomes + 12 buckets)
RATE = f"sum by (region) (rate({REQUESTS}[5m]))"
ERRORS = (
    f'sum by (provider) (rate({REQUESTS}{{outcome="error"}}[1m]))'
    f" / sum by (provider) (rate({REQUESTS}[1m]))"
)
P99 = f"histogram_quantile(0.99, sum by (le, provider) (rate({DURATION}[5m])))"
MIX = [
    ("selector", "instant", f'{REQUESTS}{{provider="p7"}}'),
    ("sum rate", "instant", f"sum by (region) (rate({REQUESTS}[5m]))"),
    ("p99 by provider", "instant", P99),
    ("error ratio 1h", "range", ERRORS),
    ("p99 by provider 1h", "range", P99),
]
SCALING = [("rate by region", RATE), ("error ratio by provider", ERRORS), ("p99 by provider", P99)]


@dataclass
class Telemetry:
    series: list[dict[str, str]]
    times_ms: np.ndarray
    values: np.ndarray  # (samples, series)
    end_s: int

    @classmethod
    def make(cls, providers: int, minutes: float, seed: int = 1) -> Telemetry:
        end_s = int(time.time()) // STEP_S * STEP_S
        steps = int(minutes * 60 / STEP_S)
        times_ms = (np.arange(steps, dtype=np.int64) - steps + 1) * STEP_S * 1000 + end_s * 1000
        series = make_series(providers)
        return cls(series, times_ms, make_values(series, steps, seed), end_s)

    def store(self) -> Store:
        store = Store(retention_ms=48 * 3600 * 1000)
        refs = [store.series_ref(tuple(sorted(labels.items())))[0] for labels in self.series]
        for i, t in enumerate(self.times_ms.tolist()):
            store.append_many(refs, t, self.values[i])
        return store

    def rows(self) -> Iterator[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        for j, labels in enumerate(self.series):
            yield labels, self.times_ms, self.values[:, j]


def make_series(providers: int) -> list[dict[str, str]]:
    out = []
    for region in ("eu", "latam"):
        for p in range(providers):
            for op in ("launch", "round"):
                base = {"region": region, "provider": f"p{p}", "operation": op, "job": "bench"}
                out += [{"__name__": REQUESTS, **base, "outcome": o} for o in OUTCOMES]
                out += [{"__name__": DURATION, **base, "le": le} for le in BUCKETS]
    return out


def make_values(series: list[dict[str, str]], steps: int, seed: int) -> np.ndarray:
    """Counters, (steps, series): monotone, buckets cumulative in `le` within each group."""
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.poisson(5.0, size=(steps, len(series))).astype(np.float64), axis=0)
    group: list[int] = []
    for i, labels in enumerate(series):
        if "le" in labels:
            group.append(i)
            if labels["le"] == "+Inf":  # bucket i holds buckets <= i
                values[:, group] = np.cumsum(values[:, group], axis=1)
                group = []
    return values


def form_for(kind: str, expr: str, end_s: int, span_s: int = 3600) -> tuple[str, dict[str, str]]:
    # evaluate between samples: Prometheus 2.x range windows are closed on the left, 3.x and
    # ours are left-open, and only a sample exactly on the boundary tells them apart
    end_s += STEP_S // 2
    if kind == "instant":
        return "query", {"query": expr, "time": str(end_s)}
    form = {"query": expr, "start": str(end_s - span_s), "end": str(end_s), "step": str(STEP_S)}
    return "query_range", form


@dataclass
class Timing:
    ms: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0

    def median(self) -> float:
        return statistics.median(self.ms)

    def p95(self) -> float:
        ms = sorted(self.ms)
        return ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]


def timed(
    session: requests.Session, url: str, path: str, form: dict[str, str], n: int, cpu: Any
) -> Timing:
    for _ in range(2):  # warm-up
        session.post(f"{url}/api/v1/{path}", data=form, timeout=300).raise_for_status()
    out = Timing()
    cpu_before = cpu()
    for _ in range(n):
        started = time.perf_counter()
        session.post(f"{url}/api/v1/{path}", data=form, timeout=300).raise_for_status()
        out.ms.append((time.perf_counter() - started) * 1000)
    out.cpu_ms = (cpu() - cpu_before) * 1000 / n
    return out


def answer(
    session: requests.Session, url: str, path: str, form: dict[str, str]
) -> dict[str, list[float]]:
    body = session.post(f"{url}/api/v1/{path}", data=form, timeout=300).json()
    out = {}
    for item in body["data"]["result"]:
        key = json.dumps(item["metric"], sort_keys=True)
        points = item["values"] if "values" in item else [item["value"]]
        out[key] = [float(v) for _, v in points]
    return out


def agree(a: dict[str, list[float]], b: dict[str, list[float]]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, xs in a.items():
        ys = b[key]
        if len(xs) != len(ys):
            return False
        for x, y in zip(xs, ys, strict=True):
            same_nan = math.isnan(x) and math.isnan(y)
            if not same_nan and not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                return False
    return True


@dataclass
class Row:
    query: str
    series: int
    span: str
    ours: Timing
    theirs: Timing | None = None
    same: bool | None = None


def measure(
    ours: Served, prom: Prometheus | None, path: str, form: dict[str, str], repeat: int
) -> tuple[Timing, Timing | None, bool | None]:
    with requests.Session() as session:
        mine = timed(session, ours.url, path, form, repeat, process_cpu_s)
        if prom is None:
            return mine, None, None
        theirs = timed(session, prom.url, path, form, repeat, prom.cpu_s)
        same = agree(answer(session, ours.url, path, form), answer(session, prom.url, path, form))
    return mine, theirs, same


def scaling(sizes: list[int], spans: list[str], repeat: int, peer: bool) -> list[Row]:
    rows: list[Row] = []
    longest = max(parse_duration(s) for s in spans) / 60
    for size in sizes:
        data = Telemetry.make(max(1, round(size / SERIES_PER_PROVIDER)), longest + 7)
        served = Served(data.store())
        try:
            with peer_over(peer, data) as prom:
                for span in spans:
                    for name, expr in SCALING:
                        span_s = int(parse_duration(span))
                        path, form = form_for("range", expr, data.end_s, span_s)
                        mine, theirs, same = measure(served, prom, path, form, repeat)
                        rows.append(Row(name, len(data.series), span, mine, theirs, same))
                        print(one_line(rows[-1]), flush=True)
        finally:
            served.close()
    return rows


def peer_over(peer: bool, data: Telemetry) -> Any:
    """Prometheus over the same samples, or None."""
    return Prometheus.over(data.rows()) if peer else contextlib.nullcontext(None)


def one_line(row: Row) -> str:
    text = (
        f"{row.series:>6} series {row.span:>4} {row.query:24s} ours {row.ours.median():8.1f} ms"
        f" (cpu {row.ours.cpu_ms:7.1f})"
    )
    if row.theirs is not None:
        text += f"  prometheus {row.theirs.median():8.1f} ms (cpu {row.theirs.cpu_ms:7.1f})"
        text += f"  same answer: {'yes' if row.same else 'NO'}"
    return text


def report(rows: list[Row], repeat: int, load: tuple[float, float]) -> str:
    sizes = sorted({r.series for r in rows})
    peer = any(r.theirs is not None for r in rows)
    lines = [
        f"Machine: {machine(dated=True)}; 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end (other work shares the machine: the CPU columns are the "
        "steadier figure).",
        "",
        "Settings: request counters and 12-bucket latency histograms per region (2), provider "
        "and operation (2), 64 series per provider, a sample every 15 s; range queries over "
        f"15 s steps ending now, {repeat} requests each over HTTP on 127.0.0.1 after 2 "
        "warm-ups, one at a time. Peer: Prometheus 2.42 (Debian) over the same samples "
        "(promtool blocks), in the same run. Median wall ms (CPU ms per query); ours is "
        "the control plane API under waitress in this process, its CPU includes the HTTP "
        "client's.",
        "",
        "| query | range (points) | "
        + " | ".join(f"{s:,} series" for s in sizes)
        + f" | {_k(sizes[-1])} / {_k(sizes[0])}, CPU |",
        "|---|---|" + "---:|" * (len(sizes) + 1),
    ]
    for (query, span), group in _grouped(rows).items():
        by_size = {r.series: r for r in group}
        cells = [_cell(by_size[s]) for s in sizes]
        first, last = by_size[sizes[0]], by_size[sizes[-1]]
        ratio = f"{last.ours.cpu_ms / first.ours.cpu_ms:.1f}x"
        if peer and first.theirs and last.theirs:
            ratio += f" (Prometheus {last.theirs.cpu_ms / first.theirs.cpu_ms:.1f}x)"
        points = int(parse_duration(span)) // STEP_S + 1
        lines.append(f"| {query} | {span} ({points}) | " + " | ".join(cells) + f" | {ratio} |")
    if peer:
        same = all(r.same for r in rows)
        lines += ["", f"Answers equal to Prometheus's in every cell: {'yes' if same else 'NO'}."]
    return "\n".join(lines)


def _k(series: int) -> str:
    return f"{round(series / 1000)}k"


def _grouped(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    out: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        out.setdefault((r.query, r.span), []).append(r)
    return out


def _cell(row: Row) -> str:
    text = f"{row.ours.median():.1f} ({row.ours.cpu_ms:.0f})"
    if row.theirs is not None:
        text += f" / P {row.theirs.median():.1f} ({row.theirs.cpu_ms:.0f})"
    return text


def mix(providers: int, hours: float, repeat: int, peer: bool) -> list[Row]:
    data = Telemetry.make(providers, hours * 60)
    served = Served(data.store())
    rows = []
    try:
        with peer_over(peer, data) as prom:
            for name, kind, expr in MIX:
                path, form = form_for(kind, expr, data.end_s)
                mine, theirs, same = measure(served, prom, path, form, repeat)
                rows.append(Row(name, len(data.series), kind, mine, theirs, same))
                print(one_line(rows[-1]), flush=True)
    finally:
        served.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 25_000, 50_000])
    parser.add_argument("--spans", nargs="+", default=["15m", "30m", "1h"])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-prometheus", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    parser.add_argument("--mix", action="store_true", help="the five-query mix instead")
    parser.add_argument("--providers", type=int, default=25, help="--mix: data size")
    parser.add_argument("--hours", type=float, default=2.0, help="--mix: data span")
    args = parser.parse_args()
    peer = not args.no_prometheus
    if args.mix:
        rows = mix(args.providers, args.hours, args.repeat, peer)
        return 0 if all(r.same is not False for r in rows) else 1
    load_start = _load()
    rows = scaling(args.series, args.spans, args.repeat, peer)
    body = report(rows, args.repeat, (load_start, _load()))
    print(body)
    if not args.no_write:
        heading = "### Range queries: cost against series and points (`benchmarks/query.py`)"
        write_section(ROOT / "BENCHMARKS.md", MARKERS, body, heading)
    return 0 if all(r.same is not False for r in rows) else 1


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    sys.exit(main())
