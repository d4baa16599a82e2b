"""run the control plane: HTTP API, scraping and the store, until SIGINT or SIGTERM

SIGHUP reloads the rules, SLO specs, runbooks and routing, as `POST /-/reload` does.

Waitress serves from one process with a thread pool, so the pipeline's live state (the store,
the scrape loops) stays in one place. At shutdown the scrape manager stops and the store
writes its checkpoint, so a restart loses at most about one scrape interval. Whatever is stuck
(a request in C code holding the GIL, a step that will not return), the process is gone
`server.shutdown_timeout` after the signal: the write-ahead log, fsynced every scrape
interval, bounds what a forced exit loses.

The watchdog is faulthandler's timer, a C thread that needs no GIL. A Python signal handler
cannot run while another thread holds the GIL in C code, so the serving loop re-arms the timer
every second: a process in which no Python code could run for `shutdown_timeout` exits (code 1,
every thread's stack on stderr) whether or not a signal came, as a liveness probe would
restart it.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from controlplane.app import EXTENSION, create_app
from controlplane.config import load_config
from controlplane.errors import ConfigError, ControlPlaneError

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML file (default $CONTROLPLANE_CONFIG)")
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    parser.add_argument("--threads", type=int, default=16)


def run(args: argparse.Namespace) -> int:
    # APScheduler logs every job run at INFO: one line per scrape per target drowns the log
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        config = load_config(args.config, port=args.port, host=args.host)
        app = create_app(config)
    except ConfigError as exc:
        print(f"controlplane serve: {exc}", file=sys.stderr)
        return 2
    plane = app.extensions[EXTENSION]
    try:
        serve(
            app,
            host=config.server.host,
            port=config.server.port,
            threads=args.threads,
            max_body_bytes=config.server.max_body_bytes,
            shutdown_timeout_s=config.server.shutdown_timeout_s,
            on_start=plane.start,
            on_signal=plane.interrupt,
            on_stop=plane.stop,
            on_reload=plane.reload,
        )
    except (ControlPlaneError, OSError) as exc:
        # the port is taken, the checkpoint cannot be read, ...: say so, no traceback
        print(f"controlplane serve: {exc}", file=sys.stderr)
        return 1
    return 0


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    threads: int = 16,
    grace_s: float = 5.0,
    max_body_bytes: int = 1 << 20,
    shutdown_timeout_s: float = 25.0,
    on_start: Callable[[], None] | None = None,
    on_signal: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
    on_reload: Callable[[], None] | None = None,
) -> None:
    """Bind, run `on_start`, serve until SIGINT or SIGTERM; then stop accepting, give open
    connections `grace_s` to finish, close them, run `on_stop` and return. `on_signal` runs in
    the signal handler itself (it must be quick): what must stop at once, such as runbooks
    acting, stops there rather than after the grace. `on_stop` runs whenever `on_start` was
    called, even if it failed. `shutdown_timeout_s` after the signal the process exits (code 1,
    every thread's stack on stderr) however far the stop got."""
    # our own socket map: waitress's run() loops while any connection is open, so a client
    # holding a keep-alive connection would keep a stopping server alive for channel_timeout
    channels: dict[int, Any] = {}
    server = create_server(
        app,
        map=channels,
        host=host,
        port=port,
        threads=threads,
        connection_limit=1000,
        # a backstop only: Flask answers the limit first, as JSON (waitress's 413 is plain text)
        max_request_body_size=2 * max_body_bytes,
        channel_timeout=150,  # longer than the default query timeout (2m)
        ident="controlplane",
        clear_untrusted_proxy_headers=True,
    )
    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("signal %d, stopping (at most %.0fs)", signum, shutdown_timeout_s)
            faulthandler.dump_traceback_later(shutdown_timeout_s, exit=True)  # no more re-arming
            # only the listener: server.close() would also close waitress's wake-up pipe,
            # which worker threads finishing a request still write to (EBADF, or worse, a
            # stray byte into whatever file reuses the descriptor)
            wasyncore.dispatcher.close(server)
            if on_signal is not None:
                on_signal()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if on_reload is not None:
        signal.signal(signal.SIGHUP, lambda _s, _f: _in_background(on_reload, "reload"))
    try:
        if on_start is not None:
            on_start()
        print(f"controlplane listening on http://{host}:{port}", file=sys.stderr, flush=True)
        _loop(channels, stopping, grace_s, watchdog_s=shutdown_timeout_s)
    finally:
        server.task_dispatcher.shutdown()  # workers done before their channels and pipe go
        wasyncore.close_all(channels)
        try:
            if on_stop is not None:
                on_stop()
        finally:
            faulthandler.cancel_dump_traceback_later()  # stopped in time: serve() may be a test's


def _in_background(work: Callable[[], None], name: str) -> None:
    """Off the signal handler, which must return at once; a failure is logged where it is."""

    def run() -> None:
        try:
            work()
        except ControlPlaneError as exc:
            log.error("%s failed: %s", name, exc)
        except Exception:  # a bug in one reload must not take the server down
            log.exception("%s failed", name)

    threading.Thread(target=run, name=name, daemon=True).start()


def _loop(
    channels: dict[int, Any], stopping: threading.Event, grace_s: float, *, watchdog_s: float
) -> None:
    deadline: float | None = None
    armed_at = -1.0
    while channels:
        now = time.monotonic()
        if not stopping.is_set():
            if now - armed_at >= 1.0:  # re-arming starts a C thread: not on every request
                faulthandler.dump_traceback_later(watchdog_s, exit=True)
                armed_at = now
        else:
            deadline = deadline or time.monotonic() + grace_s
            if time.monotonic() >= deadline:
                return
        try:
            wasyncore.loop(timeout=1.0, map=channels, count=1)
        except (OSError, ValueError):
            # the signal handler closed the listening socket under a running select()
            if not stopping.is_set():
                raise
