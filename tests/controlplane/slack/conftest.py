"""A control plane with Slack wired as in production, over a real Remediator and Operations.

Runbooks: `drain-region` waits for two approvers (RegionDown), `replay-wallet-queue` runs by
hand (WalletQueueBacklog). Approved executions go to `jobs` (the executor's queue) and never
reach an aggregator. People are tests/people.py's (Slack ids U<NAME>: UALICE, UVERA, ...).
Slack's side is a served recorder: each `response_url` POST and Web API call lands in
`world.slack_side.posts`. Requests are signed as Slack signs them (`tests.controlplane.slack
.requests`), with the world's secret and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from sqlalchemy.engine import Engine

from controlplane import audit
from controlplane.access import AccessHolder
from controlplane.access import session as access_session
from controlplane.api.runbooks import create_blueprint as runbooks_blueprint
from controlplane.config import SlackConfig
from controlplane.db import create_engine
from controlplane.notify import silences as notify_silences
from controlplane.notify.silences import SilenceStore
from controlplane.operate import Operations, Silencing
from controlplane.promql.results import QueryResult, ResultType
from controlplane.runbooks import store as runbook_store
from controlplane.runbooks.act import ActionRunner, AggregatorTargets
from controlplane.runbooks.engine import AlertEvent, Remediator
from controlplane.runbooks.guards import Fleet
from controlplane.runbooks.load import load_runbook
from controlplane.runbooks.store import Execution, ExecutionStore
from controlplane.runbooks.switches import Switches
from controlplane.slack import Slack, build_slack
from controlplane.slack import tables as slack_tables
from tests.conftest import ServedApp
from tests.people import people

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documentation's example signing secret
DRAIN = """
name: drain-region
description: Drain a failing region at the front door.
trigger: {alert: RegionDown, matchers: {severity: page}}
mode: approval
approvers: 2
approval_timeout: 10m
guards: {cooldown: 0s, max_concurrent: 5}
steps:
  - id: drain
    action: region.drain
    with: {region: "{{ $labels.region }}"}
"""
REPLAY = """
name: replay-wallet-queue
description: Re-drive the wallet retry queue.
trigger: {alert: WalletQueueBacklog}
mode: manual
guards: {cooldown: 0s, max_concurrent: 5}
steps:
  - id: replay
    action: wallet.replay_queue
    with: {region: "{{ $labels.region }}", max_items: 10}
"""
REGION_DOWN = {"alertname": "RegionDown", "severity": "page", "region": "eu"}


class Clock:
    """Wall time, frozen and moved by hand: Slack's signatures are checked against it too."""

    def __init__(self) -> None:
        self.now = float(int(datetime.now(UTC).timestamp()))

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class NoQueries:
    def instant(self, expr: str, time_ms: int) -> QueryResult:
        return QueryResult(type=ResultType.VECTOR, vector=())

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        raise NotImplementedError


@dataclass
class SlackSide:
    """Slack's end of response_url and the Web API: records what the control plane sent."""

    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def app(self) -> Flask:
        app = Flask("slack-side")

        @app.post("/hooks/<path:rest>")
        def hook(rest: str) -> Any:
            self.posts.append((request.path, request.get_json(force=True)))
            return "ok"

        @app.post("/api/<method>")
        def web_api(method: str) -> Any:
            body = request.get_json(silent=True) or request.form.to_dict()
            self.posts.append((f"/api/{method}", body))
            return jsonify({"ok": True})

        return app

    def texts(self) -> list[str]:
        return [str(body.get("text", "")) for _path, body in self.posts]

    def ephemerals(self) -> list[str]:
        return [str(b["text"]) for _p, b in self.posts if b.get("response_type") == "ephemeral"]

    def replaced(self) -> list[list[dict[str, Any]]]:
        return [body["blocks"] for _p, body in self.posts if body.get("replace_original")]


@dataclass
class SlackWorld:
    app: Flask
    slack: Slack
    ops: Operations
    remediator: Remediator
    executions: ExecutionStore
    log: audit.AuditLog
    engine: Engine
    clock: Clock
    access: AccessHolder
    jobs: list[Callable[[], Any]]
    slack_side: SlackSide

    @property
    def response_url(self) -> str:
        return f"{self.slack_side.url}/hooks/T1/B1/x"

    def pending_drain(self) -> Execution:
        """RegionDown fires: drain-region waits for two approvers (asked by controlplane)."""
        [ex] = self.remediator.on_alert(
            AlertEvent(
                labels=REGION_DOWN, fingerprint="fp-eu", firing=True, active_at=self.clock.now
            )
        )
        return ex

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.log.events(limit=10_000) if e.kind == kind]

    def settle(self) -> None:
        assert self.slack.worker is not None and self.slack.worker.drain(10)


def _tables(engine: Engine) -> None:
    for metadata in (
        runbook_store.metadata,
        access_session.metadata,
        notify_silences.metadata,
        slack_tables.metadata,
    ):
        metadata.create_all(engine)
    audit.install(engine)


@pytest.fixture
def slack_side() -> Iterator[SlackSide]:
    side = SlackSide()
    served = ServedApp(side.app(), threads=2)
    side.url = served.url
    yield side
    served.close()


def build_world(
    tmp_path: Path, side: SlackSide, *, secret: str | None = SECRET, api_url: str | None = None
) -> SlackWorld:
    engine = create_engine(f"sqlite:///{tmp_path}/cp.db")
    _tables(engine)
    clock, jobs = Clock(), list[Callable[[], Any]]()
    (tmp_path / "drain.yaml").write_text(DRAIN)
    (tmp_path / "replay.yaml").write_text(REPLAY)
    runbooks = [load_runbook(tmp_path / n) for n in ("drain.yaml", "replay.yaml")]
    executions, switches = ExecutionStore(engine, clock), Switches(engine, clock)
    log = audit.AuditLog(engine, clock)
    fleet = Fleet(providers={"eu": frozenset({"pv1"})}, healthy_regions=frozenset({"eu", "latam"}))
    remediator = Remediator(
        runbooks,
        executions,
        switches,
        log,
        ActionRunner(AggregatorTargets(), NoQueries(), clock=clock),
        fleet=lambda: fleet,
        clock=clock,
        submit=jobs.append,
    )
    silences = SilenceStore(engine, clock=clock.utc)
    ops = Operations(
        remediator=remediator,
        executions=executions,
        switches=switches,
        audit=log,
        silencing=Silencing(silences=silences, audit=log),
        clock=clock,
    )
    access = people()
    config = SlackConfig(
        api_url=api_url or f"{side.url}/api/", bot_token="xoxb-test", signing_secret=secret
    )
    slack = build_slack(config, ops=ops, access=access, engine=engine, clock=clock)
    app = Flask("controlplane-test")
    app.register_blueprint(slack.blueprint)
    app.register_blueprint(runbooks_blueprint(ops, access=access))
    return SlackWorld(
        app, slack, ops, remediator, executions, log, engine, clock, access, jobs, side
    )


@pytest.fixture
def world(tmp_path: Path, slack_side: SlackSide) -> Iterator[SlackWorld]:
    built = build_world(tmp_path, slack_side)
    yield built
    built.slack.close()
    built.engine.dispose()
