from __future__ import annotations

import argparse

import pytest

from aggregator.cli import build_parser
from aggregator.errors import ConfigError
from aggregator.region.config import DEV_SESSION_SECRET, RegionConfig


def serve_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", "--region", "latam", *extra])


def test_from_args_takes_secrets_and_database_from_the_environment() -> None:
    env = {
        "AGGREGATOR_ADMIN_TOKEN": "tok",
        "AGGREGATOR_SESSION_SECRET": "sec",
        "REGION_DATABASE_URL": "postgresql+psycopg://db/region",
    }
    config = RegionConfig.from_args(serve_args("--port", "9000", "--seed", "4"), env)
    assert (config.region, config.port, config.seed) == ("latam", 9000, 4)
    assert (config.admin_token, config.session_secret) == ("tok", "sec")
    assert config.database == "postgresql+psycopg://db/region"
    assert config.wallet_timeout_s == 1.0 and config.catalogue_path is None
    # --database wins over the environment
    flag = RegionConfig.from_args(serve_args("--database", "sqlite:///x.db"), env)
    assert flag.database == "sqlite:///x.db"


def test_defaults_generate_a_token_and_use_the_dev_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = RegionConfig.from_args(serve_args(), {})
    assert config.admin_token and config.admin_token in capsys.readouterr().err
    assert config.session_secret == DEV_SESSION_SECRET
    assert config.database == "sqlite:///var/region-latam.db"


@pytest.mark.parametrize(
    ("field", "value"), [("wallet_timeout_s", 0.0), ("threads", 0), ("region", "")]
)
def test_bad_settings_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=repr(value) if field != "region" else "region"):
        RegionConfig(admin_token="t", **{field: value})  # type: ignore[arg-type]
