"""Fixtures of the wallet tests: a wallet app on a fresh SQLite file or PostgreSQL schema, and
the ledger invariants every test checks the money with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aggregator.wallet import WalletConfig, WalletServices, create_app

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'wallet.db'}"


@pytest.fixture
def make_wallet() -> Iterator[Callable[..., Flask]]:
    """Builds wallet apps (closing their databases at teardown); keyword arguments go to
    WalletConfig, except those create_app takes (clock, rng, sleep, ...)."""
    apps: list[Flask] = []
    app_args = {"clock", "perf_clock", "rng", "sleep", "registry"}

    def build(**kwargs: Any) -> Flask:
        config_args = {k: v for k, v in kwargs.items() if k not in app_args}
        config_args.setdefault("admin_token", ADMIN_TOKEN)
        config_args.setdefault("token_secret", "test-wallet-secret")
        app = create_app(
            WalletConfig(**config_args), **{k: v for k, v in kwargs.items() if k in app_args}
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        services(app).close()


def services(app: Flask) -> WalletServices:
    wallet: WalletServices = app.extensions["wallet"]
    return wallet


@pytest.fixture
def wallet(make_wallet: Callable[..., Flask], sqlite_url: str) -> Flask:
    return make_wallet(database_url=sqlite_url, initial_balance=1000)


@pytest.fixture
def client(wallet: Flask) -> FlaskClient:
    return wallet.test_client()
