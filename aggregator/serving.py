"""Run a role's WSGI app under a production server until SIGINT or SIGTERM.

Two servers, one contract (`serve`):

- waitress (pure Python, one process with a thread pool): the front door's. Its HTTP parsing
  and socket loop run in Python, under the same GIL as the app.
- granian (HTTP in Rust, the app on Python threads): the wallet's and the regions', where
  waitress's own cost capped the whole aggregator (two wallet calls per round, each spending
  more CPU in waitress than in the ledger). granian serves from one worker process forked from
  the role's process; the worker inherits the app already built, dies with its parent
  (PR_SET_PDEATHSIG, so SIGKILL of the role still kills the whole role) and runs
  `on_start`/`on_stop` itself.

`on_start` runs in the process that serves requests, just before it does (start background
threads there); `before_fork` (granian only) releases what must not cross a fork, such as
open database connections.

Request bodies: each role's app answers a body over its limit with a JSON 413 (`BodyLimit`,
aggregator/limits.py). granian hands the app the body as a stream, so an over-limit body is
refused unread. waitress reads every body whole before the app runs (spooling it to a file
past 512 KiB), so it gets a backstop of its own: a declared length over `WAITRESS_BACKSTOP`
times the limit is refused by waitress itself, at the headers, with its plain-text 413.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from aggregator.limits import MAX_BODY_BYTES

log = logging.getLogger(__name__)

SERVERS = ("waitress", "granian")
Hook = Callable[[], None]
WAITRESS_BACKSTOP = 16  # x the role's body limit (16 MiB by default)


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int,
    threads: int = 16,
    name: str = "aggregator",
    server: str = "waitress",
    on_start: Hook | None = None,
    on_stop: Hook | None = None,
    before_fork: Hook | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Serve until SIGINT or SIGTERM, then run `on_stop` and return."""
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}; expected one of {', '.join(SERVERS)}")
    hooks = (on_start or _nothing, on_stop or _nothing)
    role = _Role(app, host, port, threads, name, *hooks, max_body_bytes=max_body_bytes)
    if server == "granian":
        _serve_granian(role, before_fork or _nothing)
    else:
        _serve_waitress(role)


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class _Role:
    app: Any
    host: str
    port: int
    threads: int
    name: str
    on_start: Hook
    on_stop: Hook
    max_body_bytes: int = MAX_BODY_BYTES


def _serve_waitress(role: _Role) -> None:
    app, host, port, threads, name = role.app, role.host, role.port, role.threads, role.name
    # Requests queue behind busy threads routinely here (a region's threads wait on the
    # wallet): waitress's warning per queued request cost 12% of a loaded region's CPU.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        connection_limit=1000,
        channel_timeout=30,
        ident=name,
        clear_untrusted_proxy_headers=True,
        max_request_body_size=role.max_body_bytes * WAITRESS_BACKSTOP,
    )
    _announce(name, host, port, "waitress")
    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("%s: signal %d, stopping", name, signum)
        # Closing only the listener would leave the loop serving keep-alive clients forever;
        # close every channel, from inside the loop (the trigger) rather than mid-poll.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        role.on_start()
        server.run()
    except (OSError, ValueError):
        # closing the server from the signal handler ends run() with a closed-socket error
        if not stopping.is_set():
            raise
    finally:
        role.on_stop()


def _serve_granian(role: _Role, before_fork: Hook) -> None:
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces

    # The worker must inherit the built app (and its hooks' closures): that takes fork.
    if multiprocessing.get_start_method(allow_none=False) != "fork":
        multiprocessing.set_start_method("fork", force=True)
    before_fork()
    parent = os.getpid()

    def load(_target: str) -> Any:
        _die_with(parent)
        role.on_start()
        return role.app

    def worker(*args: Any, **kwargs: Any) -> None:
        try:
            Granian._spawn_wsgi_worker(*args, **kwargs)
        finally:
            role.on_stop()

    granian = Granian(
        role.name,
        address=role.host,
        port=role.port,
        interface=Interfaces.WSGI,
        workers=1,
        websockets=False,
        blocking_threads=role.threads,
        backpressure=max(role.threads, 64),
        workers_kill_timeout=10,
        log_dictconfig=_GRANIAN_LOGGING,
    )
    _announce(role.name, role.host, role.port, "granian")
    granian.serve(spawn_target=worker, target_loader=load)


def _announce(name: str, host: str, port: int, server: str) -> None:
    print(f"{name} listening on http://{host}:{port} ({server})", file=sys.stderr, flush=True)


class _MeasuredThreadCount(logging.Filter):
    """Drops granian's advice against more Python threads than 2 x cores + 1: the wallet's
    threads mostly wait (on its writer lock, or in a stall fault), and 32 measured faster than
    8 here (BENCHMARKS.md), so the warning would only mislead whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Configuration allows spawning up to")


# granian's own records go through the role's logging (stderr, one format), not its stdout
# handlers; the access log stays off.
_GRANIAN_LOGGING: dict[str, Any] = {
    "filters": {"measured_thread_count": {"()": _MeasuredThreadCount}},
    "handlers": {},
    "loggers": {
        "_granian": {"level": "INFO", "propagate": True, "filters": ["measured_thread_count"]},
        "granian.access": {"level": "WARNING", "propagate": True},
    },
}

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when `parent` dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
