"""YAML read as Prometheus and Alertmanager read it: a string field keeps the scalar's text,
and a key given twice is an error naming both lines, in every file the control plane reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.config import load_config
from controlplane.errors import ConfigError
from controlplane.model import yamltext
from controlplane.model.series import labels_from
from controlplane.notify.routing import load_routing
from controlplane.rules.unittest_file import parse_unit_test_file
from controlplane.runbooks.load import load_runbook
from controlplane.slo.spec import load_spec
from tests.conftest import ROOT


def test_strings_keep_their_text_and_typed_fields_their_type() -> None:
    doc = yamltext.loads("m: {code: 010, flag: yes, hex: 0x10, on: true, n: ~, f: 1.50}\n", "x")
    assert yamltext.texts(doc["m"]) == {
        "code": "010", "flag": "yes", "hex": "0x10", "True": "true", "n": "", "f": "1.50"
    }  # fmt: skip
    assert doc["m"]["code"] == 8 and doc["m"]["flag"] is True  # typed where a type is asked


def test_rule_test_values_keep_the_series_notation(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text(
        "rule_files: []\ntests:\n  - interval: 1m\n    input_series:\n"
        "      - {series: 'up{job=\"a\"}', values: 0x10}\n"
        "    alert_rule_test:\n      - eval_time: 1m\n        alertname: A\n"
        "        exp_alerts: [{exp_labels: {code: 010, flag: yes}}]\n"
    )
    group = parse_unit_test_file(path).tests[0]
    assert group.input_series[0].values == "0x10"  # promtool: "0, ten times"
    assert group.alert_tests[0].exp_alerts[0].labels == {"code": "010", "flag": "yes"}


def test_routing_match_keeps_the_text(tmp_path: Path) -> None:
    path = tmp_path / "routing.yml"
    path.write_text(
        "route:\n  receiver: a\n  routes:\n    - {receiver: b, match: {code: 010, ok: yes}}\n"
        "receivers: [{name: a}, {name: b}]\n"
    )
    routing = load_routing(path)
    hit = routing.route.match(labels_from({"code": "010", "ok": "yes"}))
    assert [r.options.receiver for r in hit] == ["b"]
    assert [r.options.receiver for r in routing.route.match(labels_from({"code": "8"}))] == ["a"]


def test_runbook_trigger_and_slo_labels_keep_the_text(tmp_path: Path) -> None:
    runbook = tmp_path / "rb.yaml"
    text = (ROOT / "runbooks" / "isolate-provider.yaml").read_text()
    runbook.write_text(text.replace("trigger:", "trigger:\n  matchers: {code: 010}\n", 1)
                       if "matchers" not in text.split("trigger:")[1].split("\n")[0] else text)  # fmt: skip
    assert load_runbook(runbook).trigger is not None
    spec = tmp_path / "slo.yaml"
    spec.write_text((ROOT / "rules" / "slo" / "launches.yaml").read_text())
    assert load_spec(spec).service


def _config(path: Path, body: str) -> Any:
    path.write_text(body)
    return load_config(path, env={})


LOADERS: list[tuple[str, str, Callable[[Path], Any]]] = [
    ("config.yml", "server:\n  port: 1\n  port: 2\n", lambda p: load_config(p, env={})),
    ("routing.yml", "route: {receiver: a}\nreceivers: [{name: a}]\nroute: {receiver: a}\n",
     load_routing),
    ("rb.yaml", "name: a\nname: b\n", load_runbook),
    ("slo.yaml", "service: a\nservice: b\n", load_spec),
    ("t.yml", "tests: []\ntests: []\n", parse_unit_test_file),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "load"), LOADERS, ids=[x[0] for x in LOADERS])
def test_a_repeated_key_names_both_lines(
    tmp_path: Path, name: str, body: str, load: Callable[[Path], Any]
) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(
        ConfigError, match=r"line [23]: duplicate key .* \(first given at line [12]\)"
    ):
        load(path)
