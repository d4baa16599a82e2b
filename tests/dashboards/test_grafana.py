"""dashboards/grafana/controlplane.json: the shape Grafana imports, every query through the
Prometheus datasource variable, and every panel's PromQL parsed by our parser, answered by the
embedded engine over series labelled as the control plane and the aggregator label them, and
accepted by promtool (when it is installed)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from controlplane.model.series import Series, labels_from
from controlplane.promql import Engine, MemorySource
from controlplane.promql.parse import parse_query
from controlplane.slo import generate_rule_file, load_specs
from tests.conftest import ROOT

DASHBOARD = ROOT / "dashboards" / "grafana" / "controlplane.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# Grafana's variables as Grafana fills them in: all regions and SLOs, a 6 h range, a 15 s scrape
FILLED = {"$region": ".*", "$slo": ".*", "$__rate_interval": "1m", "$__range": "6h"}
NOW_MS = 1_772_452_800_000
SLO = {"slo_id": "launches-launch-success", "slo_service": "launches", "slo_name": "launch-success"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{p['title']} {t['refId']}", t)
        for p in dashboard()["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]


def filled(expr: str) -> str:
    for name, value in FILLED.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def test_the_dashboard_has_the_shape_grafana_imports() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("region", "slo"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["multi"] and variables[name]["includeAll"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"][
            "w"
        ] <= 24
        if p["type"] == "row":
            continue
        assert p["title"] and p["datasource"] == DATASOURCE and p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        assert all(t["datasource"] == DATASOURCE and t["expr"].strip() for t in p["targets"])


def test_the_main_panels_are_there() -> None:
    titles = {p["title"] for p in dashboard()["panels"]}
    wanted = {
        "Error budget remaining",
        "Burn rate",
        "Availability vs objective",
        "Firing alerts",
        "Runbook executions by state",
        "Provider p99 latency",
        "Provider error ratio",
        "Wallet retry queue",
        "Region weights",
    }
    assert wanted <= titles


TIMES = np.arange(NOW_MS - 7 * 3600_000, NOW_MS + 1, 15_000, dtype=np.int64)  # a 15 s scrape
RISING = np.arange(len(TIMES), dtype=np.float64)


def series(name: str, values: np.ndarray, **labels: str) -> Series:
    return Series(labels=labels_from({"__name__": name, **labels}), timestamps=TIMES, values=values)


def slo_series() -> list[Series]:
    """As the generated SLO rules record them."""
    flat = np.full(len(TIMES), 0.001)
    out = [
        series(f"slo:sli_error:ratio_rate{w}", flat, **SLO, region=r, slo_window=w)
        for w in ("5m", "1h", "6h", "1d")
        for r in ("eu", "latam")
    ]
    out += [
        series(n, flat * 500, **SLO, region="eu")
        for n in ("slo:current_burn_rate:ratio", "slo:period_error_budget_remaining:ratio")
    ]
    out.append(series("slo:error_budget:ratio", flat * 5, **SLO))
    out.append(series("slo:objective:ratio", 1 - flat * 5, **SLO))
    return out


def fleet_series() -> list[Series]:
    """As the rule evaluator, the control plane's /metrics and the aggregator label them."""
    alert = {"alertname": "ProviderFailing", "alertstate": "firing", "severity": "page"}
    out = [series("ALERTS", np.ones(len(TIMES)), **alert, region="eu")]
    out += [
        series("controlplane_runbook_executions", RISING, runbook="isolate-provider", state=s)
        for s in ("succeeded", "running")
    ]
    labels = {"region": "eu", "provider": "netent", "operation": "launch"}
    out += [
        series("casino_provider_requests_total", RISING * k, **labels, outcome=o)
        for k, o in ((100, "ok"), (1, "error"), (2, "rejected"))
    ]
    out += [
        series("casino_provider_request_duration_seconds_bucket", RISING * k, **labels, le=le)
        for k, le in ((10, "0.1"), (40, "0.5"), (50, "+Inf"))
    ]
    gauges = ("casino_wallet_queue_depth", "casino_wallet_queue_oldest_age_seconds")
    return out + [
        series(name, np.ones(len(TIMES)), region="eu") for name in (*gauges, "casino_region_weight")
    ]


@functools.cache
def embedded() -> Engine:
    return Engine(MemorySource(slo_series() + fleet_series()))


@pytest.mark.parametrize(("name", "target"), targets(), ids=[n for n, _ in targets()])
def test_every_query_parses_and_answers_from_the_embedded_engine(
    name: str, target: dict[str, Any]
) -> None:
    expr = filled(target["expr"])
    parse_query(expr)
    engine = embedded()
    if target.get("instant"):
        answer = engine.instant(expr, NOW_MS)
        assert answer.vector, name
    else:
        answer = engine.range(expr, NOW_MS - 6 * 3600_000, NOW_MS, 60_000)
        assert answer.matrix, name


def test_every_metric_read_is_one_somebody_exports() -> None:
    sources = "\n".join(
        p.read_text()
        for folder in ("aggregator", "controlplane")
        for p in (ROOT / folder).rglob("*.py")
    )
    sources += generate_rule_file(load_specs(ROOT / "rules" / "slo"))
    queries = [t["expr"] for _n, t in targets()]
    queries += [v["definition"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    names = set(re.findall(r"\b((?:casino|controlplane|slo)[a-z_:0-9]*)", " ".join(queries)))
    for name in names | {"ALERTS"}:
        base = re.sub(r"_(bucket|total|count|sum)$", "", name)
        assert base in sources, name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_every_query(tmp_path: Path) -> None:
    rules = [
        {"record": f"grafana:panel_{i}", "expr": filled(t["expr"])}
        for i, (_n, t) in enumerate(targets())
    ]
    path = tmp_path / "grafana.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
