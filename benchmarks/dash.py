"""Server time and bytes of every dashboard page, with a day of the demo's series in the store,
and the same panels' PromQL answered by Prometheus 2.42 over the same samples, in one run.

    .venv/bin/python benchmarks/dash.py                   # 24 h at 15 s + the last hour at 1 s
    .venv/bin/python benchmarks/dash.py --quick           # 2 h + 10 min, 2 loads a page
    .venv/bin/python benchmarks/dash.py --no-prometheus --no-write

Data: benchmarks/dashdata.py (the series the demo bundle's roles export) and dashhistory.py
(the shipped rules' recordings and alerts, a day of executions and audit events). Pages: every
page of `dash.page_registry`, loaded as a browser loads it (benchmarks/dashload.py) from the
dashboards mounted on a Flask server under waitress on 127.0.0.1: the HTML, layout,
dependencies, the page router and every callback of the page; pages with an id in their path
get one the other pages link to. Each page is loaded with the default view (1 h) and with
24 h. Peer: every PromQL query the callbacks sent, replayed over HTTP against the control
plane's API and against Prometheus (promtool blocks of the store's samples).

Targets (issue 12): every page's callbacks p95 under 300 ms; under 2 MB per page load. The full
run rewrites its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# This script is named like the package it measures (and benchmarks/aggregator.py like
# another): keep this directory off the import path until both packages are imported, or
# `import dash` would import this file.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import dash  # noqa: E402
import requests  # noqa: E402
from flask import Flask  # noqa: E402
from waitress.server import create_server  # noqa: E402

import aggregator  # noqa: E402, F401
from controlplane.config import Config  # noqa: E402
from controlplane.model.series import STALE_NAN_BITS  # noqa: E402
from controlplane.promql.engine import Engine  # noqa: E402
from controlplane.slo import load_specs  # noqa: E402
from controlplane.tsdb.store import Store  # noqa: E402
from dashboards import PREFIX, ReadModels, create_dash  # noqa: E402

sys.path.append(str(HERE))
import dashdata  # noqa: E402
import dashhistory  # noqa: E402
from benchmd import machine, write_section  # noqa: E402
from dashload import Browser, PageLoad, Query, Recorder, ServerClock  # noqa: E402
from dashreport import PageFigures, figures, slowest_queries, table  # noqa: E402
from peer import Prometheus, Served, free_port  # noqa: E402

ROOT = HERE.parent
MARKERS = ("<!-- dash:begin -->", "<!-- dash:end -->")
SEARCHES = ("", "?range=24h")
TARGET_P95_MS, TARGET_BYTES = 300.0, 2_000_000


@dataclass(frozen=True)
class Settings:
    hours: float = 24.0
    fine_minutes: float = 60.0
    loads: int = 5  # timed loads of each page per range, after one warm-up
    executions: int = 60
    searches: tuple[str, ...] = SEARCHES
    replays: int = 5  # each PromQL query, against each peer (0: not replayed)

    @classmethod
    def quick(cls) -> Settings:
        return cls(hours=2.0, fine_minutes=10.0, loads=2, executions=8, searches=("",), replays=2)


@dataclass
class Bench:
    store: Store
    reads: ReadModels
    recorder: Recorder
    clock: ServerClock
    url: str
    notes: dict[str, Any] = field(default_factory=dict)
    close: Any = None


def build(settings: Settings, work: Path) -> Bench:
    """The store filled, the rules backfilled, the dashboards served on 127.0.0.1."""
    end_s = int(time.time()) // 15 * 15
    stamps = dashdata.times(end_s, settings.hours, settings.fine_minutes)
    store = Store(retention_ms=int((settings.hours + 48) * 3600 * 1000))
    started = time.perf_counter()
    exported = dashdata.exported()
    samples = dashdata.fill(store, exported, stamps)
    filled = dashhistory.backfill(
        store, dashhistory.rule_groups(ROOT), dashhistory.segments(stamps)
    )
    made = dashhistory.stores(
        work / "controlplane.db", stamps[0] / 1000, end_s, settings.executions
    )
    recorder = Recorder(Engine(store))
    alerts = list(filled.alerts or [])
    reads = ReadModels(
        querier=recorder,
        slos=[slo for spec in load_specs(ROOT / "rules" / "slo") for slo in spec.slos],
        alerts=lambda: alerts,
        executions=made.executions,
        automation=made.switches,
        audit=made.audit,
        budget=(20, 3600.0),
        clock=made.clock,
        runbooks=dashhistory.RUNBOOKS,
    )
    bench = _serve(store, reads, recorder)
    bench.notes = {
        "series": len(exported),
        "samples": samples,
        "recorded": (filled.series, filled.samples),
        "alerts": len(alerts),
        "problems": filled.problems or [],
        "build_s": time.perf_counter() - started,
    }
    return bench


def _serve(store: Store, reads: ReadModels, recorder: Recorder) -> Bench:
    server = Flask("dash-benchmark")
    create_dash(server, reads=reads)
    clock = ServerClock(server.wsgi_app)
    server.wsgi_app = clock  # type: ignore[method-assign]
    port = free_port()
    http = create_server(server, map={}, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=http.run, daemon=True).start()

    def close() -> None:
        http.close()
        http.task_dispatcher.shutdown()

    return Bench(store, reads, recorder, clock, f"http://127.0.0.1:{port}", close=close)


def pages() -> list[tuple[str, str, str | None]]:
    """(name, path, template) of every registered page, templates with Dash's example path."""
    return [(p["name"], p["path"], p.get("path_template")) for p in dash.page_registry.values()]


def resolve(template: str, links: set[str]) -> str | None:
    """A path for a page with variables: the first link of another page that fits it."""
    head = template.split("<", 1)[0]
    paths = sorted(link.removeprefix(PREFIX.rstrip("/")) for link in links)
    fits = [p for p in paths if p.startswith(head) and "/" not in p[len(head) :]]
    return next((p for p in fits if len(p) > len(head)), None)


def measure(bench: Bench, settings: Settings) -> tuple[list[PageLoad], dict[str, int]]:
    browser = Browser(bench.url, PREFIX, bench.clock, bench.recorder)
    plain = [(n, p) for n, p, t in pages() if t is None]
    links: set[str] = set()
    for name, path in plain:  # warm-up; the links tell the pages with ids which to show
        links |= browser.load(name, path, "").links
    chosen = plain + [(n, resolve(t, links) or p) for n, p, t in pages() if t is not None]
    loads: list[PageLoad] = []
    for search in settings.searches:
        warm = plain if search == "" else []  # the pages above are warm at the default view
        for name, path in chosen:
            if (name, path) not in warm:
                browser.load(name, path, search)  # warm-up at this range
        for _ in range(settings.loads):
            loads += [browser.load(name, path, search) for name, path in chosen]
    assets = browser.assets("/")
    browser.session.close()
    return loads, assets


def replay(
    bench: Bench, loads: list[PageLoad], settings: Settings, peer: bool, work: Path
) -> dict[Query, tuple[float, float | None]]:
    """Median ms of every distinct query over HTTP: (the control plane's API, Prometheus's)."""
    queries = sorted({q for load in loads for call in load.calls for q, _ in call.queries},
                     key=lambda q: (q.expr, q.args))  # fmt: skip
    served = Served(bench.store, config=Config(database_url=f"sqlite:///{work / 'api.db'}"))
    try:
        ours = {q: _median(served.url, q, settings.replays) for q in queries}
        if not peer:
            return {q: (ours[q], None) for q in queries}
        with Prometheus.over(_rows(bench.store)) as prom:
            return {q: (ours[q], _median(prom.url, q, settings.replays)) for q in queries}
    finally:
        served.close()


def _rows(store: Store) -> Iterator[tuple[dict[str, str], Any, Any]]:
    batch = store.select_batch([], -(2**52), 2**52)
    for i in sorted(range(len(batch)), key=lambda i: dict(batch.labels[i])["__name__"]):
        s = batch.series(i)
        keep = s.values.view("u8") != STALE_NAN_BITS
        yield dict(s.labels), s.timestamps[keep], s.values[keep]


def _median(url: str, query: Query, n: int) -> float:
    if query.kind == "instant":
        path, form = "query", {"query": query.expr, "time": str(query.args[0] / 1000)}
    else:
        start, end, step = (a / 1000 for a in query.args)
        path = "query_range"
        form = {"query": query.expr, "start": str(start), "end": str(end), "step": str(step)}
    times = []
    with requests.Session() as session:
        for _ in range(n + 1):
            started = time.perf_counter()
            session.post(f"{url}/api/v1/{path}", data=form, timeout=300)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])  # the first one warms caches up


def run(settings: Settings, peer: bool) -> tuple[list[PageFigures], dict[str, Any]]:
    """Build, load every page, replay the PromQL; the figures per page and range, and notes."""
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp:
        bench = build(settings, Path(tmp))
        try:
            loads, assets = measure(bench, settings)
            replays = replay(bench, loads, settings, peer, Path(tmp)) if settings.replays else {}
        finally:
            bench.close()
    bench.notes["assets"] = assets
    bench.notes["slowest"] = slowest_queries(replays)
    return figures(loads, replays), bench.notes


def render(rows: list[PageFigures], notes: dict[str, Any], settings: Settings) -> str:
    assets = notes["assets"]
    recorded_series, recorded_samples = notes["recorded"]
    lines = [
        f"Machine: {machine(dated=True)}; 1-minute load average {notes['load'][0]:.1f} at the "
        f"start, {notes['load'][1]:.1f} at the end.",
        "",
        f"Data: the {notes['series']} series the demo bundle's roles export, "
        f"{settings.hours:g} h at 15 s and the last {settings.fine_minutes:g} min at 1 s "
        f"({notes['samples']:,} samples), plus {recorded_series} series ({recorded_samples:,} "
        "samples) the shipped rules record over them (recordings, ALERTS, ALERTS_FOR_STATE), "
        f"{notes['alerts']} alerts active at the end, {settings.executions} executions; built "
        f"in {notes['build_s']:.0f} s. Each page loaded {settings.loads} times per range after "
        "a warm-up, one request at a time over HTTP on 127.0.0.1 (waitress, 4 threads); server "
        "time measured inside the server. KB: HTML + layout + dependencies + page router + "
        "every callback's answer, uncompressed, median of the loads. PromQL per load: the "
        "queries the page's callbacks sent, each replayed over HTTP (median of "
        f"{settings.replays}) against the control plane's API and Prometheus 2.42 holding the "
        "same samples (promtool blocks), in the same run.",
        "",
        *table(rows),
        "",
        f"Scripts and stylesheets the HTML names (fetched once, then cached): {len(assets)} "
        f"files, {sum(assets.values()) / 1e6:.2f} MB uncompressed; Plotly's own bundle comes "
        "later, on the first chart, and is not counted here.",
    ]
    missed = [f"{r.page} {r.search.removeprefix('?range=') or '1h'}" for r in rows if not r.met]
    verdict = "missed on " + ", ".join(missed) if missed else "met on every page"
    lines += ["", f"Targets (p95 under 300 ms, under 2 MB a load): {verdict}."]
    lines += ["", "The slowest queries of the pages:", "", *notes["slowest"]]
    if notes["problems"]:
        lines += ["", "Rules that could not be backfilled: " + "; ".join(notes["problems"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few loads, no write")
    parser.add_argument("--no-prometheus", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args()
    settings = Settings.quick() if args.quick else Settings()
    load = _load()
    rows, notes = run(settings, peer=not args.no_prometheus)
    notes["load"] = (load, _load())
    body = render(rows, notes, settings)
    print(body)
    if not (args.no_write or args.quick):
        heading = "## Dashboards (`benchmarks/dash.py`)"
        write_section(ROOT / "BENCHMARKS.md", MARKERS, body, heading)
    return 0 if all(r.failed == 0 for r in rows) else 1


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    sys.exit(main())
