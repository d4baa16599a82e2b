"""`controlplane rules test` against `promtool test rules`, and `rules check` against
`promtool check rules`: on the shipped rules, on deliberately failing copies, and on fixtures
whose failure reports must be byte-identical."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from controlplane.cli import rules as rulescli
from controlplane.model.series import is_stale_marker
from controlplane.rules.load import rule_files
from controlplane.rules.notation import expand_values, parse_metric
from controlplane.rules.unittest import run_files
from tests.conftest import ROOT, require_binary

SHIPPED_RULES = ROOT / "rules"
SHIPPED_TESTS = sorted((SHIPPED_RULES / "tests").glob("*.yml"))
DATA = Path(__file__).parent / "data" / "unit"


def shipped_rule_files() -> list[Path]:
    return rule_files([SHIPPED_RULES])[0]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def ours(*files: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_files([str(f) for f in files], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_there_are_shipped_unit_tests_for_every_shipped_rule_file() -> None:
    rule_files = {p.name for p in shipped_rule_files()}
    tested = set()
    for path in SHIPPED_TESTS:
        tested |= {Path(f).name for f in yaml.safe_load(path.read_text())["rule_files"]}
    assert rule_files and rule_files <= tested


@pytest.mark.parametrize("path", SHIPPED_TESTS, ids=lambda p: p.name)
def test_shipped_unit_tests_pass_under_both_tools(path: Path) -> None:
    theirs = promtool("test", "rules", str(path))
    assert theirs.returncode == 0, theirs.stderr
    code, out, err = ours(path)
    assert code == 0, err
    assert out == theirs.stdout


def _broken_copy(path: Path, tmp_path: Path) -> Path:
    """The shipped test with its rule files made absolute and one expected label changed."""
    doc = yaml.safe_load(path.read_text())
    doc["rule_files"] = [str((path.parent / f).resolve()) for f in doc["rule_files"]]
    for group in doc["tests"]:
        for case in group.get("alert_rule_test", []):
            for alert in case.get("exp_alerts", []):
                alert["exp_labels"]["severity"] = "sms"
    broken = tmp_path / f"broken-{path.name}"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    return broken


@pytest.mark.parametrize("path", SHIPPED_TESTS, ids=lambda p: p.name)
def test_a_broken_copy_fails_under_both_tools_with_the_same_report(
    path: Path, tmp_path: Path
) -> None:
    broken = _broken_copy(path, tmp_path)
    theirs = promtool("test", "rules", str(broken))
    code, out, err = ours(broken)
    assert theirs.returncode == 1 and code == 1
    assert 'severity="sms"' in err
    assert (out, err) == (theirs.stdout, theirs.stderr)


@pytest.mark.parametrize("name", ["lifecycle_test.yml", "rule_error_test.yml"])
def test_failure_reports_are_byte_identical_to_promtool(name: str) -> None:
    theirs = promtool("test", "rules", str(DATA / name))
    code, out, err = ours(DATA / name)
    assert (code, out, err) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert code == 1


def test_rules_check_agrees_with_promtool_on_shipped_and_broken_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(p) for p in shipped_rule_files()]
    assert promtool("check", "rules", *files).returncode == 0
    parser = argparse.ArgumentParser()
    rulescli.configure(parser)
    assert rulescli.run(parser.parse_args(["check", str(SHIPPED_RULES)])) == 0
    assert "SUCCESS" in capsys.readouterr().out

    broken = tmp_path / "broken.yml"
    shutil.copy(SHIPPED_RULES / "providers.yml", broken)
    broken.write_text(broken.read_text().replace("  for: 2s", "  for: 2 seconds", 1))
    assert promtool("check", "rules", str(broken)).returncode == 1
    assert rulescli.run(parser.parse_args(["check", str(broken)])) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.err and "field 'for'" in captured.err


def test_rules_test_verb_runs_files(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    rulescli.configure(parser)
    assert rulescli.run(parser.parse_args(["test", str(DATA / "rule_error_test.yml")])) == 1
    assert "rule: clash, time: 0s" in capsys.readouterr().err


def test_unknown_fields_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text("rule_files: []\ntests:\n  - interval: 1m\n    input_serie: []\n")
    code, _, err = ours(path)
    assert code == 1 and "field input_serie not found" in err


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1 2 3", [1, 2, 3]),
        ("1+1x3", [1, 2, 3, 4]),
        ("10-2x2", [10, 8, 6]),
        ("5x2", [5, 5, 5]),
        ("_ 1 _x2 2", [None, 1, None, None, 2]),
        ("0x3", [0, 0, 0, 0]),
        ("-1+0.5x2", [-1, -0.5, 0]),
        ("1e3 Inf -Inf", [1000, float("inf"), float("-inf")]),
    ],
)
def test_series_notation(text: str, want: list[float | None]) -> None:
    assert expand_values(text) == want


def test_series_notation_special_values() -> None:
    nan, stale = expand_values("NaN stale")
    assert nan is not None and nan != nan and not is_stale_marker(nan)
    assert stale is not None and is_stale_marker(stale)


def test_series_descriptions() -> None:
    assert parse_metric('up{job="a"}') == (("__name__", "up"), ("job", "a"))
    assert parse_metric('{__name__="up"}') == (("__name__", "up"),)
    assert parse_metric("") == () == parse_metric("{}")


def test_the_rules_verb_runs_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from controlplane import cli

    monkeypatch.setitem(cli.VERBS, "rules", "controlplane.cli.rules")
    assert cli.main(["rules", "check", str(SHIPPED_RULES)]) == 0
    assert cli.main(["rules", "test", *map(str, SHIPPED_TESTS)]) == 0
    out = capsys.readouterr().out
    rule_files = sorted(SHIPPED_RULES.glob("*.yml"))
    assert out.count("SUCCESS") == len(rule_files) + len(SHIPPED_TESTS)
