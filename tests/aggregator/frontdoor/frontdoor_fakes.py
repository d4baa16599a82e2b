"""Fakes at the HTTP boundary of the front door."""

from __future__ import annotations

import json
from collections.abc import Callable

from aggregator.frontdoor.transport import TransportError, Upstream

Handler = Callable[[str, str, bytes | None], Upstream]


def ok_region(name: str) -> Handler:
    """A region that answers every probe and player call with 200, naming itself."""

    def handle(method: str, path: str, body: bytes | None) -> Upstream:
        payload = json.loads(body) if body else {}
        return Upstream(status=200, body=json.dumps({"served_by": name, **payload}).encode())

    return handle


class FakeTransport:
    """Routes by base URL to handler functions; an unknown base URL is a refused connection."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.calls: list[tuple[str, str]] = []

    def request(
        self, method: str, url: str, *, body: bytes | None = None, timeout: float
    ) -> Upstream:
        self.calls.append((method, url))
        for base, handler in self.handlers.items():
            if url.startswith(base + "/"):
                return handler(method, url[len(base) :], body)
        raise TransportError(f"connection refused: {url}")

    def player_calls(self) -> list[str]:
        return [url for _, url in self.calls if "/player/" in url]
