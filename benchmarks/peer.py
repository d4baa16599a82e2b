"""The peers the query benchmarks measure against, on 127.0.0.1: a real Prometheus over the same
samples, and the control plane's own API over a filled store, both reachable over HTTP.

    with Prometheus.over(series, work_dir) as prom:     # promtool blocks, then `prometheus`
        requests.get(f"{prom.url}/api/v1/query", ...)
    served = Served(store)                              # create_app under waitress, a thread
    ... served.close()

`series` is an iterable of (labels, timestamps_ms, values): written as OpenMetrics a series at
a time (never the whole text in memory: 50,000 series of an hour are 1.5 GB of text), turned
into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, served by Debian's
`prometheus` (2.42) with the retention that keeps old synthetic timestamps. Every wait is
bounded and the process is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import requests
from procstat import cpu_seconds
from waitress.server import create_server

from controlplane.app import Components, create_app
from controlplane.config import Config
from controlplane.promql.catalog import StoreCatalog
from controlplane.promql.engine import Engine
from controlplane.tsdb.store import Store

SeriesRows = Iterable[tuple[Mapping[str, str], np.ndarray, np.ndarray]]
READY_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def write_openmetrics(path: Path, series: SeriesRows) -> int:
    """Samples of every series as OpenMetrics text (untyped); returns the samples written."""
    written = 0
    with path.open("w") as out:
        for labels, times_ms, values in series:
            inner = ",".join(
                f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__" and v
            )
            head = f"{labels['__name__']}{{{inner}}}"
            stamps = (np.asarray(times_ms) / 1000).tolist()
            out.write(
                "".join(
                    f"{head} {_number(v)} {t:.3f}\n"
                    for t, v in zip(stamps, np.asarray(values).tolist(), strict=True)
                )
            )
            written += len(stamps)
        out.write("# EOF\n")
    return written


class Prometheus:
    """`prometheus` on 127.0.0.1 over TSDB blocks made from the given samples."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, work: Path) -> None:
        self.proc, self.url, self.work = proc, url, work

    @classmethod
    @contextlib.contextmanager
    def over(cls, series: SeriesRows, work: Path | None = None) -> Iterator[Prometheus]:
        promtool, binary = shutil.which("promtool"), shutil.which("prometheus")
        if not promtool or not binary:
            raise SystemExit("prometheus and promtool are needed (Debian package prometheus)")
        own = work is None
        work = work or Path(tempfile.mkdtemp(prefix="bench-prom-"))
        try:
            text, tsdb = work / "data.om", work / "tsdb"
            write_openmetrics(text, series)
            subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", str(text), str(tsdb)],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=1800,
            )
            text.unlink()
            peer = cls._start(binary, work, tsdb)
            try:
                yield peer
            finally:
                peer.proc.terminate()
                try:
                    peer.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    peer.proc.kill()
        finally:
            if own:
                shutil.rmtree(work, ignore_errors=True)

    @classmethod
    def _start(cls, binary: str, work: Path, tsdb: Path) -> Prometheus:
        (work / "prometheus.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
        port = free_port()
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={tsdb}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
                "--query.timeout=2m",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peer = cls(proc, f"http://127.0.0.1:{port}", work)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{peer.url}/-/ready", timeout=1).status_code == 200:
                    return peer
            time.sleep(0.2)
        proc.kill()
        raise SystemExit("prometheus did not become ready")

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)


class Served:
    """create_app over a filled store, under waitress in a thread on 127.0.0.1 (`config`: where
    its database goes; the default is the working directory's var/)."""

    def __init__(self, store: Store, *, threads: int = 4, config: Config | None = None) -> None:
        engine = Engine(store)
        app = create_app(
            config or Config(),
            components=Components(querier=engine, catalog=StoreCatalog(store)),
            pipeline=False,
        )
        self.app = app
        self.port = free_port()
        self.server = create_server(app, map={}, host="127.0.0.1", port=self.port, threads=threads)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.close()
        self.server.task_dispatcher.shutdown()


def process_cpu_s() -> float:
    """This process's CPU seconds (the served control plane runs in it)."""
    return time.process_time()
