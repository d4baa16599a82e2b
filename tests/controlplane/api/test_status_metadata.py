"""/api/v1/status/buildinfo, /api/v1/metadata and /api/v1/targets/metadata.

Embedded mode: metadata from real scrapes of two local text-format exporters, checked against
the bodies and, with the real `prometheus` binary scraping the same exporters, against
Prometheus's own answers. Remote mode: the remote's answers passed through."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from controlplane.api.prometheus import create_blueprint
from controlplane.app import EXTENSION, ControlPlane, create_app
from controlplane.collect.manager import ScrapeManager
from controlplane.collect.scrape import Health, ScrapeTarget
from controlplane.config import Config, QueryConfig, ScrapeConfig, StoreConfig
from controlplane.promql.catalog import StoreCatalog
from tests.conftest import free_port, require_binary, stop_process
from tests.controlplane.api.fakes import FakeQuerier, FakeSource, FakeTargets

BODY_A = """\
# HELP casino_rounds_total Rounds played.
# TYPE casino_rounds_total counter
casino_rounds_total{outcome="ok"} 10
casino_rounds_total{outcome="failed"} 1
# HELP casino_launch_seconds Launch latency.
# TYPE casino_launch_seconds histogram
# UNIT casino_launch_seconds seconds
casino_launch_seconds_bucket{le="0.1"} 3
casino_launch_seconds_bucket{le="+Inf"} 5
casino_launch_seconds_sum 0.9
casino_launch_seconds_count 5
# HELP casino_bet_amount Bets, a \\\\ backslash and a\\nnewline.
# TYPE casino_bet_amount summary
casino_bet_amount{quantile="0.5"} 100
casino_bet_amount{quantile="0.99"} 5000
casino_bet_amount_sum 12345
casino_bet_amount_count 70
# TYPE casino_legacy untyped
casino_legacy 1
# HELP casino_queue_depth Queue depth.
# TYPE casino_queue_depth gauge
casino_queue_depth 4
no_metadata_at_all 7
"""
# the same families, one HELP worded differently, and one family only this target has
BODY_B = BODY_A.replace("Queue depth.", "Depth of the queue.") + (
    "# HELP casino_only_b Only on b.\n# TYPE casino_only_b gauge\ncasino_only_b 1\n"
)


def meta(type_: str, help_: str = "", unit: str = "") -> dict[str, str]:
    return {"type": type_, "help": help_, "unit": unit}


EXPECTED = {
    "casino_bet_amount": [meta("summary", "Bets, a \\ backslash and a\nnewline.")],
    "casino_launch_seconds": [meta("histogram", "Launch latency.", "seconds")],
    "casino_legacy": [meta("unknown")],
    "casino_only_b": [meta("gauge", "Only on b.")],
    "casino_queue_depth": [meta("gauge", "Queue depth."), meta("gauge", "Depth of the queue.")],
    "casino_rounds_total": [meta("counter", "Rounds played.")],
}


class TextExporter:
    """Serves `body` at /metrics as text format 0.0.4, whatever the client accepts."""

    def __init__(self, body: str) -> None:
        self.body, self.status = body, 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = owner.body.encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def exporters() -> Iterator[tuple[TextExporter, TextExporter]]:
    a, b = TextExporter(BODY_A), TextExporter(BODY_B)
    yield a, b
    a.close()
    b.close()


@dataclass
class Embedded:
    client: FlaskClient
    scraper: ScrapeManager


@pytest.fixture
def embedded(exporters: tuple[TextExporter, TextExporter]) -> Iterator[Embedded]:
    """The real app in embedded mode with both exporters as targets, scraped once."""
    for exporter, body in zip(exporters, (BODY_A, BODY_B), strict=True):
        exporter.body, exporter.status = body, 200
    targets = tuple(
        ScrapeTarget(job=job, url=f"http://{e.address}/metrics", timeout_s=2.0)
        for job, e in zip("ab", exporters, strict=True)
    )
    config = Config(scrape=ScrapeConfig(targets=targets), store=StoreConfig(checkpoint_path=None))
    app = create_app(config, pipeline=False)
    plane: ControlPlane = app.extensions[EXTENSION]
    scraper = plane.components.scraper
    assert scraper is not None
    assert [s.health for s in scraper.scrape_now()] == [Health.UP, Health.UP]
    yield Embedded(client=app.test_client(), scraper=scraper)
    plane.stop()


def get(client: FlaskClient, path: str, **form: str) -> tuple[int, Any]:
    r = client.get(f"/api/v1/{path}", query_string=form)
    return r.status_code, r.get_json()


def test_buildinfo_has_prometheus_shape_and_a_version_grafana_reads(embedded: Embedded) -> None:
    code, body = get(embedded.client, "status/buildinfo")
    assert code == 200 and body["status"] == "success"
    data = body["data"]
    prometheus_fields = ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"]
    assert all(isinstance(data[f], str) for f in prometheus_fields)
    assert re.fullmatch(r"2\.\d+\.\d+", data["version"])  # a Prometheus 2.x release, semver
    assert data["application"] == "casino-controlplane"
    assert data["applicationVersion"] == importlib.metadata.version("casino-controlplane")
    assert "features" not in data  # Grafana would take us for Mimir/Cortex


def test_metadata_from_real_scrapes(embedded: Embedded) -> None:
    code, body = get(embedded.client, "metadata")
    assert code == 200
    assert body == {"status": "success", "data": EXPECTED}
    assert list(body["data"]) == sorted(EXPECTED)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"metric": "casino_launch_seconds"}, ["casino_launch_seconds"]),
        ({"metric": "casino_launch_seconds_bucket"}, []),  # families, not series, have metadata
        ({"metric": "no_metadata_at_all"}, []),
        ({"metric": ""}, sorted(EXPECTED)),
        ({"limit": "2"}, ["casino_bet_amount", "casino_launch_seconds"]),
        ({"limit": "0"}, []),
        ({"limit": "-1"}, sorted(EXPECTED)),
        ({"limit": "+1"}, ["casino_bet_amount"]),
        ({"limit": "1", "metric": "casino_legacy"}, ["casino_legacy"]),
    ],
)
def test_metadata_metric_and_limit(
    embedded: Embedded, form: dict[str, str], expected: list[str]
) -> None:
    code, body = get(embedded.client, "metadata", **form)
    assert code == 200
    assert body["data"] == {name: EXPECTED[name] for name in expected}


def test_metadata_limit_per_metric(embedded: Embedded) -> None:
    _, body = get(embedded.client, "metadata", limit_per_metric="1")
    assert body["data"]["casino_queue_depth"] == [meta("gauge", "Queue depth.")]
    assert {name: len(v) for name, v in body["data"].items()} == dict.fromkeys(EXPECTED, 1)
    for no_limit in ("0", "-3", "2"):
        assert get(embedded.client, "metadata", limit_per_metric=no_limit)[1]["data"] == EXPECTED


@pytest.mark.parametrize("name", ["limit", "limit_per_metric"])
@pytest.mark.parametrize("value", ["abc", "1.5", " 1", "1 ", "0x10", "99999999999999999999"])
def test_metadata_refuses_limits_that_are_not_numbers(
    embedded: Embedded, name: str, value: str
) -> None:
    code, body = get(embedded.client, "metadata", **{name: value})
    assert code == 400
    assert body == {"status": "error", "errorType": "bad_data", "error": f"{name} must be a number"}


def test_metadata_follows_the_last_good_scrape(
    embedded: Embedded, exporters: tuple[TextExporter, TextExporter]
) -> None:
    a, b = exporters
    a.body = "# HELP casino_queue_depth Renamed help.\n# TYPE casino_queue_depth gauge\nx 1\n"
    b.status = 500
    statuses = embedded.scraper.scrape_now()
    assert [s.health for s in statuses] == [Health.UP, Health.DOWN]
    _, body = get(embedded.client, "metadata")
    # a: what its new body says; b: kept from its last good scrape
    assert body["data"]["casino_queue_depth"] == [
        meta("gauge", "Renamed help."),
        meta("gauge", "Depth of the queue."),
    ]
    assert body["data"]["casino_legacy"] == [meta("unknown")]  # b still has it
    assert body["data"]["casino_only_b"] == EXPECTED["casino_only_b"]


def test_targets_metadata(embedded: Embedded, exporters: tuple[TextExporter, TextExporter]) -> None:
    a, b = exporters
    _, body = get(embedded.client, "targets/metadata", match_target='{job="a"}')
    target = {"instance": a.address, "job": "a"}
    in_body_order = ["rounds_total", "launch_seconds", "bet_amount", "legacy", "queue_depth"]
    assert body["data"] == [
        {"target": target, "metric": f"casino_{name}", **EXPECTED[f"casino_{name}"][0]}
        for name in in_body_order
    ]
    _, one = get(embedded.client, "targets/metadata", metric="casino_queue_depth")
    assert one["data"] == [
        {"target": target, **meta("gauge", "Queue depth.")},
        {"target": {"instance": b.address, "job": "b"}, **meta("gauge", "Depth of the queue.")},
    ]
    # as Prometheus: the limit is checked per target, so a target's families stay together
    _, limited = get(embedded.client, "targets/metadata", limit="1")
    assert len(limited["data"]) == len(EXPECTED) - 1
    assert get(embedded.client, "targets/metadata", limit="0")[1]["data"] == []
    selected = get(embedded.client, "targets/metadata", match_target='{job=~"b|c"}')[1]["data"]
    assert {e["target"]["job"] for e in selected} == {"b"}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"limit": "x"}, "limit must be a number"),
        ({"match_target": '{job="a"'}, 'invalid parameter "match_target": '),
        ({"match_target": '{job=~".*"}'}, "at least one non-empty matcher"),
    ],
)
def test_targets_metadata_refusals(embedded: Embedded, form: dict[str, str], message: str) -> None:
    code, body = get(embedded.client, "targets/metadata", **form)
    assert code == 400 and body["errorType"] == "bad_data"
    assert message in body["error"]


def test_without_scraping_there_is_no_metadata() -> None:
    source = FakeSource([])
    app = Flask("test")
    app.register_blueprint(
        create_blueprint(
            querier=FakeQuerier(source), catalog=StoreCatalog(source), targets=FakeTargets([])
        )
    )
    client = app.test_client()
    assert get(client, "metadata") == (200, {"status": "success", "data": {}})
    assert get(client, "targets/metadata") == (200, {"status": "success", "data": []})
    assert get(client, "status/buildinfo")[1]["data"]["version"].startswith("2.")


@pytest.mark.parametrize(
    "path", ["status/buildinfo", "metadata", "targets", "targets/metadata?metric=up"]
)
def test_unreachable_remote_is_unavailable(path: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    app = create_app(Config(query=QueryConfig(prometheus_url=url, timeout_s=2)), pipeline=False)
    r = app.test_client().get(f"/api/v1/{path}")
    assert r.status_code == 503
    body = r.get_json()
    assert (body["status"], body["errorType"]) == ("error", "unavailable")
    assert url in body["error"]
    app.extensions[EXTENSION].stop()


# -- against the real Prometheus, scraping the same bodies -----------------------------------


@dataclass(frozen=True)
class Prom:
    url: str
    client: FlaskClient  # our embedded app, scraping the same two exporters once


def _complete(url: str) -> bool:
    try:
        data = requests.get(f"{url}/api/v1/metadata", timeout=1).json()["data"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    return "casino_only_b" in data and len(data.get("casino_queue_depth", [])) == 2


def _start_prometheus(binary: str, tmp: Path, targets: dict[str, str]) -> subprocess.Popen[bytes]:
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs: [{{targets: ['{address}']}}]\n"
        for job, address in targets.items()
    )
    (tmp / "prometheus.yml").write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n{jobs}")
    with (tmp / "prometheus.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{targets.pop('port')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    binary = require_binary("prometheus")
    a, b = TextExporter(BODY_A), TextExporter(BODY_B)
    port = free_port()
    tmp = tmp_path_factory.mktemp("prometheus")
    proc = _start_prometheus(binary, tmp, {"a": a.address, "b": b.address, "port": str(port)})
    targets = tuple(
        ScrapeTarget(job=job, url=f"http://{e.address}/metrics", timeout_s=2.0)
        for job, e in (("a", a), ("b", b))
    )
    config = Config(scrape=ScrapeConfig(targets=targets), store=StoreConfig(checkpoint_path=None))
    app = create_app(config, pipeline=False)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _complete(url):
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus had no metadata within 30s"
            time.sleep(0.2)
        app.extensions[EXTENSION].components.scraper.scrape_now()
        yield Prom(url=url, client=app.test_client())
    finally:
        app.extensions[EXTENSION].stop()
        stop_process(proc)
        a.close()
        b.close()


def _by_name(data: dict[str, list[dict[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    # Prometheus lists a family's entries in map order; and it reads `# UNIT` only from
    # OpenMetrics bodies, where we take it from text bodies too: compare type and help
    return {name: sorted((e["type"], e["help"]) for e in entries) for name, entries in data.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "form",
    [
        {},
        {"metric": "casino_queue_depth"},
        {"metric": "casino_launch_seconds_bucket"},
        {"metric": "casino_legacy"},
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "2"},
        {"limit": "abc"},
        # no limit_per_metric: Debian's Prometheus (2.42) predates it and ignores it; the
        # tests above hold it to the documented meaning
    ],
)
def test_embedded_metadata_answers_as_prometheus(prom: Prom, form: dict[str, str]) -> None:
    code, ours = get(prom.client, "metadata", **form)
    theirs = requests.get(f"{prom.url}/api/v1/metadata", params=form, timeout=5)
    assert code == theirs.status_code
    if code != 200:
        assert ours == theirs.json()
    elif "limit" in form:
        # which families a limit keeps is Prometheus's map order: compare how many
        assert len(ours["data"]) == len(theirs.json()["data"])
    else:
        assert _by_name(ours["data"]) == _by_name(theirs.json()["data"])
        # the comparison is not between two empty answers, but where it should be
        assert bool(ours["data"]) is not form.get("metric", "").endswith("_bucket")


@pytest.mark.slow
@pytest.mark.parametrize(
    "form", [{"metric": "casino_bet_amount"}, {"match_target": '{job="b"}'}, {"limit": "x"}]
)
def test_embedded_targets_metadata_answers_as_prometheus(prom: Prom, form: dict[str, str]) -> None:
    code, ours = get(prom.client, "targets/metadata", **form)
    theirs = requests.get(f"{prom.url}/api/v1/targets/metadata", params=form, timeout=5)
    assert code == theirs.status_code
    if code != 200:
        assert ours == theirs.json()
        return

    def entries(data: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (sorted(e["target"].items()), e.get("metric"), e["type"], e["help"]) for e in data
        )

    assert entries(ours["data"]) == entries(theirs.json()["data"])
    assert ours["data"]
