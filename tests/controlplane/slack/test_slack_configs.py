"""`slack_configs` in routing.yml: Alertmanager's field names, errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import ConfigError
from controlplane.notify.receivers import SlackConfig
from controlplane.notify.routing import load_routing
from tests.conftest import ROOT

HEAD = "route: {receiver: oncall}\nreceivers:\n  - name: oncall\n    slack_configs:\n"


def routing_file(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "routing.yml"
    path.write_text(HEAD + entries)
    return path


def test_a_slack_receiver_with_every_field(tmp_path: Path) -> None:
    path = routing_file(
        tmp_path,
        "      - channel: '#alerts'\n"
        "        send_resolved: false\n"
        "        title: Casino pages\n"
        "        text: Look at *#ops*\n"
        "        mention: '<!here> <@U024BE7LH>'\n"
        "        link_names: true\n"
        "        max_alerts: 5\n"
        "      - channel: C0123ABCD\n",
    )
    first, second = load_routing(path).receivers["oncall"].integrations
    assert first == SlackConfig(
        channel="#alerts",
        send_resolved=False,
        title="Casino pages",
        text="Look at *#ops*",
        mention="<!here> <@U024BE7LH>",
        link_names=True,
        max_alerts=5,
    )
    # resolving edits the message, so it is on by default (Alertmanager's default is off)
    assert second == SlackConfig(channel="C0123ABCD") and second.send_resolved


@pytest.mark.parametrize(
    ("entry", "where", "why"),
    [
        ("{}", "slack_configs[0].channel", "None is not a Slack channel"),
        ("{channel: alerts}", "slack_configs[0].channel", "'alerts' is not a Slack channel"),
        ("{channel: '#a', api_url: 'http://x'}", "slack_configs[0].api_url", "unknown"),
        ("{channel: '#a', title: '{{ .Status }}'}", "slack_configs[0].title", "templates"),
        ("{channel: '#a', text: [1]}", "slack_configs[0].text", "is not a string"),
        ("{channel: '#a', mention: '@here'}", "slack_configs[0].mention", "is not <!here>"),
        ("{channel: '#a', max_alerts: 0}", "slack_configs[0].max_alerts", "from 1 to 40"),
        ("{channel: '#a', send_resolved: 'yes'}", "slack_configs[0].send_resolved", "boolean"),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, entry: str, where: str, why: str
) -> None:
    path = routing_file(tmp_path, f"      - {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: receivers[0].{where}: "), message
    assert why in message


def test_the_shipped_routing_shows_how_to_post_to_slack() -> None:
    text = (ROOT / "config" / "routing.yml").read_text()
    assert "slack_configs:" in text
    load_routing(ROOT / "config" / "routing.yml")
