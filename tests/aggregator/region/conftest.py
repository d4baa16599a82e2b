"""Fixtures of the region tests: a fake wallet over HTTP and region apps wired to it."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from aggregator.region import Dependencies, RegionConfig, create_app
from aggregator.region.breakers import BreakerPolicy
from aggregator.region.runtime import Region
from aggregator.sessions import GameSession
from tests.aggregator.region.region_fakes import FakeWallet
from tests.conftest import ServedApp

TOKEN = "test-admin-token"
SECRET = "test-session-secret"


class Clock:
    """A settable clock for both wall and monotonic time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RegionHarness:
    app: Flask
    region: Region
    client: FlaskClient
    clock: Clock
    wallet: FakeWallet
    auth: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {TOKEN}"})

    def admin(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        return self.client.open(path, method=method, json=body, headers={**self.auth, **headers})

    def launch(self, **body: Any) -> Any:
        payload = {"user": "p1", "token": "tok", "currency": "EUR", **body}
        return self.client.post("/player/launch", json=payload)

    def session(self, game: str, user: str = "p1", token: str = "tok") -> str:
        g = self.region.catalogue.games[game]
        return GameSession(
            session_id=f"s-{user}-{game}",
            user=user,
            token=token,
            currency="EUR",
            game=g.id,
            provider=g.provider,
            region=self.region.config.region,
        ).encode(SECRET)

    def play(self, session: str, round_id: str, bet: int = 100) -> Any:
        return self.client.post(
            "/player/round", json={"session": session, "round": round_id, "bet": bet}
        )

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.client.get("/metrics").get_data(as_text=True)
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        return sum(
            v
            for (n, lbls), v in self.metrics().items()
            if n == name and labels.items() <= dict(lbls).items()
        )


@pytest.fixture
def fake_wallet() -> Iterator[tuple[FakeWallet, ServedApp]]:
    wallet = FakeWallet()
    served = ServedApp(wallet.app())
    yield wallet, served
    served.close()


MakeRegion = Callable[..., RegionHarness]


@pytest.fixture
def make_region(tmp_path: Path, fake_wallet: tuple[FakeWallet, ServedApp]) -> Iterator[MakeRegion]:
    """Build region apps against the fake wallet; each has its own clock, RNG and registry."""
    built: list[Region] = []
    wallet, served = fake_wallet

    def build(
        region: str = "eu",
        *,
        database: str | None = None,
        seed: int = 7,
        rng_seed: int = 11,
        catalogue: str | None = None,
        wallet_timeout_s: float = 1.0,
        wallet_url: str | None = None,
    ) -> RegionHarness:
        clock = Clock()
        config = RegionConfig(
            region=region,
            wallet_url=wallet_url or served.url,
            wallet_timeout_s=wallet_timeout_s,
            catalogue_path=catalogue,
            database_url=database or f"sqlite:///{tmp_path}/region-{region}-{len(built)}.db",
            seed=seed,
            admin_token=TOKEN,
            session_secret=SECRET,
        )
        deps = Dependencies(
            clock=clock,
            monotonic=clock,
            rng=random.Random(rng_seed),
            registry=CollectorRegistry(),
            breaker_policy=BreakerPolicy(),
        )
        app = create_app(config, deps=deps)
        reg: Region = app.extensions["region"]
        built.append(reg)
        return RegionHarness(
            app=app, region=reg, client=app.test_client(), clock=clock, wallet=wallet
        )

    yield build
    for reg in built:
        reg.close()
