"""Validate runbooks: every error names the file and the field."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlplane.errors import ConfigError
from controlplane.runbooks.load import load_runbook
from controlplane.slo import known_alerts


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="runbooks_command", required=True)
    check = sub.add_parser("check", help="load and validate runbook files or directories")
    check.add_argument("paths", nargs="*", default=["runbooks"])
    check.add_argument(
        "--rules",
        action="append",
        default=None,
        help="rule files or directories whose alert names triggers may use "
        "(default: rules/ and the SLO specs)",
    )


def run(args: argparse.Namespace) -> int:
    files = [
        f for p in map(Path, args.paths) for f in (sorted(p.glob("*.y*ml")) if p.is_dir() else [p])
    ]
    try:
        known = known_alerts(args.rules or ["rules"])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            rb = load_runbook(path, known)
        except ConfigError as exc:
            failed += 1
            print(f"  FAILED: {exc}", file=sys.stderr)
        else:
            print(f"Checking {path}\n  SUCCESS: {rb.name} ({rb.mode.value}, {len(rb.steps)} steps)")
    return 1 if failed else 0
