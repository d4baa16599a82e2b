"""Remote mode against the real `prometheus` binary: it scrapes a small prometheus_client
exporter; the same queries go through RemotePrometheus and through the control plane's own
/api/v1 in remote mode, and must agree with Prometheus's own answers."""

from __future__ import annotations

import functools
import json
import math
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from controlplane.app import create_app
from controlplane.config import Config, QueryConfig, StoreConfig
from controlplane.errors import EvalError, ParseError
from controlplane.model.series import Matcher, MatchOp
from controlplane.promql.results import ResultType
from controlplane.remote.prometheus import RemotePrometheus, RemoteUnavailable
from tests.conftest import free_port, require_binary, stop_process

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Prom:
    url: str
    exporter: str  # host:port, the `instance` label


def _exporter() -> tuple[Any, str]:
    registry = CollectorRegistry()
    requests_total = Counter("demo_requests", "Requests.", ["route"], registry=registry)
    requests_total.labels("a").inc(5)
    requests_total.labels("b").inc(7)
    Gauge("demo_temperature", "Temperature.", ["room"], registry=registry).labels("x").set(21.5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return (server, thread), f"127.0.0.1:{port}"


def _wait_for_data(url: str, deadline_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}")
        try:
            r = requests.get(f"{url}/api/v1/query", params={"query": "demo_temperature"}, timeout=1)
            if r.ok and r.json()["data"]["result"]:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"prometheus at {url} had no data within {deadline_s}s")


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    binary = require_binary("prometheus")
    tmp: Path = tmp_path_factory.mktemp("prometheus")
    (server, thread), exporter = _exporter()
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: demo\n    static_configs: [{{targets: ['{exporter}']}}]\n"
    )
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_data(url, 30.0, proc)
        yield Prom(url=url, exporter=exporter)
    finally:
        stop_process(proc)
        log.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def remote(prom: Prom) -> Iterator[RemotePrometheus]:
    client = RemotePrometheus(prom.url, timeout_s=10)
    yield client
    client.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def test_instant_vector(remote: RemotePrometheus, prom: Prom) -> None:
    t = now_ms()
    result = remote.instant("demo_temperature", t)
    assert result.type is ResultType.VECTOR
    (sample,) = result.vector
    assert dict(sample.labels) == {
        "__name__": "demo_temperature",
        "instance": prom.exporter,
        "job": "demo",
        "room": "x",
    }
    assert sample.value == 21.5
    assert sample.t_ms == t
    total = remote.instant("sum(demo_requests_total)", t).vector
    assert [s.value for s in total] == [12.0]
    assert total[0].labels == ()


def test_scalar_string_and_special_values(remote: RemotePrometheus) -> None:
    t = now_ms()
    scalar = remote.instant("1 + 1", t)
    assert scalar.type is ResultType.SCALAR
    assert scalar.scalar is not None
    assert (scalar.scalar.value, scalar.scalar.t_ms) == (2.0, t)
    assert remote.instant('"hi"', t).text == "hi"
    assert math.isnan(remote.instant("0/0", t).scalar.value)  # type: ignore[union-attr]
    assert remote.instant("1/0", t).scalar.value == math.inf  # type: ignore[union-attr]


def test_range(remote: RemotePrometheus) -> None:
    end = (now_ms() // 1000 + 1) * 1000  # after the first scrape even when run alone
    result = remote.range("demo_temperature", end - 4000, end, 1000)
    assert result.type is ResultType.MATRIX
    (series,) = result.matrix
    # Prometheus may have started less than 4 s ago: the first steps can be missing
    assert (
        series.timestamps.tolist()
        == list(range(end - 4000, end + 1, 1000))[-len(series.timestamps) :]
    )
    assert len(series.timestamps) >= 1
    assert set(series.values.tolist()) == {21.5}


def test_errors_carry_the_remote_message(remote: RemotePrometheus) -> None:
    with pytest.raises(ParseError) as parse:
        remote.instant("sum(demo_temperature", now_ms())
    assert "parse error" in str(parse.value)
    assert "1:" in str(parse.value)  # the position
    with pytest.raises(EvalError) as execution:
        remote.instant("demo_requests_total + on() demo_requests_total", now_ms())
    assert "many-to-many" in str(execution.value)


def test_unreachable_remote_is_unavailable() -> None:
    client = RemotePrometheus(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(RemoteUnavailable):
            client.instant("up", now_ms())
    finally:
        client.close()


def test_metadata(remote: RemotePrometheus, prom: Prom) -> None:
    start, end = now_ms() - 60_000, now_ms()
    name = [Matcher(name="__name__", op=MatchOp.RE, value="demo_requests_total|demo_temperature")]
    series = remote.series([name], start, end)
    assert {dict(s)["__name__"] for s in series} == {"demo_requests_total", "demo_temperature"}
    assert remote.label_names([name], start, end) == [
        "__name__",
        "instance",
        "job",
        "room",
        "route",
    ]
    assert remote.label_values("route", [name], start, end) == ["a", "b"]


def _sorted(body: dict[str, Any]) -> dict[str, Any]:
    result = body["data"]["result"]
    if isinstance(result, list) and result and isinstance(result[0], dict):
        result.sort(key=lambda r: sorted(r["metric"].items()))
    return body


@pytest.mark.parametrize(
    "form",
    [
        {"query": "demo_requests_total"},
        {"query": "sum by (route) (demo_requests_total)"},
        {"query": "demo_temperature / 2"},
        {"query": "scalar(demo_temperature)"},
        {"query": "0/0"},
    ],
)
def test_control_plane_in_remote_mode_answers_as_prometheus(
    prom: Prom, form: dict[str, str]
) -> None:
    app = create_app(
        Config(query=QueryConfig(prometheus_url=prom.url, timeout_s=10)), pipeline=False
    )
    client = app.test_client()
    at = str(now_ms() / 1000)
    ours = client.post("/api/v1/query", data={**form, "time": at})
    theirs = requests.post(f"{prom.url}/api/v1/query", data={**form, "time": at}, timeout=5)
    assert ours.status_code == theirs.status_code == 200
    assert _sorted(ours.get_json()) == _sorted(theirs.json())
    end = now_ms() // 1000
    span = {**form, "start": str(end - 5), "end": str(end), "step": "1"}
    ours = client.get("/api/v1/query_range", query_string=span)
    theirs = requests.get(f"{prom.url}/api/v1/query_range", params=span, timeout=5)
    assert _sorted(ours.get_json()) == _sorted(theirs.json())
    app.extensions["controlplane"].stop()


def test_control_plane_in_remote_mode_passes_errors_and_metadata(prom: Prom) -> None:
    app = create_app(
        Config(query=QueryConfig(prometheus_url=prom.url, timeout_s=10)), pipeline=False
    )
    client = app.test_client()
    bad = client.get("/api/v1/query", query_string={"query": "sum(demo_temperature"})
    theirs = requests.get(
        f"{prom.url}/api/v1/query", params={"query": "sum(demo_temperature"}, timeout=5
    )
    assert bad.status_code == theirs.status_code == 400
    assert bad.get_json() == theirs.json()
    values = client.get(
        "/api/v1/label/route/values", query_string={"match[]": "demo_requests_total"}
    )
    assert values.get_json() == {"status": "success", "data": ["a", "b"]}
    series = client.get("/api/v1/series", query_string={"match[]": "demo_temperature"}).get_json()
    assert [s["room"] for s in series["data"]] == ["x"]
    active = client.get("/api/v1/targets").get_json()["data"]["activeTargets"]
    assert [(t["scrapePool"], t["labels"]["instance"]) for t in active] == [("demo", prom.exporter)]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'controlplane_query_backend_info{backend="remote"} 1.0' in metrics
    app.extensions["controlplane"].stop()


def _remote_app(prom: Prom) -> Any:
    return create_app(
        Config(query=QueryConfig(prometheus_url=prom.url, timeout_s=10)), pipeline=False
    )


def _both(prom: Prom, path: str, query: str) -> tuple[Any, requests.Response]:
    """Our answer in remote mode and Prometheus's own, to the same GET."""
    app = _remote_app(prom)
    ours = app.test_client().get(f"/api/v1/{path}?{query}")
    app.extensions["controlplane"].stop()
    return ours, requests.get(f"{prom.url}/api/v1/{path}?{query}", timeout=5)


def test_remote_mode_passes_buildinfo_through(prom: Prom) -> None:
    ours, theirs = _both(prom, "status/buildinfo", "")
    assert ours.status_code == theirs.status_code == 200
    assert ours.get_json() == theirs.json()
    assert ours.get_json()["data"]["goVersion"].startswith("go")  # Prometheus's, not ours


def _entries_sorted(data: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    # Prometheus lists a family's entries in map order
    return {name: sorted(v, key=lambda e: sorted(e.items())) for name, v in data.items()}


@pytest.mark.parametrize(
    "query", ["", "metric=demo_temperature", "metric=nope", "limit=0", "limit=1", "limit=x"]
)
def test_remote_mode_passes_metadata_through(prom: Prom, query: str) -> None:
    ours, theirs = _both(prom, "metadata", query)
    assert ours.status_code == theirs.status_code
    if query == "limit=1":  # which family is kept is Prometheus's map order
        assert len(ours.get_json()["data"]) == len(theirs.json()["data"]) == 1
    elif theirs.ok:
        assert _entries_sorted(ours.get_json()["data"]) == _entries_sorted(theirs.json()["data"])
    else:
        assert ours.get_json() == theirs.json()
    if query.startswith("metric=demo"):
        assert ours.get_json()["data"]["demo_temperature"][0]["help"] == "Temperature."


def _targets(body: dict[str, Any]) -> dict[str, Any]:
    # the last scrape's time and duration move between two calls
    for target in body["data"]["activeTargets"]:
        del target["lastScrape"], target["lastScrapeDuration"]
    return body


@pytest.mark.parametrize(
    "query", ["", "state=active", "state=dropped", "state=Any", "scrapePool=demo", "state=x"]
)
def test_remote_mode_passes_targets_through(prom: Prom, query: str) -> None:
    ours, theirs = _both(prom, "targets", query)
    assert ours.status_code == theirs.status_code == 200
    assert _targets(ours.get_json()) == _targets(theirs.json())
    if query in ("", "state=active", "state=Any", "scrapePool=demo"):
        assert ours.get_json()["data"]["activeTargets"]


@pytest.mark.parametrize(
    "query", ["metric=demo_temperature", 'match_target={job="demo"}', "limit=x"]
)
def test_remote_mode_passes_targets_metadata_through(prom: Prom, query: str) -> None:
    ours, theirs = _both(prom, "targets/metadata", query)
    assert ours.status_code == theirs.status_code
    if theirs.ok:
        ordered = functools.partial(sorted, key=lambda item: json.dumps(item, sort_keys=True))
        assert ordered(ours.get_json()["data"]) == ordered(theirs.json()["data"])
        assert ours.get_json()["data"]
    else:
        assert ours.get_json() == theirs.json()


def test_query_cli_against_prometheus(prom: Prom, capsys: pytest.CaptureFixture[str]) -> None:
    from controlplane.cli import main

    assert main(["query", "sum by (route) (demo_requests_total)", "--url", prom.url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "SERIES       VALUE",
        '{route="a"}      5',
        '{route="b"}      7',
    ]
    assert main(["query", "sum(demo_temperature", "--url", prom.url]) == 1
    assert "error: bad_data: " in capsys.readouterr().err


# (path, query string): requests Prometheus refuses before evaluating anything
REFUSED = [
    ("query", ""),
    ("query", "query=up&time=yesterday"),
    ("query", "query=up&timeout=5x"),
    ("query", "query=sum(up"),
    ("query", "query=up{job="),
    ("query_range", "query=up"),
    ("query_range", "query=up&start=0"),
    ("query_range", "query=up&start=0&end=1"),
    ("query_range", "query=up&start=10&end=1&step=1"),
    ("query_range", "query=up&start=0&end=1&step=0"),
    ("query_range", "query=up&start=0&end=86400&step=1"),
    ("query_range", "query=up[5m]&start=0&end=1&step=1"),
    ("series", ""),
    ("series", "match[]=up{"),
    ("series", 'match[]={job=~".*"}'),
    ("labels", "start=nope"),
    ("label/0bad/values", ""),
]


def _without_position(body: dict[str, Any]) -> dict[str, Any]:
    # where a parse error is reported is the PromQL parser's business, tested with it
    return {**body, "error": re.sub(r"\d+:\d+: parse error", "L:C: parse error", body["error"])}


@pytest.mark.parametrize(("path", "query"), REFUSED)
def test_embedded_mode_refuses_as_prometheus_does(prom: Prom, path: str, query: str) -> None:
    app = create_app(Config(store=StoreConfig(checkpoint_path=None)), pipeline=False)
    ours = app.test_client().get(f"/api/v1/{path}?{query}")
    theirs = requests.get(f"{prom.url}/api/v1/{path}?{query}", timeout=5)
    assert ours.status_code == theirs.status_code
    assert _without_position(ours.get_json()) == _without_position(theirs.json())
