"""A WSGI app served by the standard library's threaded server, for the front door's and the
load generator's fakes (plain HTTP/1.0, one connection per request)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Threaded(WSGIServer):
    daemon_threads = True


class Served:
    """A WSGI app on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.server = make_server("127.0.0.1", 0, app, server_class=_Threaded, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # a short poll: close() waits for it, at every test's teardown (0.5 s by default)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
