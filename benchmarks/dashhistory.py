"""The control plane's side of the dashboard benchmark's data (benchmarks/dash.py): what the
shipped rules would have written over the synthetic day, and a day of runbook executions.

- Recordings of every group of rules/*.yml and of the SLO specs' generated rules, in file
  order (later groups read earlier recordings), computed as range queries over the scrape grid
  (15 s, then 1 s) the way `promtool tsdb create-blocks-from rules` backfills, and appended.
- Alerting rules the same way: each label set's consecutive evaluations form one alert,
  pending until `for` has passed, then firing; written as ALERTS and ALERTS_FOR_STATE (the
  incident pages read these), and the alerts still active at the end are `reads.alerts()`.
- Runbook executions, steps and audit events through the control plane's own stores, in a
  fresh SQLite database, spread over the day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controlplane import migrations
from controlplane.audit import AuditLog
from controlplane.db import create_engine
from controlplane.errors import ControlPlaneError
from controlplane.model.series import Labels, Series, SeriesBatch, labels_from
from controlplane.promql.engine import Engine
from controlplane.rules.alerting import Alert, AlertState
from controlplane.rules.load import load_files, parse_text, rule_files
from controlplane.rules.model import AlertingRule, RecordingRule, RuleGroup
from controlplane.runbooks.store import ExecutionStore, State
from controlplane.runbooks.switches import Switches
from controlplane.slo import generate_rule_file, load_specs
from controlplane.tsdb.store import Store

RUNBOOKS = ("isolate-provider", "drain-region", "replay-wallet-queue")
OUTCOMES = (State.SUCCEEDED,) * 6 + (State.ROLLED_BACK, State.REFUSED, State.SHADOWED)


@dataclass(frozen=True)
class Segment:
    start_ms: int
    end_ms: int
    step_ms: int


def segments(stamps_ms: np.ndarray) -> list[Segment]:
    """The scrape grid as range-query frames: one per run of equal intervals."""
    steps = np.diff(stamps_ms)
    cuts = np.flatnonzero(steps[1:] != steps[:-1]) + 1
    out, first = [], 0
    for cut in [*cuts.tolist(), len(steps)]:
        out.append(Segment(int(stamps_ms[first]), int(stamps_ms[cut]), int(steps[first])))
        first = cut + 1
    return [s for s in out if s.start_ms <= s.end_ms]


def rule_groups(root: Path) -> list[RuleGroup]:
    files, _skipped = rule_files([root / "rules"])
    generated = generate_rule_file(load_specs(root / "rules" / "slo"))
    return load_files(files) + parse_text(generated, "generated-slo-rules")


@dataclass
class Backfill:
    series: int = 0
    samples: int = 0
    alerts: list[Alert] | None = None
    problems: list[str] | None = None


def backfill(store: Store, groups: Sequence[RuleGroup], frames: Sequence[Segment]) -> Backfill:
    engine = Engine(store)
    done = Backfill(alerts=[], problems=[])
    for group in groups:
        for rule in group.rules:
            found: dict[Labels, list[Series]] = {}
            for frame in frames:
                try:
                    result = engine.range(rule.expr, frame.start_ms, frame.end_ms, frame.step_ms)
                except ControlPlaneError as exc:
                    done.problems.append(f"{group.name}/{rule.name}: {exc}")  # type: ignore[union-attr]
                    continue
                for s in result.matrix or ():
                    found.setdefault(s.labels, []).append(s)
            joined = [_join(parts) for parts in found.values()]
            if isinstance(rule, RecordingRule):
                written = [_recorded(rule, s) for s in joined]
            else:
                written = _alerts(rule, joined, frames[-1].end_ms, done.alerts)  # type: ignore[arg-type]
            if written:
                store.append_batch(SeriesBatch.from_series(written))
                done.series += len(written)
                done.samples += sum(len(s.timestamps) for s in written)
    return done


def _join(parts: list[Series]) -> Series:
    return Series(
        labels=parts[0].labels,
        timestamps=np.concatenate([p.timestamps for p in parts]),
        values=np.concatenate([p.values for p in parts]),
    )


def _recorded(rule: RecordingRule, s: Series) -> Series:
    labels = {**dict(s.labels), **dict(rule.labels), "__name__": rule.name}
    return Series(labels=labels_from(labels), timestamps=s.timestamps, values=s.values)


def _alerts(
    rule: AlertingRule, found: list[Series], end_ms: int, active: list[Alert]
) -> list[Series]:
    """ALERTS and ALERTS_FOR_STATE of each alert; the alerts still active at `end_ms` go to
    `active`. An evaluation more than 16 s after the previous one starts a new alert."""
    out = []
    for s in found:
        labels = {**dict(s.labels), **dict(rule.labels), "alertname": rule.name}
        labels.pop("__name__", None)
        run = np.concatenate([[0], np.cumsum(np.diff(s.timestamps) > 16_000)])
        since = s.timestamps[np.searchsorted(run, run)]  # the first evaluation of each run
        firing = s.timestamps - since >= rule.for_ms
        for state, mask in (("pending", ~firing), ("firing", firing)):
            if mask.any():
                named = {**labels, "__name__": "ALERTS", "alertstate": state}
                ones = np.ones(int(mask.sum()))
                out.append(
                    Series(labels=labels_from(named), timestamps=s.timestamps[mask], values=ones)
                )
        named = {**labels, "__name__": "ALERTS_FOR_STATE"}
        out.append(
            Series(labels=labels_from(named), timestamps=s.timestamps, values=since / 1000.0)
        )
        if s.timestamps[-1] == end_ms:
            active.append(
                _alert(rule, labels, float(s.values[-1]), int(since[-1]), bool(firing[-1]))
            )
    return out


def _alert(
    rule: AlertingRule, labels: dict[str, str], value: float, since: int, firing: bool
) -> Alert:
    return Alert(
        rule=rule.name,
        expr=rule.expr,
        labels=labels_from(labels),
        annotations=rule.annotations,
        state=AlertState.FIRING if firing else AlertState.PENDING,
        value=value,
        active_at_ms=since,
        fired_at_ms=since + rule.for_ms if firing else None,
    )


class Clock:
    def __init__(self, t_s: float) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s


@dataclass
class Stores:
    executions: ExecutionStore
    switches: Switches
    audit: AuditLog
    clock: Clock


def stores(db_path: Path, start_s: float, end_s: float, runs: int, seed: int = 11) -> Stores:
    """The control plane's stores on a fresh SQLite database with `runs` executions, each with
    its guards, steps and outcome in the audit log, spread over [start_s, end_s]."""
    engine = create_engine(f"sqlite:///{db_path}")
    migrations.upgrade(engine)
    clock = Clock(start_s)
    made = Stores(
        ExecutionStore(engine, clock), Switches(engine, clock), AuditLog(engine, clock), clock
    )
    rng = np.random.default_rng(seed)
    for at in np.sort(rng.uniform(start_s, end_s - 600, runs)).tolist():
        clock.t_s = at
        _execution(made, rng, lambda dt, base=at: setattr(clock, "t_s", base + dt))
    clock.t_s = end_s
    return made


def _execution(s: Stores, rng: np.random.Generator, later: Callable[[float], None]) -> None:
    runbook = RUNBOOKS[int(rng.integers(len(RUNBOOKS)))]
    region = ("eu", "latam")[int(rng.integers(2))]
    outcome = OUTCOMES[int(rng.integers(len(OUTCOMES)))]
    labels = {"alertname": "ProviderFailing", "region": region, "provider": "netent"}
    ex = s.executions.create(
        runbook=runbook,
        mode="auto",
        state=State.RUNNING,
        target_key=f"{region}/netent",
        trigger="alert",
        labels=labels,
        requested_by="controlplane",
        alert_fingerprint=f"{int(rng.integers(1 << 60)):016x}",
    )
    s.audit.append("triggered", {"runbook": runbook, "labels": labels}, execution_id=ex.id)
    for guard in ("automation", "cooldown", "concurrency", "blast_radius", "budget"):
        s.audit.append("guard", {"guard": guard, "verdict": "pass"}, execution_id=ex.id)
    if outcome in (State.SUCCEEDED, State.ROLLED_BACK):
        s.executions.begin_step(ex.id, "steps", "act", "provider.isolate")
        later(1.5)
        ok = outcome is State.SUCCEEDED
        s.executions.finish_step(ex.id, "steps", "act", ok=True, result={"status": 200})
        s.audit.append("step", {"step": "act", "ok": True}, execution_id=ex.id)
        s.audit.append("verification", {"ok": ok, "reason": "condition"}, execution_id=ex.id)
    later(60)
    s.executions.transition(ex.id, [State.RUNNING], outcome, reason=outcome.value)
    s.audit.append(outcome.value, {"reason": outcome.value}, execution_id=ex.id)
