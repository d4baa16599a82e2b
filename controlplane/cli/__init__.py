"""The `controlplane` command: every verb. Each verb lives in its own module, which exposes
`configure(parser)` (arguments) and `run(args) -> int`; this file only lists them.

Top layer: may import anything of the control plane; nothing imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# verb -> module, imported only when the command line is built (a verb's imports stay its own)
VERBS = {
    "serve": "controlplane.serve",
    "demo": "controlplane.demo.bundle",
    "query": "controlplane.cli.query",
    "rules": "controlplane.cli.rules",
    "slo": "controlplane.cli.slo",
    "silences": "controlplane.cli.silences",
    "routes": "controlplane.cli.routes",
    "runbooks": "controlplane.cli.runbooks",
    "audit": "controlplane.cli.audit",
    "automation": "controlplane.cli.automation",
    "db": "controlplane.cli.db",
    "config": "controlplane.cli.config",
    "backtest": "controlplane.cli.backtest",
    "slack": "controlplane.cli.slack",
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(prog="controlplane", description="casino SRE control plane")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="verb", required=True)
    modules: dict[str, object] = {}
    for verb, name in VERBS.items():
        module = importlib.import_module(name)  # a missing verb module is a bug: let it raise
        modules[verb] = module
        module.configure(sub.add_parser(verb, help=(module.__doc__ or "").strip().split("\n")[0]))
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return int(modules[args.verb].run(args))  # type: ignore[attr-defined]
