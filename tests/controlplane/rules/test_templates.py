"""Rule templates against what Prometheus itself expands them to (data/templates.yml), and the
load-time errors Prometheus raises for bad templates."""

from __future__ import annotations

import ast
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.promql.results import InstantSample
from controlplane.rules import templates, tmplfuncs
from controlplane.rules.templates import TemplateContext, TemplateParseError
from tests.conftest import require_binary

DATA = yaml.safe_load((Path(__file__).parent / "data" / "templates.yml").read_text())
CASES = DATA["cases"]


def _labels(case: dict[str, Any]) -> dict[str, str]:
    return {**DATA["default_labels"], "case": case["alert"], **case.get("labels", {})}


def _query(expr: str, t_ms: int) -> list[InstantSample]:
    value = DATA["queries"][expr]
    return [] if value is None else [InstantSample(labels=(), t_ms=t_ms, value=value)]


def _context(case: dict[str, Any]) -> TemplateContext:
    return TemplateContext(
        labels=_labels(case),
        value=float(case["value"]),
        external_labels=DATA["external_labels"],
        external_url=DATA["external_url"],
        t_ms=0,
        query=_query,
    )


@pytest.mark.parametrize("case", CASES, ids=[f"{c['alert']}:{c['template']}" for c in CASES])
def test_expansion_matches_prometheus(case: dict[str, Any]) -> None:
    got = templates.expand_or_error(case["template"], f"__alert_{case['alert']}", _context(case))
    assert got == case["want"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nope $value }}", 'template: __alert_A:1: function "nope" not defined'),
        ("{{ $nope }}", 'template: __alert_A:1: undefined variable "$nope"'),
        ("{{ $value ", "template: __alert_A:1: unclosed action"),
        ("{{ if true }}x", "template: __alert_A:1: unexpected EOF"),
        ("{{ end }}", "template: __alert_A:1: unexpected {{end}}"),
        ("{{ else }}", "template: __alert_A:1: unexpected {{else}}"),
        ("{{ }}", "template: __alert_A:1: missing value for command"),
        ("{{ break }}", "template: __alert_A:1: {{break}} outside {{range}}"),
        ("a\n{{ humanise $value }}", 'template: __alert_A:2: function "humanise" not defined'),
        ('{{ "abc }}', "template: __alert_A:1: unterminated quoted string"),
        ("{{ $value | 1 }}", "template: __alert_A:1: non executable command in pipeline stage 2"),
    ],
)
def test_parse_errors_name_the_template_and_line(text: str, message: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        templates.check(text, "__alert_A")
    assert str(info.value) == message


def test_valid_templates_pass_the_load_check() -> None:
    for case in CASES:
        templates.check(case["template"], f"__alert_{case['alert']}")


def _promtool_files(tmp_path: Path) -> Path:
    rules: list[dict[str, Any]] = []
    series, tests = [], []
    for case in CASES:
        name = case["alert"]
        rules.append(
            {
                "alert": name,
                "expr": f'tmpl_case{{case="{name}"}}',
                "annotations": {"out": case["template"]},
            }
        )
        labels = {k: v for k, v in _labels(case).items() if k != "__name__"}
        body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        series.append({"series": f"tmpl_case{{{body}}}", "values": str(case["value"])})
        tests.append({"eval_time": "0s", "alertname": name, "exp_alerts": []})
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": rules}]}))
    group = {
        "interval": "1m",
        "external_labels": DATA["external_labels"],
        "external_url": DATA["external_url"],
        "input_series": series,
        "alert_rule_test": tests,
    }
    unit = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [group]}
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(unit))
    return path


def test_table_still_matches_real_promtool(tmp_path: Path) -> None:
    """Every expected value above is what promtool prints for the alert's annotation."""
    promtool = require_binary("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", str(_promtool_files(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    pattern = re.compile(
        r'alertname: (T\d+), time: 0s, \n.*?got:(\[\]|\[.*?Annotations:\{out="((?:[^"\\]|\\.)*)"\})',
        re.S,
    )
    got = {
        m.group(1): None if m.group(2) == "[]" else ast.literal_eval(f'"{m.group(3)}"')
        for m in pattern.finditer(done.stderr)
    }
    assert got == {c["alert"]: c["want"] for c in CASES}


@pytest.mark.parametrize(
    ("func", "value", "want"),
    [
        (tmplfuncs.humanize, 1234567, "1.235M"),
        (tmplfuncs.humanize_duration, 90, "1m 30s"),
        (tmplfuncs.humanize1024, 1024, "1ki"),
        (tmplfuncs.humanize_percentage, 0.5, "50%"),
        (tmplfuncs.humanize, math.inf, "+Inf"),
    ],
)
def test_humanize_functions_directly(func: Any, value: float, want: str) -> None:
    assert func(value) == want
