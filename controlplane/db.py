"""The control plane's database: SQLite by default (zero set-up), PostgreSQL by URL.

One engine per process, created here so every table owner gets the same pragmas and pooling.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DEFAULT_URL = "sqlite:///var/controlplane.db"
DEMO_URL = "sqlite:///var/demo/controlplane.db"  # `controlplane demo`'s, from the project dir


def reading_url(env: Mapping[str, str]) -> str:
    """The database a verb that only reads should open: $CONTROLPLANE_DATABASE_URL, else the
    default file if it exists, else the running demo's (so `controlplane audit verify` from
    the project directory finds the demo's log), else the default."""
    if env.get("CONTROLPLANE_DATABASE_URL"):
        return env["CONTROLPLANE_DATABASE_URL"]
    for url in (DEFAULT_URL, DEMO_URL):
        if Path(url.removeprefix("sqlite:///")).is_file():
            return url
    return DEFAULT_URL


def create_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
