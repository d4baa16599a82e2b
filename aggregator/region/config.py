"""Settings of one region process, from the `serve` arguments and the environment."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aggregator.errors import ConfigError
from aggregator.limits import MAX_BODY_BYTES
from aggregator.region.database import default_url

log = logging.getLogger(__name__)

DEV_SESSION_SECRET = "dev-session-secret"


@dataclass(frozen=True, kw_only=True)
class RegionConfig:
    region: str = "eu"
    host: str = "127.0.0.1"
    port: int = 8101
    threads: int = 32
    wallet_url: str = "http://127.0.0.1:8200"
    wallet_timeout_s: float = 1.0
    catalogue_path: str | None = None  # None: the shipped catalogue
    database_url: str = ""  # "": sqlite:///var/region-<region>.db
    seed: int = 0
    admin_token: str = ""
    session_secret: str = DEV_SESSION_SECRET
    retry_interval_s: float = 0.5
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies answer 413 (--max-body-bytes)

    def __post_init__(self) -> None:
        if not self.region:
            raise ConfigError("region id must be non-empty")
        if not self.admin_token:
            raise ConfigError("admin_token must be non-empty (AGGREGATOR_ADMIN_TOKEN)")
        if not 0 < self.wallet_timeout_s <= 60:
            raise ConfigError(f"wallet_timeout must be in (0, 60] s, got {self.wallet_timeout_s!r}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads!r}")
        if self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be >= 1, got {self.max_body_bytes!r}")

    @property
    def database(self) -> str:
        return self.database_url or default_url(self.region)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> RegionConfig:
        """Secrets and the database URL from the environment; everything else from overrides."""
        env = os.environ if env is None else env
        token = env.get("AGGREGATOR_ADMIN_TOKEN", "")
        if not token:
            token = secrets.token_urlsafe(24)
            print(f"AGGREGATOR_ADMIN_TOKEN not set; generated: {token}", file=sys.stderr)
        secret = env.get("AGGREGATOR_SESSION_SECRET", "")
        if not secret:
            log.warning("AGGREGATOR_SESSION_SECRET not set; using the development secret")
            secret = DEV_SESSION_SECRET
        values: dict[str, Any] = {
            "admin_token": token,
            "session_secret": secret,
            "database_url": env.get("REGION_DATABASE_URL", ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_args(cls, args: Any, env: Mapping[str, str] | None = None) -> RegionConfig:
        """From the `aggregator serve` namespace; --database wins over REGION_DATABASE_URL."""
        return cls.from_env(
            env,
            region=args.region,
            host=args.host,
            port=args.port,
            threads=args.threads,
            wallet_url=args.wallet_url,
            wallet_timeout_s=args.wallet_timeout,
            catalogue_path=args.catalogue,
            database_url=args.database,
            seed=args.seed,
            max_body_bytes=getattr(args, "max_body_bytes", None),
        )
