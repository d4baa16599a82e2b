"""An incident the dashboards can show, built from real parts: two hours of aggregator
counters, the shipped SLO specs' generated rules evaluated over them by the real rule
evaluator and PromQL engine, and executions, steps and audit events in a real SQLite database
written through the control plane's own stores.

At the end (`END_MS`) launches in eu have been failing at 8% for 45 minutes (a provider
outage): the launch SLO burns and pages; the control plane isolated the provider, a region
drain waits for approval, a wallet replay runs. latam is healthy.

    python -m tests.dashboards.scenario [PORT]   serves it at http://127.0.0.1:PORT/dash/
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import Flask

from controlplane import migrations
from controlplane.audit import AuditLog
from controlplane.db import create_engine
from controlplane.model.series import Series, SeriesBatch, labels_from
from controlplane.promql.engine import Engine
from controlplane.rules.alerting import Alert, AlertState
from controlplane.rules.group import GroupEvaluator
from controlplane.rules.load import parse_text
from controlplane.runbooks.store import ExecutionStore, State
from controlplane.runbooks.switches import Switches
from controlplane.slo import generate_rule_file, load_specs
from controlplane.tsdb.store import Store
from dashboards import ReadModels, create_dash
from tests.conftest import ROOT
from tests.dashboards import fleet_telemetry, incident_history

MINUTE = 60_000
END_MS = 1_772_452_800_000  # 2026-03-02T12:00:00Z
START_MS = END_MS - 120 * MINUTE
INCIDENT_MS = END_MS - 45 * MINUTE
RUNBOOKS = ("isolate-provider", "drain-region", "replay-wallet-queue")
HISTORY = incident_history.Times(start_ms=START_MS, incident_ms=INCIDENT_MS, end_ms=END_MS)


class Clock:
    def __init__(self, t_s: float) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s


def _counter(
    name: str, labels: dict[str, str], per_s: Callable[[np.ndarray], np.ndarray]
) -> Series:
    t = np.arange(START_MS, END_MS + 1, MINUTE, dtype=np.int64)
    increments = per_s(t) * 60.0
    values = np.concatenate([[0.0], np.cumsum(increments[1:])])
    return Series(labels=labels_from({"__name__": name, **labels}), timestamps=t, values=values)


def _steady(rate: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.full(t.shape, rate)


def _incident(before: float, during: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.where(t > INCIDENT_MS, during, before)


def telemetry() -> list[Series]:
    """eu launches fail at 8% from INCIDENT_MS; everything else is healthy."""
    series = []
    for region, traffic in (("eu", 10.0), ("latam", 6.0)):
        failing = 0.15 if region == "eu" else 0.001
        series += [
            _counter(
                "casino_game_launches_total", {"region": region, "outcome": "ok"}, _steady(traffic)
            ),
            _counter(
                "casino_game_launches_total",
                {"region": region, "outcome": "failed"},
                _incident(traffic * 0.0005, traffic * failing),
            ),
            _counter(
                "casino_rounds_total",
                {"region": region, "outcome": "settled"},
                _steady(traffic * 4),
            ),
            _counter(
                "casino_rounds_total",
                {"region": region, "outcome": "provider_unavailable"},
                _incident(traffic * 0.0004, traffic * (0.012 if region == "eu" else 0.0004)),
            ),
            _counter(
                "casino_wallet_requests_total",
                {"region": region, "outcome": "ok"},
                _steady(traffic * 8),
            ),
            _counter(
                "casino_wallet_requests_total",
                {"region": region, "outcome": "timeout"},
                _steady(traffic * 0.0002),
            ),
            _counter(
                "casino_wallet_request_duration_seconds_bucket",
                {"region": region, "le": "0.25"},
                _steady(traffic * 8 * 0.996),
            ),
            _counter(
                "casino_wallet_request_duration_seconds_count",
                {"region": region},
                _steady(traffic * 8),
            ),
        ]
    return fleet_telemetry.with_fleet(series)


@functools.cache  # read-only once built: scenarios built for acting reuse it
def evaluate(rules_dir: Path) -> tuple[Engine, list[Alert], list]:
    """The shipped SLO rules over the telemetry, every minute, as the rule manager would."""
    specs = load_specs(rules_dir / "slo")
    store = Store(retention_ms=30 * 86_400_000)
    store.append_batch(SeriesBatch.from_series(telemetry()))
    incident_history.add_series(store, HISTORY)
    engine = Engine(store)
    evaluators = [
        GroupEvaluator(g, querier=engine, sink=store, default_interval_ms=MINUTE)
        for g in parse_text(generate_rule_file(specs), "generated")
    ]
    for t_ms in evaluation_times():
        for ev in evaluators:
            ev.evaluate(t_ms)
    alerts = [a for ev in evaluators for a in ev.alerts() if a.resolved_at_ms is None]
    slos = [slo for spec in specs for slo in spec.slos]
    return engine, alerts + _other_alerts(), slos


def evaluation_times() -> list[int]:
    """Sparse before the incident, denser during it: enough for every window's ratio and for
    the burn alerts (they have no `for`), at a fraction of an every-minute evaluation's cost."""
    before = range(START_MS, INCIDENT_MS, 15 * MINUTE)
    return [*before, *range(INCIDENT_MS, END_MS + 1, 3 * MINUTE)]


def _other_alerts() -> list[Alert]:
    def alert(
        name: str, labels: dict[str, str], state: AlertState, since_ms: int, summary: str
    ) -> Alert:
        return Alert(
            rule=name,
            expr="...",
            labels=labels_from({"alertname": name, **labels}),
            annotations=labels_from({"summary": summary}),
            state=state,
            value=1.0,
            active_at_ms=since_ms - 2 * MINUTE,
            fired_at_ms=since_ms if state is AlertState.FIRING else None,
        )

    return [
        alert(
            "ProviderFailing",
            {"severity": "page", "region": "eu", "provider": "evolution"},
            AlertState.FIRING,
            INCIDENT_MS + 2 * MINUTE,
            "provider evolution in eu fails 40% of launches",
        ),
        alert(
            "WalletRetryQueueGrowing",
            {"severity": "ticket", "region": "eu"},
            AlertState.PENDING,
            END_MS - 3 * MINUTE,
            "the wallet retry queue in eu grows",
        ),
    ]


@dataclass
class Stores:
    executions: ExecutionStore
    switches: Switches
    audit: AuditLog
    clock: Clock


def stores(db_path: Path) -> Stores:
    """The control plane's own stores on a fresh SQLite database, with the incident's history."""
    engine = create_engine(f"sqlite:///{db_path}")
    migrations.upgrade(engine)
    clock = Clock(START_MS / 1000)
    made = Stores(
        ExecutionStore(engine, clock), Switches(engine, clock), AuditLog(engine, clock), clock
    )
    _history(made)
    incident_history.add_events(made.audit, made.executions, made.clock, HISTORY)
    clock.t_s = END_MS / 1000
    return made


def _at(s: Stores, t_ms: int) -> None:
    s.clock.t_s = t_ms / 1000


def _run(
    s: Stores,
    t_ms: int,
    runbook: str,
    target: str,
    labels: dict[str, str],
    state: State,
    **kw: object,
) -> str:
    _at(s, t_ms)
    ex = s.executions.create(
        runbook=runbook,
        mode=str(kw.pop("mode", "auto")),
        state=state,
        target_key=target,
        trigger=str(kw.pop("trigger", "alert")),
        labels=labels,
        requested_by=str(kw.pop("by", "controlplane")),
        alert_fingerprint="f" * 16,
        **kw,  # type: ignore[arg-type]
    )
    s.audit.append(
        "triggered", {"runbook": runbook, "target": target, "labels": labels}, execution_id=ex.id
    )
    for guard, verdict, reason in (
        ("automation", "pass", "automation active"),
        ("cooldown", "pass", "no run on this target in the last 10m"),
        ("concurrency", "pass", "0 of 1 running"),
        ("blast_radius", "pass", "1 of 8 providers isolated (max 2, 25%)"),
        ("budget", "pass", "1/20 automated actions in window"),
    ):
        s.audit.append(
            "guard", {"guard": guard, "verdict": verdict, "reason": reason}, execution_id=ex.id
        )
    s.audit.append(state.value, {"reason": ""}, execution_id=ex.id)
    return ex.id


def _step(
    s: Stores, ex_id: str, t_ms: int, step: str, action: str, ok: bool | None, phase: str = "steps"
) -> None:
    _at(s, t_ms)
    s.executions.begin_step(ex_id, phase, step, action)
    if ok is None:
        return
    _at(s, t_ms + 1200)
    detail = (
        {"status": 200, "isolated": True} if ok else {"status": 503, "error": "region unavailable"}
    )
    s.executions.finish_step(ex_id, phase, step, ok=ok, result=detail)
    s.audit.append(
        "step",
        {"phase": phase, "step": step, "action": action, "ok": ok, "detail": detail},
        execution_id=ex_id,
    )


def _finish(
    s: Stores, ex_id: str, t_ms: int, source: State, to: State, reason: str, verified: bool | None
) -> None:
    _at(s, t_ms)
    if verified is not None:
        expr = 'casino:launch_success:ratio_rate1m{region="eu"} > 0.99'
        why = "condition held" if verified else "condition did not hold within 60s"
        s.audit.append(
            "verification", {"expr": expr, "ok": verified, "reason": why}, execution_id=ex_id
        )
    s.executions.transition(ex_id, [source], to, reason=reason)
    s.audit.append(to.value, {"reason": reason}, execution_id=ex_id)


def _history(s: Stores) -> None:
    eu_labels = {"alertname": "ProviderFailing", "region": "eu", "provider": "netent"}
    old = _run(s, START_MS + 20 * MINUTE, "isolate-provider", "eu/netent", eu_labels, State.RUNNING)
    _step(s, old, START_MS + 20 * MINUTE, "isolate", "provider.isolate", True)
    _finish(
        s,
        old,
        START_MS + 22 * MINUTE,
        State.RUNNING,
        State.ROLLED_BACK,
        "condition did not hold within 60s; rolled back",
        verified=False,
    )
    _step(s, old, START_MS + 22 * MINUTE, "restore", "provider.restore", True, phase="rollback")
    _at(s, START_MS + 60 * MINUTE)
    s.switches.set_automation(paused=True, reason="wallet migration", by="alice")
    s.audit.append("automation_paused", {"reason": "wallet migration"}, actor="alice")
    _at(s, START_MS + 90 * MINUTE)
    s.switches.set_automation(paused=False, reason="", by="alice")
    s.audit.append("automation_resumed", {}, actor="alice")

    labels = {"alertname": "ProviderFailing", "region": "eu", "provider": "evolution"}
    done = _run(
        s, INCIDENT_MS + 2 * MINUTE, "isolate-provider", "eu/evolution", labels, State.RUNNING
    )
    _step(s, done, INCIDENT_MS + 2 * MINUTE, "isolate", "provider.isolate", True)
    s.executions.transition(
        done, [State.RUNNING], State.VERIFYING, deadline=(INCIDENT_MS + 3 * MINUTE) / 1000
    )
    _finish(
        s,
        done,
        INCIDENT_MS + 3 * MINUTE,
        State.VERIFYING,
        State.SUCCEEDED,
        'verified: casino:launch_success:ratio_rate1m{region="eu"} > 0.99',
        verified=True,
    )
    again = _run(
        s,
        INCIDENT_MS + 9 * MINUTE,
        "isolate-provider",
        "eu/evolution",
        labels,
        State.REFUSED,
        reason="cooldown: isolate-provider ran on eu/evolution 7m ago (cooldown 10m)",
    )
    del again
    drain = _run(
        s,
        END_MS - 6 * MINUTE,
        "drain-region",
        "eu",
        {"alertname": "RegionUnhealthy", "region": "eu"},
        State.PENDING_APPROVAL,
        mode="approval",
        deadline=(END_MS + 9 * MINUTE) / 1000,
        reason="needs 2 approvals",
    )
    del drain
    replay = _run(
        s,
        END_MS - 2 * MINUTE,
        "replay-wallet-queue",
        "eu",
        {"alertname": "WalletRetryQueueGrowing", "region": "eu"},
        State.RUNNING,
    )
    _step(s, replay, END_MS - 90_000, "replay", "wallet.replay_queue", None)
    bob = _run(
        s,
        END_MS - 30 * MINUTE,
        "drain-region",
        "latam",
        {"region": "latam"},
        State.SHADOWED,
        trigger="manual",
        by="bob",
        dry_run=True,
        reason="dry run: nothing called",
    )
    del bob


def reads_for(engine: Engine, alerts: list[Alert], slos: list, made: Stores) -> ReadModels:
    return ReadModels(
        querier=engine,
        slos=slos,
        alerts=lambda: alerts,
        executions=made.executions,
        automation=made.switches,
        audit=made.audit,
        budget=(20, 3600.0),
        clock=made.clock,
        runbooks=RUNBOOKS,
    )


def app_for(reads: ReadModels) -> Flask:
    server = Flask("dashboards-test")
    create_dash(server, reads=reads)
    return server


def build(tmp: Path) -> tuple[Flask, ReadModels]:
    engine, alerts, slos = evaluate(ROOT / "rules")
    reads = reads_for(engine, alerts, slos, stores(tmp / "controlplane.db"))
    return app_for(reads), reads


def _serve(port: int) -> Iterator[None]:  # pragma: no cover - a tool for looking at it by hand
    import tempfile

    from waitress import serve

    with tempfile.TemporaryDirectory() as tmp:
        app, _reads = build(Path(tmp))
        print(f"http://127.0.0.1:{port}/dash/", flush=True)
        serve(app, host="127.0.0.1", port=port, threads=8)
    yield


if __name__ == "__main__":  # pragma: no cover
    for _ in _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8050):
        pass
