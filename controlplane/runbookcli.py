"""Validate runbooks: every error names the file and the field."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlplane.errors import ConfigError
from controlplane.runbooks.load import load_runbook


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


def known_alerts(paths: list[str]) -> set[str]:
    """Alert names defined by the rule files and the generated SLO rules under `paths`."""
    import yaml

    from controlplane.slo import generate_rule_groups, load_specs

    names: set[str] = set()
    for root in map(Path, paths):
        files = sorted(root.rglob("*.y*ml")) if root.is_dir() else [root]
        for f in files:
            if "slo" in f.parts or "tests" in f.parts:
                continue
            try:
                doc = yaml.safe_load(f.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{f}: cannot read rule file: {exc}") from exc
            for group in doc.get("groups", []) if isinstance(doc, dict) else []:
                names.update(r["alert"] for r in group.get("rules", []) if "alert" in r)
        slo_dir = root / "slo" if root.is_dir() else None
        if slo_dir is not None and slo_dir.is_dir():
            for spec in load_specs(slo_dir):
                for slo in spec.slos:
                    for group in generate_rule_groups(slo):
                        names.update(r["alert"] for r in group["rules"] if "alert" in r)
    return names
