from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from controlplane import audit
from controlplane.db import create_engine
from controlplane.promql.results import InstantSample, QueryResult, ResultType
from controlplane.runbooks.act import ActionRunner, AggregatorTargets
from controlplane.runbooks.engine import Remediator
from controlplane.runbooks.guards import Fleet
from controlplane.runbooks.load import load_runbook
from controlplane.runbooks.store import ExecutionStore, metadata
from controlplane.runbooks.switches import Switches


@dataclass
class FakeAdmin:
    """The aggregator admin API at the HTTP boundary: records calls, replays Idempotency-Keys."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    acted: list[str] = field(default_factory=list)  # paths of calls that really acted
    seen: dict[str, Any] = field(default_factory=dict)
    fail_paths: set[str] = field(default_factory=set)
    url: str = ""

    def app(self) -> Flask:
        app = Flask("fake-admin")

        @app.post("/admin/<path:rest>")
        def admin(rest: str) -> Any:
            key = request.headers.get("Idempotency-Key", "")
            assert request.headers.get("Authorization") == "Bearer tok"
            self.calls.append((request.path, key, request.get_json(silent=True) or {}))
            if request.path in self.fail_paths:
                return jsonify({"error": "boom"}), 422
            if key not in self.seen:
                self.acted.append(request.path)
                self.seen[key] = {"ok": True, "path": request.path}
            return jsonify(self.seen[key])

        return app


@contextlib.contextmanager
def served_admin() -> Iterator[FakeAdmin]:
    fake = FakeAdmin()
    server = make_server("127.0.0.1", 0, fake.app(), threaded=True)
    # a short poll: shutdown() waits for it, at every test's teardown (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def admin() -> Iterator[FakeAdmin]:
    with served_admin() as fake:
        yield fake


class FakeQuerier:
    """PromQL conditions as a table: expression -> holds."""

    def __init__(self) -> None:
        self.holding: set[str] = set()
        self.asked: list[str] = []

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        self.asked.append(expr)
        samples = (
            (InstantSample(labels=(), t_ms=time_ms, value=1.0),) if expr in self.holding else ()
        )
        return QueryResult(type=ResultType.VECTOR, vector=samples)

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        raise NotImplementedError


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


@dataclass
class World:
    remediator: Remediator
    admin: FakeAdmin
    querier: FakeQuerier
    clock: Clock
    store: ExecutionStore
    switches: Switches
    log: audit.AuditLog
    notes: list[str]
    fleet: dict[str, Any]
    runbook_dir: Path

    def rebuild(self) -> Remediator:
        """A fresh remediator over the same database, as after a restart."""
        from controlplane.runbooks.load import load_runbooks

        runner = self.remediator._runner
        return Remediator(
            load_runbooks(self.runbook_dir),
            self.store,
            self.switches,
            self.log,
            runner,
            fleet=lambda: self.fleet["value"],
            clock=self.clock,
            notify=lambda s, m, c: self.notes.append(m),
        )


@pytest.fixture
def make_world(tmp_path: Path, admin: FakeAdmin) -> Any:
    def build(*runbooks: str, budget: int = 20) -> World:
        engine = create_engine(f"sqlite:///{tmp_path}/cp.db")
        metadata.create_all(engine)
        audit.install(engine)
        clock, querier, notes = Clock(), FakeQuerier(), []
        rb_dir = tmp_path / "runbooks"
        rb_dir.mkdir(exist_ok=True)
        for i, text in enumerate(runbooks):
            (rb_dir / f"rb{i}.yaml").write_text(text)
        loaded = [load_runbook(p) for p in sorted(rb_dir.glob("*.yaml"))]
        store, switches, log = (
            ExecutionStore(engine, clock),
            Switches(engine, clock),
            audit.AuditLog(engine, clock),
        )
        targets = AggregatorTargets(
            frontdoor_url=admin.url, regions={"eu": admin.url, "latam": admin.url}, token="tok"
        )
        runner = ActionRunner(targets, querier, clock=clock, sleep=clock.sleep)
        fleet = {
            "value": Fleet(
                providers={"eu": frozenset(f"pv{i}" for i in range(8))},
                isolated={},
                healthy_regions=frozenset({"eu", "latam"}),
            )
        }
        rem = Remediator(
            loaded,
            store,
            switches,
            log,
            runner,
            fleet=lambda: fleet["value"],
            clock=clock,
            notify=lambda s, m, c: notes.append(m),
            budget_max_actions=budget,
        )
        return World(rem, admin, querier, clock, store, switches, log, notes, fleet, rb_dir)

    return build
