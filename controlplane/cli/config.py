"""validate all `controlplane serve` would load: configuration, rules, SLOs, runbooks, routing

    controlplane config check [--config FILE]

Each part is checked even when an earlier one failed (all but the configuration itself, which
says where the others are), and every problem is printed with its file and field, so one run
finds them all. Exit 0 when all is valid, 1 when anything is not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from controlplane.cli.runbooks import check_runbook
from controlplane.config import Config, load_config
from controlplane.errors import ConfigError
from controlplane.notify.routing import load_routing
from controlplane.reload import rule_groups, slo_specs
from controlplane.slo import known_alerts


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", help="validate the configuration and every file it names")
    check.add_argument("--config", default=None, help="YAML file (default $CONTROLPLANE_CONFIG)")


def run(args: argparse.Namespace) -> int:
    print(f"Checking configuration ({args.config or 'defaults and environment'})")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _failed(str(exc))
        return 1
    print(f"  SUCCESS: {_summary(config)}")
    checks: list[tuple[str, Callable[[], str]]] = [
        (f"rules in {config.rules_dir}", lambda: _rules(config)),
        (f"routing {config.routing_file}", lambda: _routing(config)),
    ]
    ok = all([_run_check(name, check) for name, check in checks])
    return 0 if _runbooks(config) and ok else 1


def _summary(config: Config) -> str:
    backend = f"remote {config.query.prometheus_url}" if config.query.prometheus_url else "embedded"
    return (
        f"port {config.server.port}, {len(config.scrape.targets)} scrape targets, "
        f"query backend {backend}, database {config.database_url.split('://')[0]}"
    )


def _run_check(name: str, check: Callable[[], str]) -> bool:
    print(f"Checking {name}")
    try:
        found = check()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            _failed(line)
        return False
    print(f"  SUCCESS: {found}")
    return True


def _failed(line: str) -> None:
    print(f"  FAILED: {line}", file=sys.stderr)


def _rules(config: Config) -> str:
    specs = slo_specs(config.rules_dir)
    groups = rule_groups(config.rules_dir, specs)
    rules = sum(len(g.rules) for g in groups)
    slos = sum(len(s.slos) for s in specs)
    return f"{len(groups)} groups, {rules} rules (with those generated from {slos} SLOs)"


def _routing(config: Config) -> str:
    routing = load_routing(config.routing_file)
    routes, inhibits = len(routing.route.walk()), len(routing.inhibit_rules)
    return f"{routes} routes, {len(routing.receivers)} receivers, {inhibits} inhibit rules"


def _runbooks(config: Config) -> bool:
    try:
        known = known_alerts([str(config.rules_dir)])
    except ConfigError:
        known = None  # the rules check above has said why
    files = sorted(Path(config.runbooks_dir).glob("*.y*ml"))
    if not Path(config.runbooks_dir).is_dir():
        print(f"Checking runbooks in {config.runbooks_dir}")
        _failed(f"{str(config.runbooks_dir)!r}: no such directory")
        return False
    return all([check_runbook(path, known) for path in files])
