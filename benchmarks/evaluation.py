"""Rule-evaluation speed of the embedded PromQL engine, optionally side by side with Prometheus.

Generates N series shaped like the bundled aggregator's metrics (request counters by region,
provider, operation and outcome; latency histogram buckets), 30 minutes at a 15 s scrape
interval, then times recording-rule-like instant queries (and one range query) on them.

    .venv/bin/python benchmarks/evaluation.py --series 10000 50000 [--prometheus]

With --prometheus the same data is written as OpenMetrics, turned into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics`, served by a local `prometheus`, and each query's
evaluation time is read from the API's own `stats=all` timings (innerEvalTime).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from controlplane.model.series import Series, labels_from
from controlplane.promql import Engine, MemorySource

SCRAPE_MS = 15_000
SPAN_MS = 30 * 60_000
END_MS = 1_700_000_000_000
OPERATIONS = ("launch", "bet", "win", "rollback")
OUTCOMES = ("ok", "error", "timeout", "rejected")
REGIONS = ("eu", "latam", "na", "apac")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
REQUESTS = "casino_provider_requests_total"
DURATION = "casino_provider_request_duration_seconds_bucket"
QUERIES = {
    "rate by region,provider": f"sum by (region, provider) (rate({REQUESTS}[5m]))",
    "success ratio": (
        f'sum by (region, provider) (rate({REQUESTS}{{outcome="ok"}}[5m]))'
        f" / sum by (region, provider) (rate({REQUESTS}[5m]))"
    ),
    "p99 latency": (
        f"histogram_quantile(0.99, sum by (le, region, provider) (rate({DURATION}[5m])))"
    ),
    "errors by region": f'sum by (region) (increase({REQUESTS}{{outcome=~"error|timeout"}}[5m]))',
    "raw rate (every series)": f"rate({REQUESTS}[5m])",
    "max_over_time 30m": f"max by (region) (max_over_time({REQUESTS}[30m]))",
}
RANGE_QUERY = ("range 30m/60s rate by region", f"sum by (region) (rate({REQUESTS}[5m]))")


def generate(n_series: int, seed: int = 7) -> list[Series]:
    """Counters with Poisson increments; histogram buckets cumulative over `le`."""
    rng = np.random.default_rng(seed)
    per_provider = len(REGIONS) * len(OPERATIONS) * (len(OUTCOMES) + len(BUCKETS))
    providers = max(1, round(n_series / per_provider))
    times = np.arange(END_MS - SPAN_MS, END_MS + 1, SCRAPE_MS, dtype=np.int64)
    series: list[Series] = []
    for p in range(providers):
        provider = f"provider-{p:03d}"
        for region in REGIONS:
            for op in OPERATIONS:
                base = {"region": region, "provider": provider, "operation": op}
                rates = rng.uniform(0.1, 20.0, size=len(OUTCOMES))
                for outcome, rate in zip(OUTCOMES, rates, strict=True):
                    steps = rng.poisson(rate * SCRAPE_MS / 1000, size=len(times))
                    series.append(_series({**base, "outcome": outcome}, REQUESTS, times, steps))
                shares = np.sort(rng.uniform(0, 1, size=len(BUCKETS) - 1))
                counts = rng.poisson(rates.sum() * SCRAPE_MS / 1000, size=len(times))
                for le, share in zip(BUCKETS, [*shares, 1.0], strict=True):
                    steps = np.floor(counts * share)
                    series.append(_series({**base, "le": le}, DURATION, times, steps))
    return series


def _series(labels: dict[str, str], name: str, times: np.ndarray, steps: np.ndarray) -> Series:
    return Series(
        labels=labels_from({"__name__": name, **labels}),
        timestamps=times,
        values=np.cumsum(steps).astype(np.float64),
    )


def time_engine(engine: Engine, expr: str, repeats: int, range_query: bool = False) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        if range_query:
            engine.range(expr, END_MS - SPAN_MS, END_MS, 60_000)
        else:
            engine.instant(expr, END_MS)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(
    n_series: int, repeats: int, prometheus: bool
) -> list[tuple[str, int, float, float | None]]:
    series = generate(n_series)
    started = time.perf_counter()
    source = MemorySource(series)
    build_s = time.perf_counter() - started
    engine = Engine(source)
    print(
        f"\n{len(series)} series, {sum(len(s.timestamps) for s in series)} samples "
        f"(MemorySource built in {build_s:.2f}s)"
    )
    server = _Prometheus(series) if prometheus else None
    rows = []
    try:
        for name, expr in [*QUERIES.items(), RANGE_QUERY]:
            is_range = name == RANGE_QUERY[0]
            ours = time_engine(engine, expr, repeats, is_range)
            theirs = server.time(expr, repeats, is_range) if server else None
            rows.append((name, len(series), ours, theirs))
            peer = f"  prometheus {theirs * 1000:8.1f} ms" if theirs is not None else ""
            print(f"  {name:30s} ours {ours * 1000:8.1f} ms{peer}")
    finally:
        if server:
            server.stop()
    return rows


class _Prometheus:
    """A real Prometheus over the same samples, for a side-by-side figure."""

    def __init__(self, series: list[Series]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="promql-bench-"))
        text = self.dir / "data.om"
        with text.open("w") as out:
            for s in series:
                lbls = ",".join(f'{k}="{v}"' for k, v in s.labels if k != "__name__")
                name = dict(s.labels)["__name__"]
                for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
                    out.write(f"{name}{{{lbls}}} {v} {t / 1000:.3f}\n")
            out.write("# EOF\n")
        data = self.dir / "tsdb"
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(text), str(data)],
            check=True,
            capture_output=True,
        )
        text.unlink()
        self.port = _free_port()
        config = self.dir / "prometheus.yml"
        config.write_text("global: {}\n")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=100y",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def time(self, expr: str, repeats: int, range_query: bool) -> float:
        samples = []
        for _ in range(repeats):
            if range_query:
                params = {
                    "query": expr,
                    "start": (END_MS - SPAN_MS) / 1000,
                    "end": END_MS / 1000,
                    "step": 60,
                    "stats": "all",
                }
                path = "query_range"
            else:
                params = {"query": expr, "time": END_MS / 1000, "stats": "all"}
                path = "query"
            url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
            with urllib.request.urlopen(url, timeout=120) as response:
                body = json.load(response)
            samples.append(float(body["data"]["stats"]["timings"]["execTotalTime"]))
        return statistics.median(samples)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prometheus", action="store_true", help="compare with local prometheus")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    for n in args.series:
        run(n, args.repeats, args.prometheus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
