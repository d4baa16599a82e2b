"""The front door's HTTP client towards the regions: one pooled keep-alive urllib3 client.

The rest of the front door sees only `Transport`, so tests replace it with a fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import urllib3


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
    """urllib3 PoolManager: connections are kept alive and reused across requests and threads."""

    def __init__(self, *, pool_size: int = 32, connect_timeout: float = 1.0) -> None:
        self._connect_timeout = connect_timeout
        self._pool = urllib3.PoolManager(
            num_pools=16, maxsize=pool_size, block=False, retries=False
        )

    def request(
        self, method: str, url: str, *, body: bytes | None = None, timeout: float
    ) -> Upstream:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=min(self._connect_timeout, timeout), read=timeout),
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:
            # before TimeoutError: urllib3 makes a refused connection a kind of connect timeout
            raise TransportError(f"{method} {url}: connection refused ({exc})") from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise TransportError(f"{method} {url}: timed out ({exc})", timeout=True) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        return Upstream(
            status=response.status,
            body=response.data,
            content_type=response.headers.get("Content-Type", "application/json"),
        )

    def close(self) -> None:
        self._pool.clear()
