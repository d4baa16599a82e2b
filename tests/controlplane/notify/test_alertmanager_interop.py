"""The real Alertmanager (Debian's prometheus-alertmanager) delivers to our ingest endpoint.

Alertmanager gets an alert on its API, groups it (group_wait 1s) and POSTs its webhook, with
our bearer token, to the blueprint served by waitress; the alert enters our dispatcher. The
webhook it sends is also checked against our own computation of the same things: the
fingerprint, and the group key of the same routing tree parsed by our routing module.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from controlplane.api.notify import create_blueprint
from controlplane.model.series import labels_from
from controlplane.notify.alerts import GroupKey, fingerprint
from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.routing import load_routing, parse_routing
from controlplane.notify.silences import SilenceStore
from controlplane.operate import Silencing
from controlplane.pipeline import rule_groups
from controlplane.rules.model import AlertingRule
from tests.conftest import ROOT, ServedApp, free_port, require_binary, stop_process
from tests.controlplane.notify.conftest import memory_outbox
from tests.people import people, token

TOKEN = token("oncall")  # Alertmanager sends an operator's token
ALERT_LABELS = {"alertname": "InteropProviderDown", "region": "eu", "severity": "page"}


def am_config(hook_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"receiver": "controlplane", "matchers": ['severity="page"']}],
        },
        "receivers": [
            {"name": "default"},
            {
                "name": "controlplane",
                "webhook_configs": [
                    {
                        "url": hook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": TOKEN}},
                    }
                ],
            },
        ],
    }


def recording(app: Flask, bodies: list[dict[str, Any]]) -> Callable[..., Any]:
    """WSGI middleware keeping a copy of each webhook body Alertmanager sends."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/api/v1/alertmanager":
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            bodies.append(json.loads(raw))
            environ["wsgi.input"] = io.BytesIO(raw)
        return app(environ, start_response)

    return wsgi


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], str]]:
    binary = require_binary("prometheus-alertmanager")
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(config: dict[str, Any]) -> str:
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = (tmp_path / "alertmanager.log").open("ab")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url, proc, tmp_path), 15, "alertmanager to be ready")
        return url

    yield start
    for proc, log in started:
        stop_process(proc)
        log.close()


def _ready(url: str, proc: subprocess.Popen[bytes], tmp_path: Path) -> bool:
    if proc.poll() is not None:
        raise RuntimeError((tmp_path / "alertmanager.log").read_text()[-3000:])
    try:
        with requests.get(f"{url}/-/ready", timeout=1) as response:
            return response.status_code == 200
    except requests.RequestException:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def post_alert(am_url: str, **extra: str) -> None:
    body = [
        {
            "labels": ALERT_LABELS,
            "annotations": {"summary": "provider pv1 is down"},
            "generatorURL": "http://prometheus.example/graph",
            **extra,
        }
    ]
    with requests.post(f"{am_url}/api/v2/alerts", json=body, timeout=5) as response:
        assert response.status_code == 200, response.text


@pytest.mark.slow
def test_alertmanager_webhook_reaches_our_dispatcher(
    serve: Callable[[Any], ServedApp],
    alertmanager: Callable[[dict[str, Any]], str],
    silence_store: SilenceStore,
) -> None:
    ours = parse_routing(
        {"route": {"receiver": "cp", "group_wait": "0s"}, "receivers": [{"name": "cp"}]}
    )
    dispatcher = Dispatcher(
        routing=ours, integrations={"cp": ()}, outbox=memory_outbox(), silences=silence_store
    )
    app = Flask(__name__)
    app.register_blueprint(
        create_blueprint(
            dispatcher=dispatcher, silencing=Silencing(silences=silence_store), access=people()
        )
    )
    bodies: list[dict[str, Any]] = []
    served = serve(recording(app, bodies))
    config = am_config(f"{served.url}/api/v1/alertmanager")
    am_url = alertmanager(config)

    post_alert(am_url)
    wait_until(lambda: bool(dispatcher.alerts()), 10, "the webhook to deliver the alert")
    (got,) = dispatcher.alerts()
    assert got.label_map == {**ALERT_LABELS, "source": "alertmanager"}
    assert dict(got.annotations) == {"summary": "provider pv1 is down"}
    assert got.generator_url == "http://prometheus.example/graph"
    assert got.ends_at is None and got.status_at(datetime.now(UTC)).value == "firing"

    # what Alertmanager sent agrees with our own fingerprint and group key computations
    first = bodies[0]
    assert first["version"] == "4" and first["status"] == "firing"
    assert first["alerts"][0]["fingerprint"] == fingerprint(labels_from(ALERT_LABELS))
    same_tree = copy.deepcopy(config)
    del same_tree["receivers"][1]["webhook_configs"][0]["http_config"]
    (route,) = parse_routing(same_tree).route.match(labels_from(ALERT_LABELS))
    key = GroupKey(route_key=route.key, labels=route.group_labels(labels_from(ALERT_LABELS)))
    assert first["groupKey"] == str(key) == '{}/{severity="page"}:{alertname="InteropProviderDown"}'

    # resolving it in Alertmanager resolves it here
    post_alert(am_url, endsAt=datetime.now(UTC).isoformat())
    wait_until(lambda: len(bodies) >= 2, 10, "the resolved notification")
    assert bodies[-1]["status"] == "resolved"
    (resolved,) = dispatcher.alerts()
    assert resolved.status_at(datetime.now(UTC)).value == "resolved"
    assert resolved.starts_at == got.starts_at


def test_the_shipped_routing_sends_every_shipped_alert_where_amtool_does(tmp_path: Path) -> None:
    """`amtool config routes test` on config/routing.yml (less our log_configs) names the same
    receivers as our router, for the static labels of every shipped alert."""
    amtool = require_binary("amtool")
    shipped = ROOT / "config" / "routing.yml"
    doc = yaml.safe_load(shipped.read_text())
    for receiver in doc["receivers"]:
        receiver.pop("log_configs", None)
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(doc))
    ours = load_routing(shipped)
    alerts = [
        {"alertname": rule.name, **dict(rule.labels)}
        for group in rule_groups(ROOT / "rules")
        for rule in group.rules
        if isinstance(rule, AlertingRule)
    ]
    assert {"Watchdog", "ProviderFailing"} <= {a["alertname"] for a in alerts}
    config = f"--config.file={tmp_path / 'alertmanager.yml'}"
    for labels in [*alerts, {"alertname": "Unrouted"}]:
        args = [f"{k}={v}" for k, v in sorted(labels.items())]
        theirs = subprocess.run(
            [amtool, "config", "routes", "test", config, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        mine = [r.options.receiver for r in ours.route.match(labels_from(labels))]
        assert theirs.stdout.strip().split(",") == mine, labels
