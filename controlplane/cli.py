"""`controlplane` command. Each verb lives in its own module, which exposes
`configure(parser)` (arguments) and `run(args) -> int`; this file only lists them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# verb -> module; a verb whose module is not there yet is simply not offered
VERBS = {
    "serve": "controlplane.serve",
    "demo": "controlplane.demo",
    "query": "controlplane.querycli",
    "rules": "controlplane.rulescli",
    "slo": "controlplane.slocli",
    "silences": "controlplane.silencecli",
    "runbooks": "controlplane.runbookcli",
    "audit": "controlplane.auditcli",
    "automation": "controlplane.automationcli",
    "db": "controlplane.dbcli",
    "backtest": "controlplane.backtestcli",
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(prog="controlplane", description="casino SRE control plane")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="verb", required=True)
    modules: dict[str, object] = {}
    for verb, name in VERBS.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
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
