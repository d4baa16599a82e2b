"""/api/v1/rules and /api/v1/alerts in Prometheus's JSON shapes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.api.rules import create_blueprint, rfc3339
from controlplane.rules.load import parse_text
from controlplane.rules.manager import RuleManager
from tests.controlplane.rules.fakes import ListSink, ScriptedQuerier

RULES = """
groups:
  - name: casino
    interval: 10s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: sre}
      - alert: InstanceDown
        expr: up == 0
        for: 1m
        keep_firing_for: 30s
        labels: {severity: page}
        annotations: {summary: '{{ $labels.instance }} is down'}
      - record: broken
        expr: broken_metric
"""


@pytest.fixture
def client() -> FlaskClient:
    querier = ScriptedQuerier(
        {
            "sum by (job) (up)": lambda t: [({"job": "api"}, 1.0)],
            "up == 0": lambda t: [({"__name__": "up", "instance": "a", "job": "api"}, 0.0)],
        }
    )
    manager = RuleManager(querier=querier, sink=ListSink())
    manager.update(parse_text(RULES, "rules/casino.yml"))
    manager.evaluate_group("rules/casino.yml;casino", 1_700_000_000_000)
    manager.evaluate_group("rules/casino.yml;casino", 1_700_000_060_500)
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(manager))
    return app.test_client()


def _get(client: FlaskClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "success"
    return body["data"]


def test_rules_shape(client: FlaskClient) -> None:
    (group,) = _get(client, "/api/v1/rules")["groups"]
    assert group["name"] == "casino" and group["file"] == "rules/casino.yml"
    assert group["interval"] == 10 and group["limit"] == 0
    assert group["lastEvaluation"] == "2023-11-14T22:14:20.5Z"
    assert isinstance(group["evaluationTime"], float)
    record, alert, broken = group["rules"]
    assert record == {
        "name": "job:up:sum",
        "query": "sum by (job) (up)",
        "labels": {"team": "sre"},
        "health": "ok",
        "evaluationTime": record["evaluationTime"],
        "lastEvaluation": "2023-11-14T22:14:20.5Z",
        "type": "recording",
    }
    assert alert == {
        "state": "firing",
        "name": "InstanceDown",
        "query": "up == 0",
        "duration": 60,
        "keepFiringFor": 30,
        "labels": {"severity": "page"},
        "annotations": {"summary": "{{ $labels.instance }} is down"},
        "alerts": [
            {
                "labels": {
                    "alertname": "InstanceDown",
                    "instance": "a",
                    "job": "api",
                    "severity": "page",
                },
                "annotations": {"summary": "a is down"},
                "state": "firing",
                "activeAt": "2023-11-14T22:13:20Z",
                "value": "0e+00",
            }
        ],
        "health": "ok",
        "evaluationTime": alert["evaluationTime"],
        "lastEvaluation": "2023-11-14T22:14:20.5Z",
        "type": "alerting",
    }
    assert broken["health"] == "err" and "broken_metric" in broken["lastError"]


def test_rules_filters(client: FlaskClient) -> None:
    alerting = _get(client, "/api/v1/rules?type=alert")["groups"][0]["rules"]
    assert [r["name"] for r in alerting] == ["InstanceDown"]
    recording = _get(client, "/api/v1/rules?type=record")["groups"][0]["rules"]
    assert [r["name"] for r in recording] == ["job:up:sum", "broken"]
    named = _get(client, "/api/v1/rules?rule_name[]=broken")["groups"][0]["rules"]
    assert [r["name"] for r in named] == ["broken"]
    assert _get(client, "/api/v1/rules?rule_group[]=other")["groups"] == []
    response = client.get("/api/v1/rules?type=silly")
    assert response.status_code == 400
    assert response.get_json() == {
        "status": "error",
        "errorType": "bad_data",
        "error": "not supported value 'silly'",
    }


def test_alerts_shape(client: FlaskClient) -> None:
    alerts = _get(client, "/api/v1/alerts")["alerts"]
    assert alerts == [
        {
            "labels": {
                "alertname": "InstanceDown",
                "instance": "a",
                "job": "api",
                "severity": "page",
            },
            "annotations": {"summary": "a is down"},
            "state": "firing",
            "activeAt": "2023-11-14T22:13:20Z",
            "value": "0e+00",
        }
    ]


def test_times_before_any_evaluation_are_go_zero_time() -> None:
    assert rfc3339(None) == "0001-01-01T00:00:00Z"
    assert rfc3339(1_500) == "1970-01-01T00:00:01.5Z"
