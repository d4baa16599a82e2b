"""The front door's HTTP client towards the regions: one pooled keep-alive client.

The rest of the front door sees only `Transport`, so tests replace it with a fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aggregator.httpclient import HttpCallError, KeepAliveClient


@dataclass(frozen=True, kw_only=True)
class Upstream:
    status: int
    body: bytes
    content_type: str = "application/json"


class TransportError(Exception):
    """No HTTP answer: connection refused or reset, or a timeout (`timeout` True)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class Transport(Protocol):
    def request(
        self, method: str, url: str, *, body: bytes | None = None, timeout: float
    ) -> Upstream: ...


class PooledTransport:
    """Keep-alive connections, reused across requests and threads (httpapi.KeepAliveClient)."""

    def __init__(self, *, pool_size: int = 32, connect_timeout: float = 1.0) -> None:
        self._client = KeepAliveClient(maxsize=pool_size, connect_timeout=connect_timeout)

    def request(
        self, method: str, url: str, *, body: bytes | None = None, timeout: float
    ) -> Upstream:
        try:
            reply = self._client.request(method, url, body=body, timeout=timeout)
        except HttpCallError as exc:
            if exc.refused:
                raise TransportError(f"{method} {url}: connection refused ({exc})") from exc
            if exc.timeout:
                raise TransportError(f"{method} {url}: timed out ({exc})", timeout=True) from exc
            raise TransportError(f"{method} {url}: {exc.name}: {exc}") from exc
        return Upstream(status=reply.status, body=reply.body, content_type=reply.content_type)

    def close(self) -> None:
        self._client.close()
