"""create_app in embedded mode with a real scrape target: a prometheus_client exporter on a
free port is scraped into the store and answered through /api/v1; the checkpoint written at
stop brings the data back in a new app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.app import EXTENSION, ControlPlane, create_app
from controlplane.collect.scrape import ScrapeTarget
from controlplane.config import Config, ScrapeConfig, StoreConfig
from tests.controlplane.api.fakes import Exporter, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    yield exp
    exp.close()


def result(client: FlaskClient, query: str) -> list[dict[str, Any]]:
    body = client.post("/api/v1/query", data={"query": query}).get_json()
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def started(config: Config) -> tuple[Flask, ControlPlane]:
    app = create_app(config, pipeline=False)
    plane: ControlPlane = app.extensions[EXTENSION]
    plane.start()
    return app, plane


def test_scrape_store_and_query(exporter: Exporter, tmp_path: Path) -> None:
    instance = f"127.0.0.1:{exporter.port}"
    target = ScrapeTarget(
        job="demo", url=f"http://{instance}/metrics", interval_s=0.5, timeout_s=0.5
    )
    config = Config(
        scrape=ScrapeConfig(targets=(target,)),
        store=StoreConfig(checkpoint_path=tmp_path / "store"),
    )
    app, plane = started(config)
    try:
        client = app.test_client()
        found = wait_for(lambda: result(client, "demo_temperature"), "scraped sample")
        assert found[0]["metric"] == {
            "__name__": "demo_temperature",
            "instance": instance,
            "job": "demo",
            "room": "x",
        }
        assert found[0]["value"][1] == "21.5"
        # `up` is written just after the scraped samples: it may lag them by a moment
        assert wait_for(lambda: result(client, "up"), "up")[0]["value"][1] == "1"
        assert result(client, "sum(demo_requests_total)")[0]["value"][1] == "3"

        exporter.temperature.labels("x").set(30)
        wait_for(
            lambda: result(client, "demo_temperature")[0]["value"][1] == "30", "a later scrape"
        )
        samples = result(client, "count_over_time(demo_temperature[1m])")[0]["value"][1]
        assert int(samples) >= 2

        (active,) = client.get("/api/v1/targets").get_json()["data"]["activeTargets"]
        assert active["health"] == "up"
        assert active["labels"] == {"instance": instance, "job": "demo"}
        assert active["scrapeUrl"] == target.url
        assert active["lastScrape"] != "0001-01-01T00:00:00Z"
        labels = client.get("/api/v1/labels", query_string={"match[]": "demo_temperature"})
        assert labels.get_json()["data"] == ["__name__", "instance", "job", "room"]
        series = client.get("/api/v1/series", query_string={"match[]": "up"}).get_json()
        assert series["data"] == [{"__name__": "up", "instance": instance, "job": "demo"}]
        metrics = client.get("/metrics").get_data(as_text=True)
        assert 'controlplane_query_backend_info{backend="embedded"} 1.0' in metrics
    finally:
        plane.stop()

    # a new process over the same checkpoint, scraping nothing, still has the samples
    again, plane = started(Config(store=StoreConfig(checkpoint_path=tmp_path / "store")))
    try:
        restored = result(again.test_client(), "demo_temperature")
        assert restored[0]["value"][1] == "30"
    finally:
        plane.stop()


def test_a_target_that_goes_away_is_down(exporter: Exporter, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    config = Config(
        scrape=ScrapeConfig(
            targets=(ScrapeTarget(job="demo", url=url, interval_s=0.5, timeout_s=0.5),)
        ),
        store=StoreConfig(checkpoint_path=None),
    )
    app, plane = started(config)
    try:
        client = app.test_client()
        wait_for(lambda: result(client, "up == 1"), "up == 1")
        exporter.close()
        wait_for(lambda: result(client, "up == 0"), "up == 0")

        def target() -> dict[str, Any]:
            (active,) = client.get("/api/v1/targets").get_json()["data"]["activeTargets"]
            return active  # type: ignore[no-any-return]

        # the status is set just after `up` is stored
        active = wait_for(lambda: target()["health"] == "down" and target(), "health down")
        assert active["lastError"]
        # the series the failed scrape no longer exposes are marked stale
        wait_for(lambda: not result(client, "demo_temperature"), "stale series")
    finally:
        plane.stop()
