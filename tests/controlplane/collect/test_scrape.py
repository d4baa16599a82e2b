"""Scraping real HTTP endpoints on 127.0.0.1: labels, report series, staleness, failures."""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import urllib3

from controlplane.collect.manager import ScrapeManager
from controlplane.collect.scrape import Health, Scraper, ScrapeTarget, apply_target_labels
from controlplane.errors import ScrapeError
from controlplane.model.series import STALE_NAN, Matcher, MatchOp, labels_from
from controlplane.tsdb.checkpoint import Checkpointer
from controlplane.tsdb.store import Store
from tests.conftest import free_port

GOOD = b'# TYPE req_total counter\nreq_total{code="200"} 10\nreq_total{code="500"} 2\nqueue 3\n'


@dataclass
class Route:
    body: bytes = GOOD
    status: int = 200
    content_type: str = "text/plain; version=0.0.4"
    delay_s: float = 0.0
    trickle_s: float = 0.0  # pause between 10-byte pieces of the body
    claimed_length: int | None = None  # Content-Length to announce (more than sent: cut short)


class Exporter:
    """A tiny HTTP server whose routes tests change on the fly."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path)
                hits[self.path] = hits.get(self.path, 0) + 1
                if route is None:
                    self.send_error(404)
                    return
                time.sleep(route.delay_s)
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(route.claimed_length or len(route.body)))
                self.end_headers()
                if route.trickle_s:
                    for i in range(0, len(route.body), 10):
                        self.wfile.write(route.body[i : i + 10])
                        self.wfile.flush()
                        time.sleep(route.trickle_s)
                else:
                    self.wfile.write(route.body)
                self.close_connection = route.claimed_length is not None

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hanging up on slow or cut-short bodies is the point here

        self.port = free_port()
        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    e = Exporter()
    yield e
    e.close()


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager()
    yield pool
    pool.clear()


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _value(store: Store, name: str, **labels: str) -> list[float]:
    matchers = [Matcher(name="__name__", op=MatchOp.EQ, value=name)] + [
        Matcher(name=k, op=MatchOp.EQ, value=v) for k, v in labels.items()
    ]
    series = store.select(matchers, 0, 2**50)
    assert len(series) == 1, series
    return series[0].values.tolist()


def _is_stale(value: float) -> bool:
    return struct.pack("<d", value) == struct.pack("<d", STALE_NAN)


def test_good_scrape_labels_and_report_series(
    exporter: Exporter, http: urllib3.PoolManager
) -> None:
    exporter.routes["/metrics"] = Route()
    store, clock = Store(), FakeClock()
    target = ScrapeTarget(job="agg", url=exporter.url("/metrics"), labels={"region": "eu"})
    scraper = Scraper(target, store, http=http, clock=clock)
    status = scraper.scrape()
    assert status.health is Health.UP and status.samples == 3 and status.series_added == 3
    instance = f"127.0.0.1:{exporter.port}"
    (req,) = store.select([Matcher(name="code", op=MatchOp.EQ, value="500")], 0, 2**50)
    assert dict(req.labels) == {
        "__name__": "req_total",
        "code": "500",
        "instance": instance,
        "job": "agg",
        "region": "eu",
    }
    assert req.timestamps.tolist() == [1_700_000_000_000]
    clock.now += 15
    assert scraper.scrape().series_added == 0
    assert _value(store, "up", job="agg") == [1.0, 1.0]
    assert _value(store, "scrape_samples_scraped", job="agg") == [3.0, 3.0]
    assert _value(store, "scrape_series_added", job="agg") == [3.0, 0.0]
    assert all(d >= 0 for d in _value(store, "scrape_duration_seconds", job="agg"))


def test_label_conflicts_are_exported_as_prometheus_does() -> None:
    target = labels_from({"job": "agg", "instance": "h:1"})
    exposed = labels_from({"__name__": "m", "job": "x", "exported_job": "y", "instance": "z"})
    assert dict(apply_target_labels(exposed, target, honor_labels=False)) == {
        "__name__": "m",
        "job": "agg",
        "instance": "h:1",
        "exported_job": "y",  # an exposed exported_job stays; the conflict moves one further
        "exported_exported_job": "x",
        "exported_instance": "z",
    }
    assert dict(apply_target_labels(exposed, target, honor_labels=True)) == {
        "__name__": "m",
        "job": "x",
        "exported_job": "y",
        "instance": "z",
    }


def test_missing_series_get_staleness_markers(
    exporter: Exporter, http: urllib3.PoolManager
) -> None:
    exporter.routes["/m"] = Route()
    store, clock = Store(), FakeClock()
    scraper = Scraper(ScrapeTarget(job="j", url=exporter.url("/m")), store, http=http, clock=clock)
    scraper.scrape()
    exporter.routes["/m"] = Route(body=b'req_total{code="200"} 11\nqueue 4\n')
    clock.now += 10
    scraper.scrape()
    gone = _value(store, "req_total", code="500")
    assert gone[0] == 2.0 and _is_stale(gone[1])
    assert _value(store, "queue") == [3.0, 4.0]
    exporter.routes["/m"] = Route(
        body=b"<html>down for maintenance</html>\n", content_type="text/plain"
    )
    clock.now += 10
    status = scraper.scrape()
    assert status.health is Health.DOWN and "line 1" in status.last_error
    assert _is_stale(_value(store, "queue")[-1])
    assert _value(store, "up") == [1.0, 1.0, 0.0]
    clock.now += 10
    scraper.scrape()  # failing again adds no second marker
    assert len(_value(store, "queue")) == 3


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(delay_s=0.6), "timed out"),
        (Route(body=GOOD * 40, trickle_s=0.02), "not complete within"),
        (Route(body=b"<html><body>login</body></html>", content_type="text/html"), "Content-Type"),
        (Route(body=GOOD, claimed_length=len(GOOD) + 50), "IncompleteRead"),
        (Route(body=GOOD[:-9]), "no final newline"),
        (Route(body=b"\x00\x01garbage\n"), "line 1"),
        (Route(body=b"\xff\xfe\n"), "not UTF-8"),
        (Route(status=500), "HTTP status 500"),
    ],
)
def test_failed_scrapes_record_up_0_and_append_nothing(
    exporter: Exporter,
    http: urllib3.PoolManager,
    caplog: pytest.LogCaptureFixture,
    route: Route,
    reason: str,
) -> None:
    exporter.routes["/bad"] = route
    store = Store()
    target = ScrapeTarget(job="j", url=exporter.url("/bad"), interval_s=1, timeout_s=0.3)
    with caplog.at_level(logging.WARNING, logger="controlplane.collect.scrape"):
        status = Scraper(target, store, http=http).scrape()
    assert status.health is Health.DOWN
    assert reason in status.last_error
    assert status.last_duration_s < 2
    assert store.label_values("__name__", [], 0, 2**50) == [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
        "up",
    ]
    assert _value(store, "up") == [0.0]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "job=j" in line and reason in line


def test_connection_refused(http: urllib3.PoolManager) -> None:
    target = ScrapeTarget(job="j", url=f"http://127.0.0.1:{free_port()}/metrics", timeout_s=1)
    status = Scraper(target, Store(), http=http).scrape()
    assert status.health is Health.DOWN and "connection refused" in status.last_error


def test_target_validation() -> None:
    with pytest.raises(ScrapeError, match="'ftp://x'"):
        ScrapeTarget(job="j", url="ftp://x")
    with pytest.raises(ScrapeError, match="timeout_s <= interval_s"):
        ScrapeTarget(job="j", url="http://h:1/m", interval_s=1, timeout_s=2)
    assert ScrapeTarget(job="j", url="http://h:9/m").instance == "h:9"


def test_explicit_timestamps_are_honoured_and_never_marked_stale(
    exporter: Exporter, http: urllib3.PoolManager
) -> None:
    exporter.routes["/m"] = Route(body=b"with_ts 1 1600000000000\nplain 2\n")
    store, clock = Store(), FakeClock()
    scraper = Scraper(ScrapeTarget(job="j", url=exporter.url("/m")), store, http=http, clock=clock)
    scraper.scrape()
    exporter.routes["/m"] = Route(body=b"other 3\n")
    clock.now += 5
    scraper.scrape()
    (with_ts,) = store.select([Matcher(name="__name__", op=MatchOp.EQ, value="with_ts")], 0, 2**50)
    assert with_ts.timestamps.tolist() == [1_600_000_000_000] and with_ts.values.tolist() == [1.0]
    assert _is_stale(_value(store, "plain")[-1])


def test_manager_runs_targets_independently_and_checkpoints(
    exporter: Exporter, tmp_path: Path
) -> None:
    exporter.routes["/good"] = Route()
    exporter.routes["/slow"] = Route(delay_s=0.5)
    store = Store()
    cp = Checkpointer(store, tmp_path)
    cp.load()
    good = ScrapeTarget(job="good", url=exporter.url("/good"), interval_s=0.2, timeout_s=0.2)
    slow = ScrapeTarget(job="slow", url=exporter.url("/slow"), interval_s=0.2, timeout_s=0.1)
    manager = ScrapeManager(store, [good, slow], checkpointer=cp)
    manager.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and exporter.hits.get("/good", 0) < 4:
            time.sleep(0.05)
    finally:
        manager.stop()
    statuses = {t.job: s for t, s in manager.statuses()}
    assert statuses["good"].health is Health.UP
    assert statuses["slow"].health is Health.DOWN and "timed out" in statuses["slow"].last_error
    assert len(_value(store, "up", job="good")) >= 4
    assert set(_value(store, "up", job="slow")) == {0.0}
    assert (tmp_path / "wal-00000000.log").stat().st_size > 0  # the checkpoint job ran
    manager.remove_target(good.key)
    assert _is_stale(_value(store, "up", job="good")[-1])
    assert _is_stale(_value(store, "queue", job="good")[-1])
    cp.close()


def test_manager_scrape_now_and_duplicate_targets(exporter: Exporter) -> None:
    exporter.routes["/m"] = Route()
    store = Store()
    target = ScrapeTarget(job="j", url=exporter.url("/m"))
    manager = ScrapeManager(store, [target])
    try:
        (status,) = manager.scrape_now()
        assert status.health is Health.UP
        with pytest.raises(ScrapeError, match="already scraped"):
            manager.add_target(target)
        assert np.isclose(_value(store, "queue", job="j"), [3.0]).all()
    finally:
        manager.stop()
        manager._http.clear()
