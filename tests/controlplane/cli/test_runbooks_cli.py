from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.audit import AuditLog
from controlplane.cli import main
from controlplane.db import create_engine
from controlplane.migrations import upgrade
from tests.controlplane.runbooks.test_load import DESIGN_EXAMPLE

RULES = """
groups:
  - name: g
    rules:
      - alert: ProviderLaunchFailing
        expr: vector(1)
"""


def test_runbooks_check_names_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(DESIGN_EXAMPLE)
    assert main(["runbooks", "check", str(good), "--rules", str(tmp_path / "rules.yml")]) == 0
    bad.write_text(DESIGN_EXAMPLE.replace("ProviderLaunchFailing", "Nope"))
    assert (
        main(["runbooks", "check", str(good), str(bad), "--rules", str(tmp_path / "rules.yml")])
        == 1
    )
    err = capsys.readouterr().err
    assert f"{bad}: trigger.alert: no rule defines alert 'Nope'" in err


def test_audit_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/cp.db"
    engine = create_engine(url)
    upgrade(engine)
    log = AuditLog(engine)
    for i in range(3):
        log.append("step", {"i": i})
    assert main(["audit", "verify", "--url", url]) == 0
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_no_update")
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    engine.dispose()
    assert main(["audit", "verify", "--url", url]) == 1
    assert "row 2: content does not match its hash" in capsys.readouterr().out


def test_shipped_runbooks_check_against_the_shipped_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.conftest import ROOT

    assert main(["runbooks", "check", str(ROOT / "runbooks"), "--rules", str(ROOT / "rules")]) == 0
    out = capsys.readouterr().out
    for name in ("isolate-provider", "drain-region", "replay-wallet-queue"):
        assert f"SUCCESS: {name}" in out


BAD_EVERYWHERE = """
name: bad
mode: sometimes
extra: 1
steps:
  - action: provider.explode
  - action: provider.isolate
    with: {region: eu}
verify: {expr: "up ==", within: 1m}
approvers: 3
"""


def test_runbooks_check_reports_every_error_of_a_file_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repository: no rules/ to read
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_EVERYWHERE)
    assert main(["runbooks", "check", str(bad), str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    for field in ("extra", "mode", "steps[0].action", "steps[1].with", "verify.expr", "approvers"):
        assert f"FAILED: {bad}: {field}: " in err, err
    assert f"'{tmp_path / 'missing.yaml'}': no such file or directory" in err
    assert "trigger alert names are not checked" in err


def test_runbooks_check_names_a_missing_rules_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(DESIGN_EXAMPLE)
    assert main(["runbooks", "check", str(good), "--rules", str(tmp_path / "nope")]) == 2
    assert f"'{tmp_path / 'nope'}': no such rule file or directory" in capsys.readouterr().err
