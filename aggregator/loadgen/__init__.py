"""The load generator: simulated players who launch games and play rounds, open-loop at a fixed
rate, recording what a player saw and what each player's balance should be.

`aggregator loadgen --target http://127.0.0.1:8100 --wallet-url http://127.0.0.1:8200 --rate 50`
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from flask import Flask, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from aggregator.httpapi import install_error_handlers, install_probes, json_response
from aggregator.limits import BodyLimit
from aggregator.loadgen.client import HttpTarget, Target
from aggregator.loadgen.edge import run_to_completion
from aggregator.loadgen.players import PlayConfig
from aggregator.loadgen.runner import LoadConfig, Runner

log = logging.getLogger(__name__)

__all__ = ["LoadgenConfig", "create_app", "main"]

FALLBACK_CATEGORIES = ("slots", "live", "table", "crash")


@dataclass(frozen=True, kw_only=True)
class LoadgenConfig:
    target_url: str = "http://127.0.0.1:8100"
    wallet_url: str = "http://127.0.0.1:8200"
    seed: int = 0
    load: LoadConfig = field(default_factory=LoadConfig)


class LoadgenCollector(Collector):
    """Player-visible outcomes as metrics, so the control plane can scrape player impact."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def collect(self) -> Iterator[Metric]:
        counts = self._runner.stats.counts()
        launches = CounterMetricFamily(
            "casino_loadgen_launches", "Game launches seen by players", labels=["outcome"]
        )
        for outcome in ("ok", "failover", "failed"):
            launches.add_metric([outcome], counts.get(f"launches_{outcome}", 0))
        rounds = CounterMetricFamily(
            "casino_loadgen_rounds", "Rounds seen by players, by final outcome", labels=["outcome"]
        )
        for outcome in ("settled", "failed", "unknown"):
            rounds.add_metric([outcome], counts.get(f"rounds_{outcome}", 0))
        yield launches
        yield rounds
        yield CounterMetricFamily(
            "casino_loadgen_round_retries", "Retries of unknown outcomes", value=counts["retries"]
        )
        yield GaugeMetricFamily(
            "casino_loadgen_rounds_in_flight", "Rounds not yet answered", value=counts["in_flight"]
        )


def create_app(
    config: LoadgenConfig | None = None,
    *,
    target: Target | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
    registry: CollectorRegistry | None = None,
) -> Flask:
    """The report server (GET /report, /metrics, probes) around a Runner in app.extensions."""
    config = config or LoadgenConfig()
    target = target or HttpTarget(
        config.target_url, config.wallet_url, pool_size=config.load.concurrency + 4
    )
    runner = Runner(target, config.load, rng=rng or random.Random(config.seed), clock=clock)
    registry = registry or CollectorRegistry()
    registry.register(LoadgenCollector(runner))
    app = Flask("aggregator.loadgen")
    app.extensions["loadgen"] = runner
    install_error_handlers(app)
    install_probes(app, registry)

    @app.get("/report")
    def report() -> Response:
        return json_response(runner.report())

    app.wsgi_app = BodyLimit(app.wsgi_app)  # type: ignore[method-assign]
    return app


def shipped_categories() -> tuple[str, ...]:
    """Game categories of the shipped catalogue (the lobby a player would pick from)."""
    try:
        text = resources.files("aggregator").joinpath("data/catalogue.yaml").read_text()
        data = yaml.safe_load(text)
        found = {
            str(game["category"])
            for provider in data["providers"].values()
            for game in provider["games"]
        }
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return FALLBACK_CATEGORIES
    return tuple(sorted(found)) or FALLBACK_CATEGORIES


def config_from_args(args: argparse.Namespace) -> LoadgenConfig:
    # a fresh run id keeps round ids unique even against a wallet that saw this seed before
    run_id = f"s{args.seed}-{secrets.token_hex(4)}"
    play = PlayConfig(bet=args.bet, currency=args.currency, categories=shipped_categories())
    load = LoadConfig(
        rate=args.rate,
        players=args.players,
        concurrency=args.concurrency,
        duration_s=args.duration,
        run_id=run_id,
        play=play,
    )
    return LoadgenConfig(
        target_url=args.target, wallet_url=args.wallet_url, seed=args.seed, load=load
    )


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    app = create_app(config)
    runner: Runner = app.extensions["loadgen"]
    report = run_to_completion(
        app,
        runner,
        report_port=args.report_port,
        host="127.0.0.1",
        quiet=args.quiet,
    )
    text = json.dumps(report, indent=2, sort_keys=False)
    if args.report_file:
        path = Path(args.report_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(text, flush=True)
    return 0
