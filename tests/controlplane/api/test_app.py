"""create_app's wiring: probes, /metrics, lifecycle, JSON errors, backend selection."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from controlplane.app import (
    EXTENSION,
    Components,
    ControlPlane,
    EmbeddedQuerier,
    State,
    create_app,
)
from controlplane.config import Config, QueryConfig, StoreConfig
from controlplane.errors import StoreError
from controlplane.model.series import Matcher, Series, labels_from
from controlplane.promql.catalog import StoreCatalog
from controlplane.remote.prometheus import RemotePrometheus
from tests.conftest import free_port
from tests.controlplane.api.fakes import FakeQuerier, FakeSource, series


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def close(self) -> None:
        self.events.append("close")


class BrokenSource(FakeSource):
    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        raise StoreError("the store is closed")


def make(recorder: Recorder | None = None, source: FakeSource | None = None) -> FlaskClient:
    source = source or FakeSource([series({"__name__": "up"}, [(1000, 1)])])
    recorder = recorder or Recorder()
    components = Components(
        querier=FakeQuerier(source),
        catalog=StoreCatalog(source),
        start=recorder.start,
        stop=recorder.stop,
        close=recorder.close,
    )
    return create_app(Config(), components=components, clock=lambda: 1.0).test_client()


def plane(client: FlaskClient) -> ControlPlane:
    return client.application.extensions[EXTENSION]  # type: ignore[no-any-return]


def test_lifecycle_and_readiness() -> None:
    recorder = Recorder()
    client = make(recorder)
    assert client.get("/healthz").get_json() == {"status": "ok"}
    r = client.get("/readyz")
    assert (r.status_code, r.get_json()["status"]) == (503, "not_ready")
    plane(client).start()
    plane(client).start()
    assert client.get("/readyz").status_code == 200
    plane(client).stop()
    plane(client).stop()
    assert recorder.events == ["start", "stop", "close"]
    assert plane(client).state is State.STOPPED
    assert client.get("/readyz").get_json() == {"status": "not_ready", "reason": "stopped"}


def test_stop_before_start_does_not_stop_the_components() -> None:
    recorder = Recorder()
    client = make(recorder)
    plane(client).stop()
    plane(client).start()
    assert recorder.events == ["close"]


def test_metrics_count_requests_by_route_and_code() -> None:
    client = make()
    client.get("/api/v1/query", query_string={"query": "up"})
    client.get("/api/v1/query", query_string={"query": "sum("})
    client.get("/nowhere")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'controlplane_http_requests_total{code="200",handler="/api/v1/query"} 1.0' in text
    assert 'controlplane_http_requests_total{code="400",handler="/api/v1/query"} 1.0' in text
    assert 'controlplane_http_requests_total{code="404",handler="unmatched"} 1.0' in text
    assert 'controlplane_http_request_duration_seconds_count{handler="/api/v1/query"} 2.0' in text
    assert 'controlplane_query_backend_info{backend="embedded"} 1.0' in text


def test_each_app_has_its_own_registry() -> None:
    first, second = make(), make()
    first.get("/healthz")
    text = second.get("/metrics").get_data(as_text=True)
    assert 'handler="/healthz"' not in text


def test_errors_outside_the_prometheus_api_are_json() -> None:
    client = make()
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.get_json()["error"] == "not_found"
    r = client.post("/api/v1/targets")
    assert r.status_code == 405
    assert r.get_json()["error"] == "method_not_allowed"


def test_store_failure_is_an_internal_prometheus_error() -> None:
    client = make(source=BrokenSource([]))
    r = client.get("/api/v1/series", query_string={"match[]": "up"})
    assert r.status_code == 500
    assert r.get_json() == {
        "status": "error",
        "errorType": "internal",
        "error": "the store is closed",
    }


def test_unexpected_exception_is_an_internal_prometheus_error() -> None:
    class Exploding(FakeQuerier):
        def instant(self, expr: str, time_ms: int) -> object:  # type: ignore[override]
            raise RuntimeError("boom")

    source = FakeSource([])
    components = Components(querier=Exploding(source), catalog=StoreCatalog(source))
    client = create_app(Config(), components=components).test_client()
    r = client.get("/api/v1/query", query_string={"query": "up"})
    assert r.status_code == 500
    assert r.get_json()["errorType"] == "internal"
    assert "RuntimeError: boom" in r.get_json()["error"]


def test_prometheus_url_selects_remote_mode() -> None:
    config = Config(
        query=QueryConfig(prometheus_url=f"http://127.0.0.1:{free_port()}", timeout_s=7)
    )
    app = create_app(config, pipeline=False)
    cp: ControlPlane = app.extensions[EXTENSION]
    assert isinstance(cp.querier, RemotePrometheus)
    assert cp.querier.timeout_s == 7
    assert cp.components.backend == "remote"
    cp.start()
    cp.stop()


@pytest.mark.parametrize("path", ["/api/v1/query", "/api/v1/query_range"])
def test_remote_mode_unreachable_is_503_unavailable(path: str) -> None:
    app = create_app(Config(query=QueryConfig(prometheus_url=f"http://127.0.0.1:{free_port()}")))
    form = {"query": "up", "start": "0", "end": "1", "step": "1"}
    r = app.test_client().get(path, query_string=form)
    assert r.status_code == 503
    assert r.get_json()["errorType"] == "unavailable"
    app.extensions[EXTENSION].stop()


def test_embedded_mode_answers_from_the_store_and_checkpoints_at_stop(tmp_path: Path) -> None:
    config = Config(store=StoreConfig(checkpoint_path=tmp_path / "store"))
    app = create_app(config, clock=lambda: 1_700_000_000.0, pipeline=False)
    cp: ControlPlane = app.extensions[EXTENSION]
    assert cp.components.store is not None
    cp.start()
    t = 1_700_000_000_000
    for i in range(5):
        cp.components.store.append(
            labels_from({"__name__": "up", "job": "a"}), t - (4 - i) * 15_000, 1
        )
    client = app.test_client()
    body = client.get("/api/v1/query", query_string={"query": "sum(up)"}).get_json()
    assert body["data"] == {
        "resultType": "vector",
        "result": [{"metric": {}, "value": [1700000000, "1"]}],
    }
    rate = client.post("/api/v1/query", data={"query": "count_over_time(up[1m])"}).get_json()
    assert rate["data"]["result"][0]["value"] == [1700000000, "4"]
    assert client.get("/api/v1/label/job/values").get_json()["data"] == ["a"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "controlplane_store_series 1.0" in metrics
    cp.stop()

    again = create_app(config, clock=lambda: 1_700_000_000.0, pipeline=False)
    again.extensions[EXTENSION].start()
    body = again.test_client().get("/api/v1/query", query_string={"query": "up"}).get_json()
    assert body["data"]["result"] == [
        {"metric": {"__name__": "up", "job": "a"}, "value": [1700000000, "1"]}
    ]
    again.extensions[EXTENSION].stop()


def test_embedded_timeout_parameter_bounds_the_engine() -> None:
    app = create_app(Config(store=StoreConfig(checkpoint_path=None)), pipeline=False)
    querier = app.extensions[EXTENSION].querier
    assert isinstance(querier, EmbeddedQuerier)
    assert querier.with_timeout(5).engine.timeout_s == 5
    assert querier.with_timeout(1e9).engine.timeout_s == 120
    assert querier.engine.timeout_s == 120


def test_other_blueprints_are_mounted_and_instrumented() -> None:
    from flask import Blueprint

    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/api/v1/hello", view_func=lambda: {"hello": "world"})
    source = FakeSource([])
    components = Components(querier=FakeQuerier(source), catalog=StoreCatalog(source))
    client = create_app(Config(), components=components, blueprints=[extra]).test_client()
    assert client.get("/api/v1/hello").get_json() == {"hello": "world"}
    text = client.get("/metrics").get_data(as_text=True)
    assert 'controlplane_http_requests_total{code="200",handler="/api/v1/hello"} 1.0' in text


def test_unexpected_exception_elsewhere_is_json() -> None:
    from flask import Blueprint

    def boom() -> None:
        raise RuntimeError("kaput")

    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/api/v1/boom", view_func=boom)
    source = FakeSource([])
    components = Components(querier=FakeQuerier(source), catalog=StoreCatalog(source))
    client = create_app(Config(), components=components, blueprints=[extra]).test_client()
    r = client.get("/api/v1/boom")
    assert r.status_code == 500
    assert r.get_json() == {"error": "internal", "message": "RuntimeError: kaput"}
