"""Hostile or careless queries through the HTTP API: each class answers a 4xx (or quickly),
never a 500 nor a frozen process; a full query gate answers 503 with Retry-After and leaves
/healthz and rule evaluation alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings

from controlplane.app import EXTENSION, Components, ControlPlane, create_app
from controlplane.config import Config, QueryConfig, StoreConfig, load_config
from controlplane.errors import ConfigError
from controlplane.model.series import labels_from
from controlplane.promql.results import QueryResult, ResultType
from tests.controlplane.api.fakes import FakeSource, FakeTargets
from tests.controlplane.promql.test_limits import EXPRESSIONS

LONG = "a" * 100_000 + "!"
NOW_S = 1_000


def embedded(query: QueryConfig | None = None) -> tuple[FlaskClient, ControlPlane]:
    config = Config(store=StoreConfig(checkpoint_path=None), query=query or QueryConfig())
    app = create_app(config, pipeline=False, clock=lambda: NOW_S)
    plane: ControlPlane = app.extensions[EXTENSION]
    store = plane.components.store
    assert store is not None
    for t_s in range(0, NOW_S + 1, 15):
        store.append(labels_from({"__name__": "m", "l": LONG}), t_s * 1000, 1.0)
        store.append(labels_from({"__name__": "m", "l": "b"}), t_s * 1000, 2.0)
    return app.test_client(), plane


@pytest.fixture
def client() -> FlaskClient:
    return embedded()[0]


def query(client: FlaskClient, expr: str, **form: str) -> tuple[int, dict[str, Any]]:
    r = client.post("/api/v1/query", data={"query": expr, **form})
    return r.status_code, r.get_json()


@pytest.mark.parametrize(
    ("expr", "limit"),
    [
        ("(" * 50_000 + "1" + ")" * 50_000, "query.max_length"),  # was SIGSEGV, exit 139
        ("(" * 30_000 + "1" + ")" * 30_000, "query.max_depth"),
        ("+".join(["1"] * 10_000), "query.max_depth"),  # was a 500 and gigabytes
        (" or ".join(["m"] * 3_000), "query.max_depth"),
    ],
    ids=["parens-50000", "parens-30000", "plus-chain", "or-chain"],
)
def test_deep_or_long_expressions_are_400_naming_the_limit(
    client: FlaskClient, expr: str, limit: str
) -> None:
    for path in ("/api/v1/query", "/api/v1/query_range"):
        form = {"query": expr, "start": "0", "end": "60", "step": "15"}
        r = client.post(path, data=form)
        assert r.status_code == 400, r.data[:300]
        body = r.get_json()
        assert body["errorType"] == "bad_data"
        assert body["error"].startswith('invalid parameter "query": 1:')
        assert limit in body["error"]
    assert client.get("/healthz").status_code == 200


def test_a_match_selector_is_bounded_too(client: FlaskClient) -> None:
    r = client.get("/api/v1/series", query_string={"match[]": "{" * 100 + "m"})
    assert r.status_code == 400 and "query.max_depth" in r.get_json()["error"]


def test_catastrophic_regexes_answer_quickly(client: FlaskClient) -> None:
    started = time.monotonic()
    status, body = query(client, 'count(m{l=~"(a+)+$"}) or vector(0)')
    assert status == 200 and body["data"]["result"][0]["value"][1] == "0"
    status, body = query(client, 'label_replace(m, "x", "$1", "l", "(a|aa)+(b)")')
    assert status == 200 and len(body["data"]["result"]) == 2
    for path in ("/api/v1/series", "/api/v1/labels", "/api/v1/label/l/values"):
        r = client.get(path, query_string={"match[]": 'm{l=~"(a*)*b"}'})
        assert r.status_code == 200, r.data[:300]
    assert client.get("/api/v1/label/l/values").get_json()["data"][0] == LONG
    assert time.monotonic() - started < 10  # Python's re: never


def test_an_invalid_go_regex_is_bad_data(client: FlaskClient) -> None:
    status, body = query(client, 'm{l=~"x**"}')
    assert status == 400 and body["errorType"] == "bad_data"
    assert "invalid regular expression 'x**'" in body["error"]
    r = client.get("/api/v1/series", query_string={"match[]": 'm{l=~"a{1001}"}'})
    assert r.status_code == 400 and 'invalid parameter "match[]"' in r.get_json()["error"]


def test_a_subquery_too_fine_for_its_range_is_422(client: FlaskClient) -> None:
    status, body = query(client, "max_over_time(m[30d:1ms])")  # was gigabytes, no answer
    assert status == 422 and body["errorType"] == "execution"
    assert "exceeded maximum resolution of 11,000 points per timeseries" in body["error"]


def test_samples_produced_count_against_max_samples() -> None:
    client, _ = embedded(QueryConfig(max_samples=5_000))
    form = {"query": "m", "start": "0", "end": str(NOW_S), "step": "1"}
    r = client.post("/api/v1/query_range", data=form)  # 2 series x 1,001 steps, ~140 loaded
    assert r.status_code == 200
    r = client.post("/api/v1/query_range", data={**form, "query": "m + m * m"})
    assert r.status_code == 422
    assert "too many samples" in r.get_json()["error"]


def test_the_limits_come_from_the_config(tmp_path: Any) -> None:
    client, _ = embedded(QueryConfig(max_depth=3, max_length=100))
    assert query(client, "sum(rate(m[5m]))")[0] == 400
    assert "limit of 3 levels" in query(client, "sum(rate(m[5m]))")[1]["error"]
    assert "limit of 100 (query.max_length)" in query(client, "m" * 101)[1]["error"]
    env = {
        "CONTROLPLANE_QUERY_MAX_LENGTH": "1000",
        "CONTROLPLANE_QUERY_MAX_DEPTH": "10",
        "CONTROLPLANE_QUERY_MAX_CONCURRENCY": "2",
    }
    loaded = load_config(env=env).query
    assert (loaded.max_length, loaded.max_depth, loaded.max_concurrency) == (1000, 10, 2)
    path = tmp_path / "cp.yaml"
    path.write_text("query: {max_depth: 1000}\n")
    with pytest.raises(ConfigError, match=r"query\.max_depth: 1000 is more than 128"):
        load_config(path, env={})


class Blocking:
    """A querier whose `slow` queries wait for `release`; `running` counts them."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        if expr != "slow":
            return QueryResult(type=ResultType.VECTOR, vector=())
        self.running += 1
        try:
            self.release.wait(10)
            return QueryResult(type=ResultType.VECTOR, vector=())
        finally:
            self.running -= 1

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        return self.instant(expr, start_ms)


@pytest.fixture
def gated() -> Iterator[tuple[FlaskClient, Blocking]]:
    querier = Blocking()
    components = Components(querier=querier, catalog=FakeSource([]), targets=FakeTargets([]))
    config = Config(query=QueryConfig(max_concurrency=2))
    app = create_app(config, components=components)
    yield app.test_client(), querier
    querier.release.set()


def test_a_full_query_gate_answers_503_with_retry_after(
    gated: tuple[FlaskClient, Blocking],
) -> None:
    client, querier = gated
    answers: list[int] = []
    busy = [
        threading.Thread(target=lambda: answers.append(query(client, "slow")[0])) for _ in range(2)
    ]
    for thread in busy:
        thread.start()
    deadline = time.monotonic() + 10
    while querier.running < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    form = {"query": "fast", "start": "0", "end": "1", "step": "1"}
    r = client.post("/api/v1/query_range", data=form)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.get_json()["errorType"] == "unavailable"
    assert "query.max_concurrency" in r.get_json()["error"]
    # the rest of the server, and the querier rules evaluate through, are not gated
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/labels").status_code == 200
    plane: ControlPlane = client.application.extensions[EXTENSION]
    assert plane.querier.instant("fast", 0).type is ResultType.VECTOR
    querier.release.set()
    for thread in busy:
        thread.join(10)
    assert answers == [200, 200]
    assert query(client, "fast")[0] == 200  # the slots came back


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(expr=EXPRESSIONS)
def test_any_expression_is_answered_2xx_or_4xx(client: FlaskClient, expr: str) -> None:
    # as bytes, so that a lone surrogate arrives as the invalid UTF-8 a client could send
    raw = expr.encode("utf-8", "surrogatepass")
    form = urlencode({"query": raw, "timeout": "5s", "start": "0", "end": "60", "step": "15"})
    for path in ("/api/v1/query", "/api/v1/query_range"):
        r = client.post(path, data=form, content_type="application/x-www-form-urlencoded")
        assert r.status_code < 500, r.data[:300]
    r = client.get("/api/v1/series", query_string=urlencode({"match[]": raw}))
    assert r.status_code < 500, r.data[:300]
    assert client.get("/healthz").status_code == 200
