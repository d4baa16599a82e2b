"""Memory per series: the embedded store holding 50,000 series x 720 samples (1 h at 5 s).

    .venv/bin/python benchmarks/memory.py [--series 50000] [--samples 720]
    .venv/bin/python benchmarks/memory.py --prometheus [--seconds 180]   # the real prometheus

The data is shaped like the aggregator's: 10 targets of 5,000 series each, scraped every 5 s
with a few ms of jitter; per 16 series: 12 histogram buckets and a _count (integer counters),
one _sum (float), one request counter, one gauge (a small integer, mostly flat). Label sets are
built inside the measured region, as the parser builds them in production.

Reported: RSS growth of this process (also after malloc_trim, which hands freed heap pages back
to the kernel: what stays is what the store holds), the store's own accounting (head arrays,
encoded blocks), bytes per series, and the encodings the chunks got.

With --prometheus: serves the same kind of 50,000-series body on 127.0.0.1, lets the Debian
`prometheus` binary scrape it every second (so each series closes its first 120-sample chunk
within ~2 minutes; Prometheus keeps only the open chunk in memory and memory-maps closed ones,
so its RSS is then at its steady state) and reports its RSS growth per series.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from controlplane.model.series import labels_from
from controlplane.tsdb.store import Store

TARGETS = 10
START_MS = 1_700_000_000_000


def rss_bytes(pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def series_labels(target: int, count: int) -> list[tuple[tuple[str, str], ...]]:
    out = []
    for i in range(count):
        game, slot = divmod(i, 16)
        common = {
            "job": "aggregator",
            "instance": f"10.0.0.{target}:8101",
            "region": ("eu", "latam")[game % 2],
            "provider": f"provider{game % 8 + 1}",
            "game": f"g{game:05d}",
        }
        if slot < 12:
            name, extra = "casino_game_round_duration_seconds_bucket", {"le": str(2**slot / 1000)}
        else:
            name, extra = (
                ("casino_game_round_duration_seconds_count", {}),
                ("casino_game_round_duration_seconds_sum", {}),
                ("casino_game_rounds_total", {"outcome": "ok"}),
                ("casino_game_active_sessions", {}),
            )[slot - 12]
        out.append(labels_from({**common, **extra, "__name__": name}))
    return out


def values_step(rng: np.random.Generator, count: int, current: np.ndarray) -> np.ndarray:
    slot = np.arange(count) % 16
    inc = rng.poisson(3.0, count).astype(np.float64)
    current += np.where(slot == 13, rng.random(count) * 0.05 * inc, inc)  # _sum is a float
    gauge = slot == 15
    current[gauge] = np.where(
        rng.random(int(gauge.sum())) < 0.05, rng.integers(0, 50, int(gauge.sum())), current[gauge]
    )
    return current.copy()


def embedded(series: int, samples: int) -> None:
    per_target = series // TARGETS
    rng = np.random.default_rng(1)
    trim()
    before = rss_bytes()
    started = time.process_time()
    store = Store(retention_ms=2 * 3600 * 1000)
    refs = [
        np.array([store.series_ref(lab)[0] for lab in series_labels(t, per_target)])
        for t in range(TARGETS)
    ]
    current = [np.zeros(per_target) for _ in range(TARGETS)]
    for k in range(samples):
        for t in range(TARGETS):
            ts = START_MS + k * 5000 + t * 431 + int(rng.integers(-3, 4))
            store.append_many(refs[t], ts, values_step(rng, per_target, current[t]))
    cpu = time.process_time() - started
    grown = rss_bytes() - before
    trim()
    kept = rss_bytes() - before
    stats = store.stats()
    total = series * samples
    print(
        f"embedded store: {series:,} series x {samples} samples = {total:,} samples "
        f"({cpu:.1f} s CPU to build, {total / cpu:,.0f} samples/s appended)"
    )
    print(
        f"  RSS growth:                 {grown / series:8,.0f} B/series  ({grown / 2**20:,.0f} MiB)"
    )
    print(
        f"  RSS growth after trim:      {kept / series:8,.0f} B/series  ({kept / 2**20:,.0f} MiB)"
    )
    print(
        f"  store arrays: head {stats.head_bytes / series:,.0f} B/series, blocks "
        f"{stats.block_bytes / series:,.0f} B/series "
        f"({stats.block_bytes / max(stats.block_samples, 1):.2f} B/sample in blocks), "
        f"{stats.blocks} blocks"
    )
    kinds = {k: f"{v / max(stats.block_samples, 1):.1%}" for k, v in stats.value_kinds.items() if v}
    print(f"  value encodings (share of samples in blocks): {kinds}")


class _Body:
    def __init__(self, series: int) -> None:
        self.labels = [
            "{" + ",".join(f'{k}="{v}"' for k, v in lab if k != "__name__") + "}"
            for lab in series_labels(0, series)
        ]
        self.names = [dict(lab)["__name__"] for lab in series_labels(0, series)]
        self.current = np.zeros(series)
        self.rng = np.random.default_rng(2)
        self.lock = threading.Lock()

    def render(self) -> bytes:
        with self.lock:
            values = values_step(self.rng, len(self.names), self.current)
        return "".join(
            f"{n}{lab} {v!r}\n"
            for n, lab, v in zip(self.names, self.labels, values.tolist(), strict=True)
        ).encode()


def prometheus(series: int, seconds: float) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus: not installed (Debian package `prometheus`), skipped")
        return
    body = _Body(series)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        web = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # only to reserve a free port
        web_port = web.server_address[1]
        web.server_close()
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: bench\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{server.server_address[1]}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{web_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            base = rss_bytes(str(proc.pid))
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(5)
            rss = rss_bytes(str(proc.pid))
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as r:
                metrics = r.read().decode()
            head = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("prometheus_tsdb_head_series ")
            )
            chunks = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("prometheus_tsdb_head_chunks ")
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            server.shutdown()
            server.server_close()
    run = subprocess.run([binary, "--version"], capture_output=True, text=True)
    words = (run.stdout or run.stderr).split()
    version = words[2] if len(words) > 2 else "?"
    print(
        f"prometheus ({version}),"
        f" {head:,.0f} head series, {chunks:,.0f} head chunks after {seconds:.0f} s at 1 s:"
    )
    print(
        f"  RSS {rss / 2**20:,.0f} MiB; growth since start "
        f"{(rss - base) / max(head, 1):,.0f} B/series,"
        f" total {rss / max(head, 1):,.0f} B/series"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=50_000)
    ap.add_argument("--samples", type=int, default=720)
    ap.add_argument("--prometheus", action="store_true", help="measure the prometheus binary")
    ap.add_argument("--seconds", type=float, default=180.0, help="prometheus run time")
    args = ap.parse_args()
    print(
        f"memory benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy {np.__version__}"
    )
    if args.prometheus:
        prometheus(args.series, args.seconds)
    else:
        embedded(args.series, args.samples)


if __name__ == "__main__":
    main()
