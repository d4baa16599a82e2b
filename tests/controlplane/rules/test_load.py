"""Rule files: what loads, and every refusal naming the file, position, group, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.rules.load import RuleFileError, load_files, parse_text, rule_files
from controlplane.rules.model import AlertingRule, RecordingRule

GOOD = """\
groups:
  - name: api
    interval: 30s
    limit: 10
    rules:
      - record: job:requests:rate1m
        expr: sum by (job) (rate(requests_total[1m]))
        labels: {team: core}
      - alert: ApiDown
        expr: up{job="api"} == 0
        for: 1m
        keep_firing_for: 2m
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.instance }} is down ({{ $value }})'
  - name: empty
"""


def test_a_good_file_loads_into_typed_rules() -> None:
    groups = parse_text(GOOD, "good.yml")
    assert [g.name for g in groups] == ["api", "empty"]
    api = groups[0]
    assert api.file == "good.yml" and api.key == "good.yml;api"
    assert api.interval_ms == 30_000 and api.limit == 10
    record, alert = api.rules
    assert isinstance(record, RecordingRule) and record.name == "job:requests:rate1m"
    assert record.labels == (("team", "core"),)
    assert isinstance(alert, AlertingRule)
    assert (alert.for_ms, alert.keep_firing_for_ms) == (60_000, 120_000)
    assert alert.annotations == (("summary", "{{ $labels.instance }} is down ({{ $value }})"),)
    assert groups[1].rules == () and groups[1].interval_ms == 0


def test_an_empty_file_has_no_groups() -> None:
    assert parse_text("", "empty.yml") == []
    assert parse_text("groups: []\n", "empty.yml") == []


def _rule(body: str) -> str:
    return "groups:\n  - name: g\n    rules:\n" + "".join(
        f"      {line}\n" for line in body.strip("\n").split("\n")
    )


# (file text, the message; each names file, position, group, rule and field where they exist)
CASES = [
    pytest.param(
        _rule("- record: 'x'\n  expr: sum(rate(y[5m])"),
        'bad.yml: 5:15: group "g", rule 1, "x": field \'expr\': could not parse expression: 1:',
        id="expr-does-not-parse",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: up == 0\n  for: 5"),
        'bad.yml: 6:14: group "g", rule 1, "A": field \'for\': not a valid duration string: "5"',
        id="bad-for",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: up == 0\n  keep_firing_for: soon"),
        'bad.yml: 6:26: group "g", rule 1, "A": field \'keep_firing_for\': not a valid duration',
        id="bad-keep-firing-for",
    ),
    pytest.param(
        "groups:\n  - name: g\n    interval: 5x\n    rules: []\n",
        'bad.yml: 3:15: group "g": field \'interval\': not a valid duration string: "5x"',
        id="bad-interval",
    ),
    pytest.param(
        "groups:\n  - name: g\n    limit: many\n",
        "bad.yml: 3:12: group \"g\": field 'limit': must be an integer, not str 'many'",
        id="bad-limit",
    ),
    pytest.param(
        _rule("- record: x\n  expr: y\n  severity: page"),
        'bad.yml: 6:9: group "g", rule 1, "x": field severity not found in rule',
        id="unknown-rule-field",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rule: []\n",
        "bad.yml: 3:5: field rule not found in rule group",
        id="unknown-group-field",
    ),
    pytest.param(
        "group:\n  - name: g\n",
        "bad.yml: 1:1: field group not found in rule file",
        id="unknown-top-level-field",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
        'bad.yml: 4:11: group name "g" is repeated in the same file (line 2)',
        id="duplicate-group",
    ),
    pytest.param(
        "groups:\n  - name: ''\n    rules: []\n",
        "bad.yml: 2:11: field 'name': group name must not be empty",
        id="empty-group-name",
    ),
    pytest.param(
        _rule("- record: x\n  alert: X\n  expr: y"),
        "bad.yml: 4:17: group \"g\", rule 1, \"X\": only one of 'record' and 'alert' must be set",
        id="record-and-alert",
    ),
    pytest.param(
        _rule("- expr: y"),
        "bad.yml: 4:9: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set",
        id="neither-record-nor-alert",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: ''"),
        'bad.yml: 5:15: group "g", rule 1, "A": field \'expr\' must be set in rule',
        id="empty-expr",
    ),
    pytest.param(
        _rule("- record: x\n  expr: y\n  for: 1m"),
        'bad.yml: 4:17: group "g", rule 1, "x": invalid field \'for\' in recording rule',
        id="for-on-recording-rule",
    ),
    pytest.param(
        _rule("- record: x\n  expr: y\n  annotations: {a: b}"),
        'bad.yml: 4:17: group "g", rule 1, "x": invalid field \'annotations\' in recording rule',
        id="annotations-on-recording-rule",
    ),
    pytest.param(
        _rule("- record: 1x\n  expr: y"),
        'bad.yml: 4:17: group "g", rule 1, "1x": field \'record\': invalid recording rule name',
        id="bad-record-name",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: y\n  labels: {bad-name: x}"),
        'bad.yml: 6:18: group "g", rule 1, "A": field \'labels\': invalid label name: bad-name',
        id="bad-label-name",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: y\n  annotations: {1st: x}"),
        'bad.yml: 6:23: group "g", rule 1, "A": field \'annotations\': invalid annotation name',
        id="bad-annotation-name",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: y\n  annotations: {s: '{{ humanise $value }}'}"),
        'bad.yml: 6:23: group "g", rule 1, "A": field \'annotations\': annotation "s": '
        'template: __alert_A:1: function "humanise" not defined',
        id="template-unknown-function",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: y\n  labels: {team: '{{ $team }}'}"),
        'bad.yml: 6:18: group "g", rule 1, "A": field \'labels\': label "team": '
        'template: __alert_A:1: undefined variable "$team"',
        id="template-undefined-variable",
    ),
    pytest.param(
        _rule("- alert: A\n  expr: y\n  labels: [a]"),
        'bad.yml: 6:17: group "g", rule 1, "A": field \'labels\' must be a mapping, not a list',
        id="labels-not-a-mapping",
    ),
    pytest.param(
        _rule("- alert: A\n  alert: B\n  expr: y"),
        'bad.yml: 5:9: group "g", rule 1, "A": rule: key \'alert\' already set at line 4',
        id="duplicate-key",
    ),
    pytest.param("groups: [\n", "bad.yml: yaml: line 2, column 1:", id="not-yaml"),
    pytest.param("- a\n", "bad.yml: 1:1: rule file must be a mapping, not a list", id="a-list"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_refusals_name_file_position_group_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(RuleFileError) as info:
        parse_text(text, "bad.yml")
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems


def test_parse_errors_carry_the_position_in_the_expression() -> None:
    with pytest.raises(RuleFileError) as info:
        parse_text(_rule("- record: x\n  expr: sum(rate(y[5m]) by"), "bad.yml")
    (problem,) = info.value.problems
    assert "could not parse expression: 1:" in problem and "parse error" in problem


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = _rule("- record: x\n  expr: ''\n- alert: A\n  expr: up\n  for: 1y2")
    with pytest.raises(RuleFileError) as info:
        parse_text(text, "bad.yml")
    assert len(info.value.problems) == 2


def test_directories_contribute_rule_files_and_skip_other_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text("groups: []\n")
    (tmp_path / "routing.yml").write_text("route: {receiver: x}\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yml").write_text(GOOD)
    files, skipped = rule_files([tmp_path])
    assert files == [tmp_path / "a.yml", tmp_path / "b.yaml"]
    assert skipped == [tmp_path / "routing.yml"]


def test_load_files_collects_problems_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "one.yml").write_text(_rule("- record: x\n  expr: ''"))
    (tmp_path / "two.yml").write_text(_rule("- record: y\n  expr: ''"))
    with pytest.raises(RuleFileError) as info:
        load_files([tmp_path / "one.yml", tmp_path / "two.yml", tmp_path / "missing.yml"])
    text = str(info.value)
    assert "one.yml: 5:" in text and "two.yml: 5:" in text and "missing.yml: cannot read" in text


def test_shipped_rules_load() -> None:
    root = Path(__file__).resolve().parents[3] / "rules"
    files, _ = rule_files([root])
    groups = load_files(files)
    names = {r.name for g in groups for r in g.rules}
    assert "casino:launch_success:ratio_rate1m" in names
    assert {"ProviderLaunchFailing", "WalletQueueStale", "RegionDown"} <= names
