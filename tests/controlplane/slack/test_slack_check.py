"""`controlplane slack check`: the token and every configured channel, exit 0 or 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.cli import main
from controlplane.slack.standin import channel_id
from tests.conftest import free_port
from tests.controlplane.slack.standin_helpers import TOKEN, Standin, served_standin


@pytest.fixture
def standin() -> Iterator[Standin]:
    yield from served_standin()


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONFIG", "SLACK_API_URL", "SLACK_BOT_TOKEN", "ROUTING_FILE"):
        monkeypatch.delenv(f"CONTROLPLANE_{name}", raising=False)


def config_file(tmp_path: Path, api_url: str, *channels: str, token: str | None = TOKEN) -> str:
    routing = tmp_path / "routing.yml"
    entries = "".join(f"      - channel: '{c}'\n" for c in channels)
    routing.write_text(
        "route: {receiver: oncall}\nreceivers:\n  - name: oncall\n    slack_configs:\n" + entries
    )
    config = tmp_path / "config.yml"
    token_line = f"  bot_token: {token}\n" if token else ""
    config.write_text(f"routing_file: {routing}\nslack:\n  api_url: {api_url}\n{token_line}")
    return str(config)


def check(config: str, *more: str) -> int:
    return main(["slack", "check", "--config", config, *more])


def test_a_good_token_and_channels(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, standin.api_url, "#alerts", channel_id("oncall"))
    assert check(config) == 0
    out = capsys.readouterr().out
    assert "SUCCESS: controlplane in Stand-in" in out
    assert f"SUCCESS: #alerts is #alerts ({channel_id('alerts')}), the bot is a member" in out
    assert f"SUCCESS: {channel_id('oncall')} is #oncall" in out
    assert standin.messages() == []  # a check posts nothing


def test_an_unknown_channel_fails(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, standin.api_url, "#alerts")
    assert check(config, "--channel", "#nowhere", "--channel", "C0NOWHERE") == 1
    err = capsys.readouterr().err
    assert "FAILED: #nowhere: no such channel visible to the bot" in err
    assert "FAILED: C0NOWHERE: channel_not_found" in err


def test_a_bad_token_fails(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(config_file(tmp_path, standin.api_url, "#alerts", token="xoxb-bad")) == 1
    assert "invalid_auth" in capsys.readouterr().err


def test_no_token_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(config_file(tmp_path, "http://127.0.0.1:9/api/", "#alerts", token=None)) == 1
    assert "no Slack bot token" in capsys.readouterr().err


def test_slack_out_of_reach_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/"
    assert check(config_file(tmp_path, url, "#alerts")) == 1
    assert "slack auth.test" in capsys.readouterr().err


def test_a_bad_routing_file_fails_naming_the_field(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, standin.api_url, "alerts")
    assert check(config) == 1
    err = capsys.readouterr().err
    assert "routing.yml: receivers[0].slack_configs[0].channel: 'alerts' is not a Slack" in err
