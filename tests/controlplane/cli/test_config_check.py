"""`controlplane config check`: everything serve would load, every problem in one run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controlplane.cli import main
from tests.conftest import ROOT


def shipped_copy(tmp_path: Path) -> Path:
    for name in ("rules", "runbooks", "config"):
        shutil.copytree(ROOT / name, tmp_path / name)
    config = tmp_path / "controlplane.yml"
    config.write_text(
        f"rules_dir: {tmp_path / 'rules'}\nrunbooks_dir: {tmp_path / 'runbooks'}\n"
        f"routing_file: {tmp_path / 'config' / 'routing.yml'}\n"
    )
    return config


def test_the_shipped_files_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(shipped_copy(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "SUCCESS: " in out and "FAILED" not in out
    assert "isolate-provider (auto" in out


def test_every_broken_part_is_reported_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = shipped_copy(tmp_path)
    rules = tmp_path / "rules" / "providers.yml"
    rules.write_text(rules.read_text().replace("expr: ", "expr: sum(", 1))
    routing = tmp_path / "config" / "routing.yml"
    routing.write_text(routing.read_text().replace("receiver: oncall", "receiver: nobody", 1))
    runbook = tmp_path / "runbooks" / "drain-region.yaml"
    runbook.write_text(runbook.read_text() + "\nbogus: 1\n")
    assert main(["config", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"FAILED: {rules}:" in err
    assert "nobody" in err
    assert f"FAILED: {runbook}: bogus: unknown field" in err


def test_a_bad_configuration_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "controlplane.yml"
    config.write_text("server: {port: nope}\n")
    assert main(["config", "check", "--config", str(config)]) == 1
    assert f"{config}: server.port" in capsys.readouterr().err
