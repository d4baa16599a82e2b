"""The load generator's HTTP edge: the wallet's token call and the player API, over one pooled
keep-alive client. The core only sees `Target`, so tests give it a fake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from aggregator.httpclient import HttpCallError, KeepAliveClient


@dataclass(frozen=True, kw_only=True)
class Reply:
    """An answer, or its absence: `status` None means no HTTP answer (refused, reset, timeout)."""

    status: int | None
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def code(self) -> str:
        """A short name for what happened, for counters and the unknown-round list."""
        if self.status is None:
            return self.error or "no_answer"
        return str(self.body.get("error") or self.body.get("status") or self.status)


class Target(Protocol):
    def token(self, user: str) -> Reply: ...

    def launch(self, body: dict[str, Any]) -> Reply: ...

    def round(self, body: dict[str, Any]) -> Reply: ...


class HttpTarget:
    def __init__(
        self,
        target_url: str,
        wallet_url: str,
        *,
        pool_size: int = 32,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self._target = target_url.rstrip("/")
        self._wallet = wallet_url.rstrip("/")
        self._timeout = timeout_s
        self._pool = KeepAliveClient(maxsize=pool_size, connect_timeout=connect_timeout_s)

    def token(self, user: str) -> Reply:
        return self._post(f"{self._wallet}/operator/token", {"user": user})

    def launch(self, body: dict[str, Any]) -> Reply:
        return self._post(f"{self._target}/player/launch", body)

    def round(self, body: dict[str, Any]) -> Reply:
        return self._post(f"{self._target}/player/round", body)

    def _post(self, url: str, body: dict[str, Any]) -> Reply:
        try:
            response = self._pool.request(
                "POST", url, body=json.dumps(body).encode(), timeout=self._timeout
            )
        except HttpCallError as exc:
            if exc.timeout:
                return Reply(status=None, error="timeout")
            return Reply(status=None, error=f"connection_error:{exc.name}")
        try:
            parsed = json.loads(response.body) if response.body else {}
        except (ValueError, RecursionError):
            parsed = {}
        return Reply(status=response.status, body=parsed if isinstance(parsed, dict) else {})

    def close(self) -> None:
        self._pool.close()
