"""The wallet's settings: CLI arguments over environment over defaults, checked once."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aggregator.errors import ConfigError
from aggregator.limits import MAX_BODY_BYTES
from aggregator.serving import SERVERS

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///var/wallet.db"
DEFAULT_TOKEN_SECRET = "dev-wallet-secret"
MAX_STALL_S = 10.0


@dataclass(frozen=True, kw_only=True)
class WalletConfig:
    admin_token: str
    database_url: str = DEFAULT_DATABASE_URL
    token_secret: str = DEFAULT_TOKEN_SECRET
    initial_balance: int = 1_000_000  # minor units credited to a user on first sight
    currency: str = "EUR"
    host: str = "127.0.0.1"
    port: int = 8200
    threads: int = 32
    # granian: HTTP in Rust, so the two wallet calls of every round cost the wallet's one
    # GIL less (BENCHMARKS.md, aggregator throughput)
    server: str = "granian"
    max_stall_s: float = MAX_STALL_S  # cap on the wallet_timeout fault's stall
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies answer 413 (--max-body-bytes)

    def __post_init__(self) -> None:
        if not self.admin_token:
            raise ConfigError(f"the wallet needs an admin token, got {self.admin_token!r}")
        if isinstance(self.initial_balance, bool) or not isinstance(self.initial_balance, int):
            raise ConfigError(f"initial_balance must be an integer, got {self.initial_balance!r}")
        if self.initial_balance < 0:
            raise ConfigError(f"initial_balance must be >= 0, got {self.initial_balance!r}")
        if not (self.currency.isalpha() and 3 <= len(self.currency) <= 8):
            raise ConfigError(f"currency must be a code such as 'EUR', got {self.currency!r}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads!r}")
        if self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be >= 1, got {self.max_body_bytes!r}")
        if self.server not in SERVERS:
            raise ConfigError(f"server must be one of {', '.join(SERVERS)}, got {self.server!r}")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        token_factory: Callable[[], str] = lambda: secrets.token_urlsafe(24),
        **overrides: Any,
    ) -> WalletConfig:
        """Settings from WALLET_DATABASE_URL, WALLET_TOKEN_SECRET and AGGREGATOR_ADMIN_TOKEN;
        `overrides` (CLI arguments) win where not None. A missing admin token is generated
        and printed, so a demo works without set-up and the operator can still call /admin.
        """
        env = os.environ if env is None else env
        admin_token = env.get("AGGREGATOR_ADMIN_TOKEN", "")
        if not admin_token:
            admin_token = token_factory()
            print(f"wallet: generated admin token {admin_token}", file=sys.stderr, flush=True)
        secret = env.get("WALLET_TOKEN_SECRET", "")
        if not secret:
            log.warning("WALLET_TOKEN_SECRET is not set; using the insecure development secret")
            secret = DEFAULT_TOKEN_SECRET
        config = cls(
            admin_token=admin_token,
            token_secret=secret,
            database_url=env.get("WALLET_DATABASE_URL") or DEFAULT_DATABASE_URL,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})
