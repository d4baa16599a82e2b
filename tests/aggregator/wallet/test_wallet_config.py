"""Wallet settings: environment, CLI overrides, generated admin token, refused values."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from aggregator.cli import build_parser
from aggregator.errors import ConfigError
from aggregator.wallet import main
from aggregator.wallet.config import DEFAULT_DATABASE_URL, DEFAULT_TOKEN_SECRET, WalletConfig
from aggregator.wallet.schema import make_engine


def test_from_env_reads_the_environment_and_cli_overrides_win() -> None:
    env = {
        "AGGREGATOR_ADMIN_TOKEN": "adm",
        "WALLET_TOKEN_SECRET": "sec",
        "WALLET_DATABASE_URL": "sqlite:///x.db",
    }
    config = WalletConfig.from_env(env, port=9999, database_url=None, currency="USD")
    assert (config.admin_token, config.token_secret) == ("adm", "sec")
    assert (config.database_url, config.port, config.currency) == ("sqlite:///x.db", 9999, "USD")


def test_missing_admin_token_is_generated_and_printed(capsys: pytest.CaptureFixture[str]) -> None:
    config = WalletConfig.from_env({}, token_factory=lambda: "generated-token")
    assert config.admin_token == "generated-token"
    assert "generated-token" in capsys.readouterr().err
    assert (config.token_secret, config.database_url) == (
        DEFAULT_TOKEN_SECRET,
        DEFAULT_DATABASE_URL,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial_balance", -1),
        ("initial_balance", 1.5),
        ("initial_balance", True),
        ("currency", "€"),
        ("threads", 0),
        ("admin_token", ""),
        ("server", "gunicorn"),
    ],
)
def test_refused_settings_name_the_value(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"admin_token": "adm", field: value}
    with pytest.raises(ConfigError, match=re.escape(repr(value))):
        WalletConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "not a url"])
def test_unusable_database_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="wallet"):
        make_engine(url)


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/a/b/wallet.db")
    try:
        assert (tmp_path / "a" / "b" / "wallet.db").exists()
        make_engine(str(engine.url)).dispose()  # creating the tables twice is harmless
    finally:
        engine.dispose()


def test_main_refuses_a_bad_setting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args: argparse.Namespace = build_parser().parse_args(
        ["wallet", "--currency", "12", "--database", f"sqlite:///{tmp_path}/w.db"]
    )
    assert main(args) == 2
    assert "'12'" in capsys.readouterr().err


def test_the_wallet_serves_on_granian_unless_told_otherwise() -> None:
    from aggregator.cli import build_parser

    assert WalletConfig(admin_token="adm").server == "granian"
    args = build_parser().parse_args(["wallet", "--server", "waitress"])
    assert WalletConfig.from_env({"AGGREGATOR_ADMIN_TOKEN": "a"}, server=args.server).server == (
        "waitress"
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["wallet", "--server", "gunicorn"])
