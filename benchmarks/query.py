"""Query latency of the control plane's Prometheus-compatible API, side by side with the real
`prometheus` on the same data.

Synthetic casino telemetry (request counters and latency histogram buckets per region,
provider and operation, scraped every 15 s for `--hours`) goes into the embedded store, served
by `create_app` under waitress on 127.0.0.1, and, through `promtool tsdb
create-blocks-from openmetrics`, into a real Prometheus on 127.0.0.1. Each query is sent
`--repeat` times over HTTP to both; the script prints median and p95 latency and whether the
two answers agree (same series, values within 1e-9 relative).

    .venv/bin/python benchmarks/query.py                 # defaults: 25 providers, 2 h
    .venv/bin/python benchmarks/query.py --providers 100 --repeat 30 --no-prometheus
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import requests
from waitress.server import create_server

from controlplane.app import Components, create_app
from controlplane.config import Config
from controlplane.promql.catalog import StoreCatalog
from controlplane.promql.engine import Engine
from controlplane.tsdb.store import Store

STEP_S = 15
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
QUERIES = [
    ("selector", "instant", 'casino_provider_requests_total{provider="p7"}'),
    ("sum rate", "instant", "sum by (region) (rate(casino_provider_requests_total[5m]))"),
    (
        "p99 by provider",
        "instant",
        "histogram_quantile(0.99, sum by (le, provider) "
        "(rate(casino_provider_request_duration_seconds_bucket[5m])))",
    ),
    (
        "error ratio 1h",
        "range",
        'sum by (provider) (rate(casino_provider_requests_total{outcome="error"}[1m]))'
        " / sum by (provider) (rate(casino_provider_requests_total[1m]))",
    ),
    (
        "p99 by provider 1h",
        "range",
        "histogram_quantile(0.99, sum by (le, provider) "
        "(rate(casino_provider_request_duration_seconds_bucket[5m])))",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_series(providers: int) -> list[dict[str, str]]:
    out = []
    for region in ("eu", "latam"):
        for p in range(providers):
            for op in ("launch", "round"):
                base = {"region": region, "provider": f"p{p}", "operation": op}
                for outcome in ("ok", "error", "timeout", "rejected"):
                    name = "casino_provider_requests_total"
                    out.append({"__name__": name, **base, "outcome": outcome, "job": "bench"})
                for le in BUCKETS:
                    name = "casino_provider_request_duration_seconds_bucket"
                    out.append({"__name__": name, **base, "le": le, "job": "bench"})
    return out


def make_values(series: list[dict[str, str]], steps: int, seed: int) -> np.ndarray:
    """Counters, (steps, series): monotone, buckets cumulative in `le` within each group."""
    rng = np.random.default_rng(seed)
    increments = rng.poisson(5.0, size=(steps, len(series))).astype(np.float64)
    values = np.cumsum(increments, axis=0)
    # make each histogram's buckets cumulative: bucket i holds buckets <= i
    group: list[int] = []
    for i, labels in enumerate(series):
        if "le" in labels:
            group.append(i)
            if labels["le"] == "+Inf":
                values[:, group] = np.cumsum(values[:, group], axis=1)
                group = []
    return values


def fill_store(series: list[dict[str, str]], times_ms: np.ndarray, values: np.ndarray) -> Store:
    store = Store(retention_ms=48 * 3600 * 1000)
    refs = [store.series_ref(tuple(sorted(labels.items())))[0] for labels in series]
    for i, t in enumerate(times_ms.tolist()):
        store.append_many(refs, t, values[i])
    return store


def openmetrics(series: list[dict[str, str]], times_ms: np.ndarray, values: np.ndarray) -> str:
    lines: list[str] = []
    for j, labels in enumerate(series):
        name = labels["__name__"]
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        head = f"{name}{{{inner}}}"
        col = values[:, j].tolist()
        stamps = times_ms.tolist()
        lines.extend(f"{head} {v!r} {t / 1000:.3f}" for t, v in zip(stamps, col, strict=True))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class Served:
    """create_app over the filled store, under waitress in a thread on 127.0.0.1."""

    def __init__(self, store: Store) -> None:
        engine = Engine(store)
        app = create_app(
            Config(), components=Components(querier=engine, catalog=StoreCatalog(store))
        )
        self.port = free_port()
        self.channels: dict[int, Any] = {}
        self.server = create_server(
            app, map=self.channels, host="127.0.0.1", port=self.port, threads=4
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.close()
        self.server.task_dispatcher.shutdown()


def start_prometheus(data: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    promtool = shutil.which("promtool")
    prometheus = shutil.which("prometheus")
    if not promtool or not prometheus:
        raise SystemExit("prometheus and promtool are needed (Debian package prometheus)")
    (work / "data.om").write_text(data)
    tsdb = work / "tsdb"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(work / "data.om"), str(tsdb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (work / "prometheus.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("prometheus did not become ready")


def form_for(kind: str, expr: str, end_s: int) -> tuple[str, dict[str, str]]:
    # evaluate between samples: Prometheus 2.x range windows are closed on the left, 3.x and
    # ours are left-open, and only a sample exactly on the boundary tells them apart
    end_s += STEP_S // 2
    if kind == "instant":
        return "query", {"query": expr, "time": str(end_s)}
    return "query_range", {
        "query": expr,
        "start": str(end_s - 3600),
        "end": str(end_s),
        "step": "15",
    }


def timings(
    session: requests.Session, url: str, path: str, form: dict[str, str], n: int
) -> Iterator[float]:
    for _ in range(2):  # warm-up
        session.post(f"{url}/api/v1/{path}", data=form, timeout=120).raise_for_status()
    for _ in range(n):
        started = time.perf_counter()
        session.post(f"{url}/api/v1/{path}", data=form, timeout=120).raise_for_status()
        yield (time.perf_counter() - started) * 1000


def answer(
    session: requests.Session, url: str, path: str, form: dict[str, str]
) -> dict[str, list[float]]:
    body = session.post(f"{url}/api/v1/{path}", data=form, timeout=120).json()
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


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]
    return f"{statistics.median(ms):.1f} / {p95:.1f}"


def measure(ours: str, prom: str | None, end_s: int, repeat: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with requests.Session() as session:
        for name, kind, expr in QUERIES:
            path, form = form_for(kind, expr, end_s)
            row: dict[str, Any] = {"query": name, "kind": kind}
            row["controlplane"] = summary(list(timings(session, ours, path, form, repeat)))
            if prom is not None:
                row["prometheus"] = summary(list(timings(session, prom, path, form, repeat)))
                mine, theirs = answer(session, ours, path, form), answer(session, prom, path, form)
                row["agree"] = agree(mine, theirs)
            rows.append(row)
    return rows


def report(
    rows: list[dict[str, Any]], *, series: int, steps: int, hours: float, load_s: float, repeat: int
) -> None:
    with_prometheus = bool(rows) and "prometheus" in rows[0]
    print(f"# Query latency, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    print(
        f"data: {series} series x {steps} samples ({series * steps:,} samples, {hours:g} h at "
        f"{STEP_S}s); store filled in {load_s:.1f}s; {repeat} timed requests per query after "
        "2 warm-ups, one at a time over HTTP on 127.0.0.1; range queries: 1 h at 15 s step"
    )
    print()
    header = "| query | kind | control plane ms (median / p95) |"
    header += " prometheus ms (median / p95) | same answer |" if with_prometheus else ""
    print(header)
    print("|" + "---|" * (5 if with_prometheus else 3))
    for row in rows:
        line = f"| {row['query']} | {row['kind']} | {row['controlplane']} |"
        if with_prometheus:
            line += f" {row['prometheus']} | {'yes' if row['agree'] else 'NO'} |"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--providers", type=int, default=25)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-prometheus", action="store_true")
    args = parser.parse_args()

    end_s = int(time.time()) // STEP_S * STEP_S
    steps = int(args.hours * 3600 / STEP_S)
    times_ms = (np.arange(steps, dtype=np.int64) - steps + 1) * STEP_S * 1000 + end_s * 1000
    series = make_series(args.providers)
    values = make_values(series, steps, args.seed)
    started = time.perf_counter()
    store = fill_store(series, times_ms, values)
    load_s = time.perf_counter() - started
    ours = Served(store)
    work = Path(tempfile.mkdtemp(prefix="bench-query-"))
    prom: tuple[subprocess.Popen[bytes], str] | None = None
    rows: list[dict[str, Any]] = []
    try:
        if not args.no_prometheus:
            prom = start_prometheus(openmetrics(series, times_ms, values), work)
        rows = measure(ours.url, prom[1] if prom else None, end_s, args.repeat)
    finally:
        ours.close()
        if prom is not None:
            prom[0].terminate()
            prom[0].wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    report(
        rows, series=len(series), steps=steps, hours=args.hours, load_s=load_s, repeat=args.repeat
    )
    return 0 if all(row.get("agree", True) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
