"""Run a WSGI app under waitress, the production server for every aggregator role.

Waitress serves from one process with a thread pool, which keeps each role's live state
(breakers, health, faults) in one place and makes SIGKILL kill the whole role.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

log = logging.getLogger(__name__)


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int,
    threads: int = 16,
    name: str = "aggregator",
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then run `on_stop` and return."""
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
    )
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
    print(f"{name} listening on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        server.run()
    except (OSError, ValueError):
        # closing the server from the signal handler ends run() with a closed-socket error
        if not stopping.is_set():
            raise
    finally:
        if on_stop is not None:
            on_stop()
