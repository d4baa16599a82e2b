"""Validate runbooks: every error names the file and the field."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlplane.errors import ConfigError
from controlplane.runbooks.load import RunbookErrors, load_runbook
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
    files, missing = [], []
    for p in map(Path, args.paths):
        if p.is_dir():
            files += sorted(p.glob("*.y*ml"))
        elif p.exists():
            files.append(p)
        else:
            missing.append(p)
    for p in missing:
        print(f"Checking {p}\n  FAILED: {str(p)!r}: no such file or directory", file=sys.stderr)
    try:
        known = _known_alerts(args.rules)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = len(missing) + sum(not check_runbook(path, known) for path in files)
    return 1 if failed else 0


def _known_alerts(rules: list[str] | None) -> set[str] | None:
    """Alert names triggers may use; None (not checked, said so) with no rules to read."""
    if rules is None and not Path("rules").is_dir():
        print(
            "note: no rules/ here and no --rules given: trigger alert names are not checked",
            file=sys.stderr,
        )
        return None
    return known_alerts(rules or ["rules"])


def check_runbook(path: Path, known: set[str] | None) -> bool:
    print(f"Checking {path}")
    try:
        rb = load_runbook(path, known)
    except RunbookErrors as exc:
        for message in exc.messages:
            print(f"  FAILED: {message}", file=sys.stderr)
        return False
    except ConfigError as exc:
        print(f"  FAILED: {exc}", file=sys.stderr)
        return False
    print(f"  SUCCESS: {rb.name} ({rb.mode.value}, {len(rb.steps)} steps)")
    return True
