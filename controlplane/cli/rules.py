"""Check and unit-test Prometheus rule files, as `promtool check rules` / `promtool test rules`.

    controlplane rules check rules/            # every rule file in the directory
    controlplane rules check a.yml b.yml
    controlplane rules test rules/tests/*.yml

Output and exit codes are promtool's: 0 when everything is fine, 1 when a file has problems or
a test fails. A directory contributes its *.yml/*.yaml files that have a top-level `groups`
key; other YAML next to the rules (routing, SLO specs) is listed as skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlplane.rules.load import RuleFileError, load_file, rule_files
from controlplane.rules.unittest import run_files


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", required=True, metavar="{check,test}")
    check = sub.add_parser("check", help="check rule files as promtool check rules does")
    check.add_argument("paths", nargs="+", metavar="FILE|DIR", help="rule files or directories")
    test = sub.add_parser("test", help="run rule unit tests as promtool test rules does")
    test.add_argument("files", nargs="+", metavar="FILE", help="unit-test files")


def run(args: argparse.Namespace) -> int:
    if args.rules_command == "test":
        return run_files(args.files)
    return check(args.paths)


def check(paths: list[str]) -> int:
    files, skipped = rule_files(paths)
    for path in skipped:
        print(f"Skipping {path}: not a rule file (no top-level 'groups' key)")
    if not files:
        print(f"no rule files found in {', '.join(paths)}", file=sys.stderr)
        return 1
    failed = False
    for path in files:
        print(f"Checking {path}")
        try:
            groups = load_file(Path(path))
        except RuleFileError as exc:
            print("  FAILED:", file=sys.stderr)
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            failed = True
        else:
            count = sum(len(g.rules) for g in groups)
            print(f"  SUCCESS: {count} rules found")
        print()
    return 1 if failed else 0
