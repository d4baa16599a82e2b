"""`controlplane routes show|test`, checked against `amtool config routes test` on one tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controlplane.cli import main
from tests.conftest import ROOT, require_binary

TREE = """
route:
  receiver: default
  group_by: [alertname]
  routes:
    - receiver: pager
      matchers: ['severity="page"']
      continue: true
      routes:
        - receiver: pager-eu
          matchers: ['region=~"eu|uk"']
    - receiver: wallet-team
      matchers: ['alertname=~"Wallet.*"']
      group_by: [alertname, region]
    - receiver: tickets
      matchers: ['severity="ticket"', 'team!="none"']
receivers:
  - {name: default, webhook_configs: [{url: "http://127.0.0.1:1/"}]}
  - {name: pager, webhook_configs: [{url: "http://127.0.0.1:1/"}]}
  - {name: pager-eu, webhook_configs: [{url: "http://127.0.0.1:1/"}]}
  - {name: wallet-team, webhook_configs: [{url: "http://127.0.0.1:1/"}]}
  - {name: tickets, webhook_configs: [{url: "http://127.0.0.1:1/"}]}
"""
CASES = [
    ["alertname=WalletDown", "severity=page", "region=eu"],
    ["alertname=WalletDown", "severity=page", "region=latam"],
    ["alertname=ProviderDown", "severity=ticket", "team=core"],
    ["alertname=ProviderDown", "severity=ticket", "team=none"],
    ["alertname=Other"],
    ["severity=page", "region=uk"],
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yml"
    path.write_text(TREE)
    return path


@pytest.mark.parametrize("labels", CASES, ids=[" ".join(c) for c in CASES])
def test_receivers_agree_with_amtool(
    tree: Path, labels: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    amtool = require_binary("amtool")
    theirs = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={tree}", *labels],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    assert main(["routes", "--config", str(tree), "test", *labels]) == 0
    assert capsys.readouterr().out.splitlines()[0] == theirs


def test_verify_receivers_exit_code(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = ["alertname=WalletDown", "severity=page", "region=eu"]
    args = ["routes", "--config", str(tree), "test", *labels]
    assert main([*args, "--verify.receivers=pager-eu,wallet-team"]) == 0
    assert main([*args, "--verify.receivers=pager"]) == 1
    assert (
        "expected receivers ['pager'], got ['pager-eu', 'wallet-team']" in capsys.readouterr().err
    )


def test_tree_shows_group_labels_and_timings(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["routes", "--config", str(tree), "test", "--tree", "alertname=WalletX", "region=eu"])
        == 0
    )
    out = capsys.readouterr().out
    assert 'wallet-team  {alertname=~"Wallet.*"}  group_by=[alertname, region]' in out
    assert "group={'alertname': 'WalletX', 'region': 'eu'}" in out


def test_show_and_errors(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "--config", str(ROOT / "config" / "routing.yml"), "show"]) == 0
    assert '└── oncall  {severity="page"}' in capsys.readouterr().out
    assert main(["routes", "--config", str(tree), "test", "novalue"]) == 2
    assert "'novalue' is not name=value" in capsys.readouterr().err
    assert main(["routes", "--config", str(tree.with_name("missing.yml")), "show"]) == 2
