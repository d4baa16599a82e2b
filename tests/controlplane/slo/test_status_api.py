"""`/api/v1/slos`: the generated SLO rules evaluated over 90 minutes of recorded launches (the
live rule evaluator on a real store and engine), then read back through the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.api.slo import create_blueprint
from controlplane.errors import QueryError
from controlplane.promql.engine import Engine
from controlplane.promql.results import QueryResult
from controlplane.rules.alerting import Alert
from controlplane.rules.group import GroupEvaluator
from controlplane.rules.growsource import GrowingSource
from controlplane.rules.load import parse_text
from controlplane.rules.notation import series_from
from controlplane.slo import generate_rule_file, load_spec
from tests.controlplane.slo.test_generate import SPEC

MINUTE = 60_000
END_MS = 90 * MINUTE

# eu: 10/s with 10% failing (20x the 0.5% budget); latam: 1 launch a minute, all failing (under
# the 100 events/hour guard); us: busy and healthy (no failure series at all).
INPUT = {
    'launches_total{region="eu",outcome="ok"}': "0+540x120",
    'launches_total{region="eu",outcome="failed"}': "0+60x120",
    'launches_total{region="latam",outcome="failed"}': "0+1x120",
    'launches_total{region="us",outcome="ok"}': "0+600x120",
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Engine, list[Alert]]:
    path = tmp_path_factory.mktemp("slo") / "launches.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    store = GrowingSource(series_from(s, v, MINUTE) for s, v in INPUT.items())
    engine = Engine(store)
    evaluators = [
        GroupEvaluator(g, querier=engine, sink=store, default_interval_ms=MINUTE)
        for g in parse_text(generate_rule_file([spec]), "generated")
    ]
    for t_ms in range(0, END_MS + 1, MINUTE):
        for ev in evaluators:
            ev.evaluate(t_ms)
    alerts = [a for ev in evaluators for a in ev.alerts()]
    return spec, engine, alerts


@pytest.fixture
def client(evaluated: tuple[Any, Engine, list[Alert]]) -> Iterator[FlaskClient]:
    spec, engine, alerts = evaluated
    app = Flask("test")
    app.register_blueprint(
        create_blueprint(spec.slos, engine, lambda: alerts, clock=lambda: END_MS / 1000)
    )
    with app.test_client() as c:
        yield c


def test_each_region_reports_its_budget_burn_and_alerts(client: FlaskClient) -> None:
    body = client.get("/api/v1/slos").get_json()
    assert body["time_ms"] == END_MS
    (slo,) = body["slos"]
    assert slo["id"] == "launches-launch-success"
    assert (slo["objective_percent"], slo["window"], slo["by"]) == (99.5, "30d", ["region"])
    assert slo["alert"] == "LaunchBudgetBurn"
    regions = {i["labels"]["region"]: i for i in slo["instances"]}
    assert set(regions) == {"eu", "latam", "us"}

    eu, us, latam = regions["eu"], regions["us"], regions["latam"]
    assert eu["error_ratio"]["5m"] == pytest.approx(0.1)
    assert eu["burn_rate"]["current"] == pytest.approx(20)  # 10% errors / 0.5% budget
    assert list(eu["error_ratio"])[:3] == ["5m", "30m", "1h"]  # windows in their order
    # the period's ratio averages the data there is (Sloth's semantics): 90 minutes at 10%
    # errors have spent the 30-day budget 20 times over
    assert eu["burn_rate"]["period"] == pytest.approx(20)
    assert eu["error_budget_remaining"] == pytest.approx(-19)
    assert eu["availability_percent"] == pytest.approx(90)
    assert eu["events_per_second"] == pytest.approx(10)
    assert {(a["severity"], a["state"]) for a in eu["alerts"]} == {
        ("page", "firing"),
        ("ticket", "firing"),
    }
    assert us["error_ratio"]["5m"] == 0
    assert us["availability_percent"] == pytest.approx(100)
    assert us["error_budget_remaining"] == pytest.approx(1)
    assert us["alerts"] == []
    # latam fails every launch but is under the traffic guard: measured, never paged
    assert latam["error_ratio"]["5m"] == pytest.approx(1)
    assert latam["alerts"] == []


def test_one_slo_by_id_and_filters(client: FlaskClient) -> None:
    one = client.get("/api/v1/slos/launches-launch-success").get_json()
    assert one["id"] == "launches-launch-success" and len(one["instances"]) == 3
    assert client.get("/api/v1/slos?service=wallet").get_json()["slos"] == []
    before = client.get("/api/v1/slos?time=1970-01-01T00:00:00Z").get_json()
    assert before["time_ms"] == 0
    assert before["slos"][0]["instances"] == []  # nothing recorded yet: nothing invented


def test_bad_requests_get_json_errors(client: FlaskClient) -> None:
    missing = client.get("/api/v1/slos/nope")
    assert missing.status_code == 404
    assert missing.get_json() == {
        "error": "not_found",
        "message": "no SLO 'nope'; known: launches-launch-success",
    }
    bad = client.get("/api/v1/slos?time=yesterday")
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_request"
    assert "time" in bad.get_json()["message"]


def test_a_querier_that_fails_gives_503(evaluated: tuple[Any, Engine, list[Alert]]) -> None:
    spec, _engine, _alerts = evaluated

    class Down:
        def instant(self, expr: str, time_ms: int) -> QueryResult:
            raise QueryError("remote Prometheus refused the connection")

        def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
            raise AssertionError("not used")

    app = Flask("test")
    app.register_blueprint(create_blueprint(spec.slos, Down(), list))
    answer = app.test_client().get("/api/v1/slos")
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "unavailable"
    assert "refused the connection" in answer.get_json()["message"]


def test_the_shipped_slos_are_served_by_controlplane_serve(tmp_path: Path) -> None:
    from controlplane.app import create_app
    from controlplane.config import load_config

    root = Path(__file__).resolve().parents[3]
    config = load_config(
        env={
            "CONTROLPLANE_RULES_DIR": str(root / "rules"),
            "CONTROLPLANE_RUNBOOKS_DIR": str(root / "runbooks"),
            "CONTROLPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'cp.db'}",
            "CONTROLPLANE_DATA_DIR": str(tmp_path / "data"),
        }
    )
    app = create_app(config)
    body = app.test_client().get("/api/v1/slos").get_json()
    ids = {s["id"] for s in body["slos"]}
    assert "launches-launch-success" in ids and len(ids) >= 3
