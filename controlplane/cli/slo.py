"""Generate Prometheus rules from SLO specs (rules/slo/*.yaml)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlplane.errors import ConfigError
from controlplane.slo import SLOSpec, generate_rule_file, load_spec, load_specs


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slo_command", required=True)
    gen = sub.add_parser("generate", help="write the generated rules as a Prometheus rule file")
    gen.add_argument("specs", nargs="*", default=["rules/slo"], help="spec files or directories")
    gen.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    check = sub.add_parser("check", help="validate SLO specs")
    check.add_argument("specs", nargs="*", default=["rules/slo"])


def run(args: argparse.Namespace) -> int:
    try:
        specs = [s for path in args.specs for s in _load(Path(path))]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.slo_command == "check":
        count = sum(len(s.slos) for s in specs)
        print(f"SUCCESS: {count} SLOs in {len(specs)} specs")
        return 0
    text = generate_rule_file(specs)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _load(path: Path) -> list[SLOSpec]:
    if path.is_dir():
        return load_specs(path)
    return [load_spec(path)]
