"""`aggregator` command: one subcommand per role. Arguments are defined here, once; each role's
package implements `main(args) -> int` and is imported only when its subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

ROLES = {
    "wallet": "aggregator.wallet",
    "serve": "aggregator.region",
    "frontdoor": "aggregator.frontdoor",
    "loadgen": "aggregator.loadgen",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aggregator", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    wallet = sub.add_parser("wallet", help="the operator's seamless wallet (Hub88 shape)")
    _listen(wallet, 8200)
    wallet.add_argument(
        "--database",
        default=None,
        help="SQLAlchemy URL (default $WALLET_DATABASE_URL or sqlite:///var/wallet.db)",
    )
    wallet.add_argument(
        "--initial-balance",
        type=int,
        default=1_000_000,
        help="minor units credited to a player on first sight",
    )
    wallet.add_argument("--currency", default="EUR")

    region = sub.add_parser("serve", help="the aggregator for one region")
    _listen(region, 8101)
    region.add_argument("--region", required=True)
    region.add_argument("--wallet-url", default="http://127.0.0.1:8200")
    region.add_argument("--catalogue", default=None, help="YAML catalogue (default: shipped)")
    region.add_argument(
        "--database",
        default=None,
        help="SQLAlchemy URL for the retry queue (default sqlite:///var/region-<id>.db)",
    )
    region.add_argument("--seed", type=int, default=0)
    region.add_argument("--wallet-timeout", type=float, default=1.0)

    front = sub.add_parser("frontdoor", help="routes player sessions to regions")
    _listen(front, 8100)
    front.add_argument("--region", action="append", default=[], metavar="ID=URL", required=True)
    front.add_argument("--weight", action="append", default=[], metavar="ID=WEIGHT")
    front.add_argument("--health-interval", type=float, default=1.0)

    load = sub.add_parser("loadgen", help="simulated players")
    load.add_argument("--target", default="http://127.0.0.1:8100")
    load.add_argument("--wallet-url", default="http://127.0.0.1:8200")
    load.add_argument("--rate", type=float, default=50.0, help="rounds per second, all players")
    load.add_argument("--players", type=int, default=100)
    load.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    load.add_argument("--bet", type=int, default=100, help="stake per round, minor units")
    load.add_argument("--currency", default="EUR")
    load.add_argument("--concurrency", type=int, default=32)
    load.add_argument("--seed", type=int, default=0)
    load.add_argument("--report-port", type=int, default=0, help="serve GET /report on this port")
    load.add_argument("--report-file", default=None, help="write the final JSON report here")
    load.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _listen(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help="larger request bodies are answered 413 (default 1048576)",
    )
    parser.add_argument(
        "--server",
        choices=("waitress", "granian"),
        default=None,
        help="WSGI server (default: granian for the wallet and the regions, waitress for the"
        " front door)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    module = importlib.import_module(ROLES[args.command])
    return int(module.main(args))
