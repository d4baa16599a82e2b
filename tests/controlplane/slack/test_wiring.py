"""The control plane's own app: /slack/* mounted by the pipeline, and a signed slash command
acting on the running control plane (without a signing secret: test_signing.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from controlplane.app import EXTENSION, create_app
from controlplane.config import Config, SlackConfig
from controlplane.db import create_engine
from controlplane.migrations import upgrade
from tests.conftest import ROOT
from tests.controlplane.slack.conftest import SECRET, SlackSide
from tests.controlplane.slack.slackreq import FORM, command_body, signature

ACCESS = """
anonymous_read: true
users:
  - {name: oncall, role: operator, slack_id: UONCALL}
  - {name: vera, role: viewer, slack_id: UVERA}
"""


def config_in(tmp_path: Path, slack: SlackConfig) -> Config:
    for name in ("rules", "runbooks", "config"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "config" / "access.yml").write_text(ACCESS)
    return Config(
        database_url=f"sqlite:///{tmp_path / 'cp.db'}",
        rules_dir=tmp_path / "rules",
        runbooks_dir=tmp_path / "runbooks",
        routing_file=tmp_path / "config" / "routing.yml",
        access_file=tmp_path / "config" / "access.yml",
        slack=slack,
    )


def test_a_slash_command_pauses_the_running_control_plane(
    tmp_path: Path, slack_side: SlackSide
) -> None:
    slack = SlackConfig(api_url=f"{slack_side.url}/api/", signing_secret=SECRET)
    config = config_in(tmp_path, slack)
    engine = create_engine(config.database_url)
    upgrade(engine)  # what start() does first; the rest (rules, scraping) is not needed here
    engine.dispose()
    app = create_app(config, registry=CollectorRegistry())
    plane = app.extensions[EXTENSION]
    try:
        client = app.test_client()
        for user in ("UVERA", "UONCALL"):
            body = command_body(
                user=user, text="pause from slack", response_url=f"{slack_side.url}/hooks/1"
            )
            now = int(time.time())
            headers = {
                "X-Slack-Request-Timestamp": str(now),
                "X-Slack-Signature": signature(body, now),
            }
            answer = client.post("/slack/commands", data=body, headers=headers, content_type=FORM)
            assert answer.status_code == 200
            _wait_for_answers(slack_side, 1 if user == "UVERA" else 2)
        automation = client.get("/api/v1/automation").get_json()
        assert (automation["paused"], automation["changed_by"]) == (True, "oncall")
        assert "vera (viewer) may not pause" in slack_side.ephemerals()[0]
    finally:
        plane.stop()


def _wait_for_answers(side: SlackSide, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(side.posts) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(side.posts) >= count
