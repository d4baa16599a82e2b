"""The Prometheus-compatible API over fakes: shapes against Prometheus's documented examples,
status codes and error bodies, GET and POST, metadata endpoints with match[], targets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.api.prometheus import create_blueprint
from controlplane.api.targets import TargetState
from controlplane.collect.scrape import Health, ScrapeStatus, ScrapeTarget
from controlplane.promql.catalog import StoreCatalog
from tests.controlplane.api.fakes import FakeQuerier, FakeSource, FakeTargets, series

DATA = Path(__file__).parent / "data"
T0 = 1435781430781  # 2015-07-01T20:10:30.781Z, the docs' range start
NOW_S = 1435781451.781


def docs(name: str) -> Any:
    return json.loads((DATA / f"prometheus_docs_{name}.json").read_text())


def make_client(items: list[Any], targets: list[TargetState] | None = None) -> FlaskClient:
    source = FakeSource(items)
    app = Flask("test")
    app.register_blueprint(
        create_blueprint(
            querier=FakeQuerier(source),
            catalog=StoreCatalog(source),
            targets=FakeTargets(targets or []),
            clock=lambda: NOW_S,
        )
    )
    return app.test_client()


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    up = {"__name__": "up"}
    items = [
        series({**up, "job": "prometheus", "instance": "localhost:9090"}, [(T0, 1)]),
        series({**up, "job": "node", "instance": "localhost:9100"}, [(T0, 0)]),
        series(
            {"__name__": "process_start_time_seconds", "job": "prometheus", "instance": "x:1"},
            [(T0, 1.4e9)],
        ),
        series({"__name__": "weird", "job": "w"}, [(T0, float("nan"))]),
        series({"__name__": "weird", "job": "inf"}, [(T0, float("inf"))]),
        series({"__name__": "weird", "job": "frac"}, [(T0, 0.1 + 0.2)]),
        series({"__name__": "weird", "job": "big"}, [(T0, 1e21)]),
    ]
    yield make_client(items)


def sort_result(body: dict[str, Any]) -> dict[str, Any]:
    body["data"]["result"].sort(key=lambda r: sorted(r["metric"].items()))
    return body


def test_instant_query_matches_the_documented_example(client: FlaskClient) -> None:
    r = client.get(
        "/api/v1/query", query_string={"query": "up", "time": "2015-07-01T20:10:51.781Z"}
    )
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert sort_result(r.get_json()) == sort_result(docs("query"))


def test_range_query_matches_the_documented_example() -> None:
    prom = {"__name__": "up", "job": "prometheus", "instance": "localhost:9090"}
    node = {"__name__": "up", "job": "node", "instance": "localhost:9091"}
    steps = [T0, T0 + 15_000, T0 + 30_000]
    client = make_client(
        [
            series(prom, [(t, 1) for t in steps]),
            series(node, list(zip(steps, [0, 0, 1], strict=True))),
        ]
    )
    r = client.get(
        "/api/v1/query_range",
        query_string={
            "query": "up",
            "start": "2015-07-01T20:10:30.781Z",
            "end": "2015-07-01T20:11:00.781Z",
            "step": "15s",
        },
    )
    assert r.status_code == 200
    assert sort_result(r.get_json()) == sort_result(docs("query_range"))


def test_post_form_is_the_same_as_get(client: FlaskClient) -> None:
    form = {"query": "up", "time": "1435781451.781"}
    got = client.get("/api/v1/query", query_string=form).get_json()
    posted = client.post("/api/v1/query", data=form)
    assert posted.status_code == 200
    assert posted.get_json() == got
    ranged = client.post(
        "/api/v1/query_range",
        data={"query": "up", "start": str(T0 / 1000), "end": str(T0 / 1000 + 60), "step": "15"},
    )
    assert ranged.status_code == 200
    assert ranged.get_json()["data"]["resultType"] == "matrix"


def test_time_defaults_to_the_clock_and_values_are_prometheus_strings(
    client: FlaskClient,
) -> None:
    r = client.get("/api/v1/query", query_string={"query": "weird"})
    values = {x["metric"]["job"]: x["value"] for x in r.get_json()["data"]["result"]}
    assert values == {
        "w": [NOW_S, "NaN"],
        "inf": [NOW_S, "+Inf"],
        "frac": [NOW_S, "0.30000000000000004"],
        "big": [NOW_S, "1000000000000000000000"],
    }


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("42", {"resultType": "scalar", "result": [1435781451.781, "42"]}),
        ('"hello"', {"resultType": "string", "result": [1435781451.781, "hello"]}),
        ("nothing_here", {"resultType": "vector", "result": []}),
    ],
)
def test_scalar_string_and_empty_results(
    client: FlaskClient, expr: str, expected: dict[str, Any]
) -> None:
    body = client.get("/api/v1/query", query_string={"query": expr}).get_json()
    assert body == {"status": "success", "data": expected}


def test_warnings_are_reported(client: FlaskClient) -> None:
    body = client.get("/api/v1/query", query_string={"query": "warn"}).get_json()
    assert body["status"] == "success"
    assert body["warnings"] == ["a warning"]


def assert_error(response: Any, status: int, error_type: str, contains: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"status", "errorType", "error"}
    assert body["status"] == "error"
    assert body["errorType"] == error_type
    assert contains in body["error"]


def test_parse_error_is_bad_data_with_the_position(client: FlaskClient) -> None:
    r = client.get("/api/v1/query", query_string={"query": "sum(up"})
    assert_error(r, 400, "bad_data", 'invalid parameter "query": 1:7: parse error:')


@pytest.mark.parametrize(
    ("expr", "status", "error_type"),
    [("error_exec", 422, "execution"), ("error_timeout", 503, "timeout")],
)
def test_engine_errors_map_to_prometheus_status_codes(
    client: FlaskClient, expr: str, status: int, error_type: str
) -> None:
    assert_error(client.get("/api/v1/query", query_string={"query": expr}), status, error_type, "")
    r = client.post(
        "/api/v1/query_range", data={"query": expr, "start": "0", "end": "60", "step": "15"}
    )
    assert_error(r, status, error_type, "")


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("query", {}, 'invalid parameter "query": 1:1: parse error: no expression found'),
        (
            "query",
            {"query": "up", "time": "yesterday"},
            """invalid parameter "time": Invalid time value for 'time': cannot parse""",
        ),
        ("query", {"query": "up", "timeout": "5x"}, 'invalid parameter "timeout": cannot parse'),
        ("query_range", {"query": "up"}, 'invalid parameter "start": cannot parse "" to a valid'),
        ("query_range", {"query": "up", "start": "0"}, 'invalid parameter "end"'),
        ("query_range", {"query": "up", "start": "0", "end": "1"}, 'invalid parameter "step"'),
        (
            "query_range",
            {"query": "up", "start": "10", "end": "1", "step": "1"},
            'invalid parameter "end": end timestamp must not be before start time',
        ),
        (
            "query_range",
            {"query": "up", "start": "0", "end": "1", "step": "0"},
            'invalid parameter "step": zero or negative query resolution step widths',
        ),
        (
            "query_range",
            {"query": "up", "start": "0", "end": "86400", "step": "1"},
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        ("series", {}, "no match[] parameter provided"),
        ("series", {"match[]": "up{"}, "parse error"),
        ("series", {"match[]": '{job=~".*"}'}, "at least one non-empty matcher"),
        ("series", {"match[]": "up", "limit": "-1"}, 'invalid parameter "limit"'),
        ("labels", {"start": "nope"}, 'invalid parameter "start"'),
        ("label/0bad/values", {}, 'invalid label name: "0bad"'),
    ],
)
def test_bad_parameters_are_400_bad_data(
    client: FlaskClient, path: str, form: dict[str, str], message: str
) -> None:
    assert_error(client.get(f"/api/v1/{path}", query_string=form), 400, "bad_data", message)


def test_timeout_parameter_reaches_the_querier() -> None:
    source = FakeSource([])
    querier = FakeQuerier(source)
    app = Flask("test")
    app.register_blueprint(
        create_blueprint(
            querier=querier, catalog=StoreCatalog(source), targets=FakeTargets([]), clock=lambda: 1
        )
    )
    app.test_client().get("/api/v1/query", query_string={"query": "up", "timeout": "1m30s"})
    app.test_client().get("/api/v1/query", query_string={"query": "up"})
    assert [c[-1] for c in querier.calls] == [90.0, None]
    assert querier.calls[0][2] == 1000


def test_series_matches_the_documented_example(client: FlaskClient) -> None:
    r = client.post(
        "/api/v1/series",
        data={"match[]": ["up", 'process_start_time_seconds{job="prometheus"}']},
    )
    assert r.status_code == 200
    body = r.get_json()
    expected = docs("series")
    assert body["status"] == expected["status"]
    # same shape: a flat list of label objects (the documented instances differ)
    assert {d["__name__"] for d in body["data"]} == {d["__name__"] for d in expected["data"]}
    assert all(isinstance(v, str) for d in body["data"] for v in d.values())
    assert len(body["data"]) == 3


def test_series_time_window_and_limit(client: FlaskClient) -> None:
    before = client.get("/api/v1/series", query_string={"match[]": "up", "end": "1000"})
    assert before.get_json() == {"status": "success", "data": []}
    limited = client.get("/api/v1/series", query_string={"match[]": "up", "limit": "1"})
    assert len(limited.get_json()["data"]) == 1
    assert limited.get_json()["warnings"] == ["results truncated due to limit"]


def test_labels_and_label_values_with_and_without_match(client: FlaskClient) -> None:
    names = client.get("/api/v1/labels").get_json()
    assert names == {"status": "success", "data": ["__name__", "instance", "job"]}
    weird = client.post("/api/v1/labels", data={"match[]": "weird"}).get_json()
    assert weird["data"] == ["__name__", "job"]
    jobs = client.get("/api/v1/label/job/values").get_json()
    assert jobs["data"] == ["big", "frac", "inf", "node", "prometheus", "w"]
    jobs_of_up = client.get("/api/v1/label/job/values", query_string={"match[]": "up"})
    assert jobs_of_up.get_json()["data"] == ["node", "prometheus"]
    metric_names = client.get("/api/v1/label/__name__/values").get_json()["data"]
    assert metric_names == ["process_start_time_seconds", "up", "weird"]


def test_targets_match_the_documented_shape() -> None:
    target = (
        ScrapeTarget(job="prometheus", url="http://127.0.0.1:9090/metrics", interval_s=60),
        ScrapeStatus(
            health=Health.UP, last_scrape_s=1484662064.723715, last_duration_s=0.050688943
        ),
    )
    never = (
        ScrapeTarget(job="node", url="http://127.0.0.1:9100/metrics", labels={"region": "eu"}),
        ScrapeStatus(),
    )
    client = make_client([], [target, never])
    body = client.get("/api/v1/targets").get_json()
    expected = docs("targets")
    assert set(body) == set(expected)
    assert set(body["data"]) == set(expected["data"])
    ours, theirs = body["data"]["activeTargets"][0], expected["data"]["activeTargets"][0]
    assert set(ours) == set(theirs)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    for key in ("labels", "scrapePool", "scrapeUrl", "lastError", "health", "scrapeInterval"):
        assert ours[key] == theirs[key], key
    assert ours["lastScrape"] == "2017-01-17T14:07:44.723715Z"
    assert body["data"]["activeTargets"][1]["health"] == "unknown"
    assert body["data"]["activeTargets"][1]["labels"] == {
        "instance": "127.0.0.1:9100",
        "job": "node",
        "region": "eu",
    }
    assert body["data"]["activeTargets"][1]["scrapeInterval"] == "15s"
    assert body["data"]["activeTargets"][1]["lastScrape"] == "0001-01-01T00:00:00Z"
    pool = client.get("/api/v1/targets", query_string={"scrapePool": "node"}).get_json()
    assert [t["scrapePool"] for t in pool["data"]["activeTargets"]] == ["node"]
    dropped = client.get("/api/v1/targets", query_string={"state": "dropped"}).get_json()
    assert dropped["data"] == {"activeTargets": [], "droppedTargets": []}
