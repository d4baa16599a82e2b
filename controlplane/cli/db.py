"""Database administration: apply schema migrations."""

from __future__ import annotations

import argparse
import os

from controlplane.db import DEFAULT_URL, create_engine
from controlplane.migrations import upgrade


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True)
    up = sub.add_parser("upgrade", help="apply every pending migration (idempotent)")
    up.add_argument("--url", default=os.environ.get("CONTROLPLANE_DATABASE_URL", DEFAULT_URL))
    up.add_argument("--revision", default="head")


def run(args: argparse.Namespace) -> int:
    engine = create_engine(args.url)
    try:
        upgrade(engine, args.revision)
    finally:
        engine.dispose()
    print(f"database at {engine.url.render_as_string(hide_password=True)} is at {args.revision}")
    return 0
