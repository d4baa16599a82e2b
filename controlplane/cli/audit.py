"""Check the audit log's hash chain: finds edited, deleted and truncated rows."""

from __future__ import annotations

import argparse
import os

from controlplane.audit import AuditLog
from controlplane.db import DEFAULT_URL, create_engine


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser("verify", help="verify the hash chain of the audit log")
    verify.add_argument("--url", default=os.environ.get("CONTROLPLANE_DATABASE_URL", DEFAULT_URL))


def run(args: argparse.Namespace) -> int:
    engine = create_engine(args.url)
    try:
        result = AuditLog(engine).verify()
    finally:
        engine.dispose()
    for problem in result.problems:
        print(f"  BROKEN: {problem}")
    print(f"{'OK' if result.ok else 'FAILED'}: {result.checked} audit events checked")
    return 0 if result.ok else 1
