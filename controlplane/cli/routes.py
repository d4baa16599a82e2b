"""show the notification route tree, or which receivers an alert with given labels reaches

    controlplane routes show                                  # the tree, as amtool prints it
    controlplane routes test alertname=ProviderDown severity=page region=eu
    controlplane routes test --verify.receivers=oncall severity=page   # exit 1 if not exactly

As `amtool config routes show|test`: `test` prints the receivers, comma-separated, in tree
order; `--tree` adds each matching route's path, group labels and timings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlplane.errors import ConfigError
from controlplane.model.series import Labels, labels_from
from controlplane.model.times import format_duration
from controlplane.notify.matchers import matcher_string
from controlplane.notify.routing import Route, RoutingConfig, load_routing

DEFAULT_ROUTING = "config/routing.yml"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help=f"routing file (default {DEFAULT_ROUTING} or the config's)"
    )
    sub = parser.add_subparsers(dest="routes_command", required=True)
    sub.add_parser("show", help="print the route tree")
    test = sub.add_parser("test", help="which receivers an alert with these labels reaches")
    test.add_argument("labels", nargs="*", help="name=value ...")
    test.add_argument("--tree", action="store_true", help="show each matching route too")
    test.add_argument(
        "--verify.receivers",
        dest="verify",
        default=None,
        help="comma-separated receivers the alert must reach exactly (exit 1 otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        routing = load_routing(Path(args.config or _default_file()))
        if args.routes_command == "show":
            print("\n".join(tree_lines(routing.route)))
            return 0
        labels = parse_labels(args.labels)
    except ConfigError as exc:
        print(f"controlplane routes: {exc}", file=sys.stderr)
        return 2
    return _test(routing, labels, tree=args.tree, verify=args.verify)


def _default_file() -> str:
    from controlplane.config import load_config  # only when no file is named

    try:
        return str(load_config().routing_file)
    except ConfigError:
        return DEFAULT_ROUTING


def parse_labels(words: list[str]) -> Labels:
    pairs = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ConfigError(f"{word!r} is not name=value")
        pairs[name] = value.strip('"')
    return labels_from(pairs)


def _test(routing: RoutingConfig, labels: Labels, *, tree: bool, verify: str | None) -> int:
    hits = routing.route.match(labels)
    receivers = [route.options.receiver for route in hits]
    print(",".join(receivers))
    if tree:
        for route in hits:
            print(f"  {describe(route)} group={dict(route.group_labels(labels))}")
    if verify is not None:
        wanted = [name for name in verify.split(",") if name]
        if receivers != wanted:
            print(f"WARNING: expected receivers {wanted}, got {receivers}", file=sys.stderr)
            return 1
    return 0


def describe(route: Route) -> str:
    matchers = ", ".join(matcher_string(m) for m in route.matchers)
    o = route.options
    group_by = "..." if o.group_by_all else ", ".join(o.group_by)
    timings = "/".join(
        format_duration(t.total_seconds())
        for t in (o.group_wait, o.group_interval, o.repeat_interval)
    )
    more = "  continue" if route.continue_ else ""
    return (
        f"{o.receiver}  {{{matchers}}}  group_by=[{group_by}]  wait/interval/repeat={timings}{more}"
    )


def tree_lines(route: Route, depth: int = 0) -> list[str]:
    lines = [("  " * depth) + ("└── " if depth else "") + describe(route)]
    for child in route.routes:
        lines += tree_lines(child, depth + 1)
    return lines
