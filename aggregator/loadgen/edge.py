"""The process around a Runner: the /report server, signals, the progress line, the end."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask

from aggregator.loadgen.report import percentile
from aggregator.loadgen.runner import Runner

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 35.0  # rounds in flight retry for at most about 20 s (plus one request timeout)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadedServer(WSGIServer):
    daemon_threads = True


class ReportServer:
    """GET /report (and /metrics, probes) on a port of its own, in a background thread."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self._server = make_server(
            host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    def start(self) -> ReportServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def run_to_completion(
    app: Flask, runner: Runner, *, report_port: int, host: str, quiet: bool
) -> dict[str, Any]:
    server = ReportServer(app, host, report_port).start() if report_port else None
    if server is not None:
        print(f"loadgen report on http://{host}:{server.port}/report", file=sys.stderr, flush=True)
    install_signals(runner)
    ended = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(runner, ended, quiet), name="loadgen-progress", daemon=True
    )
    try:
        joined = runner.join_players()
        print(f"loadgen: {joined}/{runner.config.players} players joined", file=sys.stderr)
        watcher.start()
        if not runner.stopping:
            runner.run()
    finally:
        runner.stop()
        ended.set()
        if watcher.is_alive():
            watcher.join(timeout=2)
        report: dict[str, Any] = runner.report()
        runner.close()
        if server is not None:
            server.close()
    return report


def _watch(runner: Runner, ended: threading.Event, quiet: bool) -> None:
    """Progress every second; abort rounds still retrying long after a stop was asked."""
    stop_seen: float | None = None
    while not ended.wait(1.0):
        if not quiet:
            print(progress_line(runner), file=sys.stderr, flush=True)
        if runner.stopping:
            stop_seen = stop_seen or time.monotonic()
            if time.monotonic() - stop_seen > DRAIN_TIMEOUT_S:
                log.warning("rounds still in flight %.0f s after stop: aborting", DRAIN_TIMEOUT_S)
                runner.abort()
    if not quiet:
        print(progress_line(runner), file=sys.stderr, flush=True)


def progress_line(runner: Runner) -> str:
    counts = runner.stats.counts()
    recent = runner.stats.take_recent_round_latencies()
    p50, p99 = percentile(recent, 50), percentile(recent, 99)
    latency = f"p50={p50:.0f}ms p99={p99:.0f}ms" if p50 is not None and p99 is not None else "-"
    return (
        f"loadgen t={runner.elapsed_s():.0f}s launches ok={counts.get('launches_ok', 0)}"
        f" failover={counts.get('launches_failover', 0)} failed={counts.get('launches_failed', 0)}"
        f" | rounds settled={counts.get('rounds_settled', 0)}"
        f" failed={counts.get('rounds_failed', 0)} unknown={counts.get('rounds_unknown', 0)}"
        f" in_flight={counts['in_flight']} retries={counts['retries']}"
        f" dropped={counts['dropped']} | {latency}"
    )


def install_signals(runner: Runner) -> None:
    """First SIGINT/SIGTERM: stop gracefully; a second one: abort retries in flight."""

    def handle(signum: int, _frame: Any) -> None:
        if runner.stopping:
            print("loadgen: second signal, aborting retries", file=sys.stderr, flush=True)
            runner.abort()
        else:
            print("loadgen: stopping; finishing rounds in flight", file=sys.stderr, flush=True)
            runner.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)
