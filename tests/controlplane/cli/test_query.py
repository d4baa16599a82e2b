"""`controlplane query` against a control plane served on a free port (fake engine behind it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from werkzeug.serving import make_server

from controlplane.app import Components, create_app
from controlplane.cli import main
from controlplane.cli.query import default_url, parse_when, render, series_name
from controlplane.config import Config
from controlplane.model.series import Series, labels_from
from controlplane.promql.catalog import StoreCatalog
from controlplane.promql.results import QueryResult, ResultType
from tests.conftest import free_port
from tests.controlplane.api.fakes import FakeQuerier, FakeSource, series

NOW_S = 1_700_000_000


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    t = NOW_S * 1000
    source = FakeSource(
        [
            series({"__name__": "up", "job": "eu", "instance": "127.0.0.1:8101"}, [(t, 1)]),
            series({"__name__": "up", "job": "latam", "instance": "127.0.0.1:8102"}, [(t, 0)]),
            series(
                {"__name__": "casino_rounds_total", "region": "eu"},
                [(t - 60_000 + i * 15_000, float(i * 10)) for i in range(5)],
            ),
        ]
    )
    app = create_app(
        Config(),
        components=Components(querier=FakeQuerier(source), catalog=StoreCatalog(source)),
        clock=lambda: NOW_S,
    )
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_instant_query_prints_an_aligned_table(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "up", "--url", url, "--time", str(NOW_S)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "SERIES                                      VALUE",
        'up{instance="127.0.0.1:8101", job="eu"}         1',
        'up{instance="127.0.0.1:8102", job="latam"}      0',
    ]


def test_range_query_lists_each_series(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["query", "casino_rounds_total", "--url", url]
    args = ["--start", str(NOW_S - 60), "--end", str(NOW_S), "--step", "15s"]
    assert main(argv + args) == 0
    assert capsys.readouterr().out.splitlines() == [
        'casino_rounds_total{region="eu"}  (5 points)',
        "  2023-11-14T22:12:20Z  0 10 20 30 40",
    ]


def test_json_output_is_prometheus_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "up", "--url", url, "--json", "--time", str(NOW_S)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    assert {r["value"][1] for r in body["data"]["result"]} == {"0", "1"}


def test_parse_error_exits_1_with_the_position(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "sum(up", "--url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: bad_data: invalid parameter "query": 1:7: parse error:')


def test_unreachable_url_exits_1_naming_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["query", "up", "--url", url]) == 1
    assert capsys.readouterr().err == (
        f"error: unavailable: {url}/api/v1/query did not answer: connection refused\n"
    )


def test_bad_time_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "up", "--url", url, "--time", "soon"]) == 1
    assert 'cannot parse "soon" to a valid timestamp' in capsys.readouterr().err


def test_default_url() -> None:
    assert default_url({}) == "http://127.0.0.1:8000"
    assert default_url({"CONTROLPLANE_PORT": "8123"}) == "http://127.0.0.1:8123"
    assert default_url({"CONTROLPLANE_URL": "http://prom:9090"}) == "http://prom:9090"


def test_parse_when() -> None:
    now = NOW_S * 1000
    assert parse_when("now", now) == now
    assert parse_when("now-5m", now) == now - 300_000
    assert parse_when("now+1h", now) == now + 3_600_000
    assert parse_when("2023-11-14T22:13:20Z", now) == now


def test_render_scalar_string_gaps_and_empty() -> None:
    from controlplane.promql.results import InstantSample

    scalar = InstantSample(labels=(), t_ms=0, value=float("inf"))
    assert render(QueryResult(type=ResultType.SCALAR, scalar=scalar)) == ["scalar  +Inf"]
    assert render(QueryResult(type=ResultType.STRING, text="hi")) == ["hi"]
    assert render(QueryResult(type=ResultType.VECTOR)) == ["(no data)"]
    # a gap in the steps starts a new row; long runs wrap at 8 values
    times = [0, 1000, 2000, 10_000, *range(11_000, 20_000, 1000)]
    gappy = Series(
        labels=labels_from({"__name__": "x"}),
        timestamps=np.array(times, dtype=np.int64),
        values=np.arange(len(times), dtype=np.float64),
    )
    assert render(QueryResult(type=ResultType.MATRIX, matrix=(gappy,))) == [
        "x  (13 points)",
        "  1970-01-01T00:00:00Z  0 1 2",
        "  1970-01-01T00:00:10Z  3 4 5 6 7 8 9 10",
        "  1970-01-01T00:00:18Z  11 12",
    ]
    assert series_name(labels_from({"a": 'q"uote'})) == '{a="q\\"uote"}'
