from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from controlplane.errors import ConfigError
from controlplane.slo import generate_rule_file, load_spec, load_specs
from controlplane.slo.generate import BURN_ALERTS
from tests.conftest import ROOT, require_binary

SPEC = """
version: 1
service: launches
slos:
  - name: launch-success
    objective: 99.5
    by: [region]
    sli:
      error_query: sum by (region) (rate(launches_total{outcome="failed"}[{{.window}}]))
      total_query: sum by (region) (rate(launches_total[{{.window}}]))
    min_events: 100
    alerting:
      name: LaunchBudgetBurn
      annotations: {summary: "burn in {{ $labels.region }}", description: "x"}
"""

# eu: 10/s with 10% failing (20x the 0.5% budget); latam: 1 launch a minute, all failing (a
# quiet region: under the 100 events/hour guard); us: busy and healthy (no failure series at all).
UNIT_TEST = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {series: 'launches_total{region="eu",outcome="ok"}', values: '0+540x120'}
      - {series: 'launches_total{region="eu",outcome="failed"}', values: '0+60x120'}
      - {series: 'launches_total{region="latam",outcome="failed"}', values: '0+1x120'}
      - {series: 'launches_total{region="us",outcome="ok"}', values: '0+600x120'}
    promql_expr_test:
      - expr: slo:sli_error:ratio_rate5m
        eval_time: 90m
        exp_samples:
          - {labels: '%(labels5m)s{region="eu"}', value: 0.1}
          - {labels: '%(labels5m)s{region="latam"}', value: 1}
          - {labels: '%(labels5m)s{region="us"}', value: 0}
    alert_rule_test:
      - eval_time: 90m
        alertname: LaunchBudgetBurn
        exp_alerts:
          - exp_labels: {%(alert)s, region: eu, severity: page, slo_severity: page}
            exp_annotations:
              {summary: burn in eu, description: x, runbook_url: /docs/alerts/SLOBudgetBurn.md}
          - exp_labels: {%(alert)s, region: eu, severity: ticket, slo_severity: ticket}
            exp_annotations:
              {summary: burn in eu, description: x, runbook_url: /docs/alerts/SLOBudgetBurn.md}
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "launches.yaml"
    path.write_text(SPEC)
    return path


def test_burn_factors_match_the_sre_workbook_for_30_days(spec_file: Path) -> None:
    slo = load_spec(spec_file).slos[0]
    assert [b.factor(slo.window) for b in BURN_ALERTS] == [14.4, 6.0, 3.0, 1.0]
    assert slo.error_budget == pytest.approx(0.005)


def test_generated_rules_behave_under_promtool(spec_file: Path, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    (tmp_path / "rules.yml").write_text(generate_rule_file([load_spec(spec_file)]))
    ids = "slo_id: launches-launch-success, slo_service: launches, slo_name: launch-success"
    labels = (
        'slo:sli_error:ratio_rate5m{slo_id="launches-launch-success",slo_name="launch-success",'
        'slo_service="launches",slo_window="5m"'
    )
    text = UNIT_TEST % {"alert": ids, "labels5m": labels.rstrip("{")}
    text = text.replace('"5m"{region=', '"5m",region=')
    (tmp_path / "test.yml").write_text(text)
    result = subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_slos_generate_promtool_clean_rules(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    specs = load_specs(ROOT / "rules" / "slo")
    names = {slo.name for spec in specs for slo in spec.slos}
    assert {"launch-success", "round-success", "wallet-success", "wallet-latency"} <= names
    out = tmp_path / "slo.yml"
    out.write_text(generate_rule_file(specs))
    result = subprocess.run(
        [promtool, "check", "rules", str(out)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(out.read_text())["groups"]
    records = {r.get("record") for g in groups for r in g["rules"]}
    assert "slo:period_error_budget_remaining:ratio" in records
    assert {
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    } <= records


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("objective: 99.5", "objective: 120"), "slo 'launch-success': objective"),
        (("objective: 99.5", "objective: 99.5\n    window: 3x"), "slo 'launch-success': window"),
        (("by: [region]", "by: [region, 9bad]"), "slo 'launch-success': by"),
        (("error_query: sum", "error_query: sum((("), "sli.error_query: invalid PromQL"),
        (("    min_events: 100", "    min_events: 100\n    colour: red"), "colour: unknown field"),
        (("      total_query", "      good_query: up\n      total_query"), "sli: give"),
        (("service: launches", "service: Launches!"), "launches.yaml: service"),
        (("name: LaunchBudgetBurn", "name: 'Launch Burn'"), "alerting.name"),
    ],
)
def test_spec_errors_name_file_slo_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "launches.yaml"
    path.write_text(SPEC.replace(*edit, 1))
    with pytest.raises(ConfigError, match=r"launches\.yaml") as err:
        load_spec(path)
    assert message in str(err.value)


def test_duplicate_slo_ids_across_files_are_refused(spec_file: Path, tmp_path: Path) -> None:
    (tmp_path / "again.yaml").write_text(SPEC)
    with pytest.raises(ConfigError, match="is also in"):
        load_specs(tmp_path)


def test_cli_generate_writes_a_rule_file(spec_file: Path, tmp_path: Path) -> None:
    from controlplane.cli import main

    out = tmp_path / "out.yml"
    assert main(["slo", "generate", str(spec_file), "-o", str(out)]) == 0
    assert "LaunchBudgetBurn" in out.read_text()
    assert main(["slo", "check", str(tmp_path / "missing.yaml")]) == 1
