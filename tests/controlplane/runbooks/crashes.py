"""A control plane in process, for crash tests: one database, clock and fake aggregator
that outlive the Remediators built on them, as a database outlives its processes.

`Plant.process(crash)` builds one "process"; `CrashAt(point)` is its crash hook, raising
`SimulatedCrash` (a BaseException: nothing on the way catches it, as nothing survives
kill -9) the first time the executor passes `point`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane import audit
from controlplane.db import create_engine
from controlplane.promql.results import InstantSample, QueryResult, ResultType
from controlplane.runbooks.act import ActionRunner, AggregatorTargets
from controlplane.runbooks.crashpoint import CrashHook, no_crash
from controlplane.runbooks.engine import AlertEvent, Remediator
from controlplane.runbooks.execute import Executor
from controlplane.runbooks.guards import Fleet
from controlplane.runbooks.load import load_runbooks
from controlplane.runbooks.model import Runbook
from controlplane.runbooks.store import ExecutionStore, metadata
from controlplane.runbooks.switches import Switches
from controlplane.runbooks.targets import default_params
from controlplane.runbooks.templates import Context, render
from tests.controlplane.runbooks.conftest import Clock, FakeAdmin

SHIPPED = Path(__file__).resolve().parents[3] / "runbooks"
RUNBOOKS = {rb.name: rb for rb in load_runbooks(SHIPPED)}
LABELS = {"region": "eu", "provider": "pv3"}
T0 = 1_000_000.0
Point = tuple[str, str, str]


class SimulatedCrash(BaseException):
    """kill -9, in process: a BaseException, so no `except Exception` on the way stops it."""


class CrashAt:
    def __init__(self, point: Point) -> None:
        self.point, self.fired = point, False

    def __call__(self, phase: str, step: str, when: str) -> None:
        if not self.fired and (phase, step, when) == self.point:
            self.fired = True
            raise SimulatedCrash(":".join(self.point))


class Querier:
    """Every condition holds except the ones in `failing` (rendered expressions)."""

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        held = expr not in self.failing
        sample = InstantSample(labels=(), t_ms=time_ms, value=1.0)
        return QueryResult(type=ResultType.VECTOR, vector=(sample,) if held else ())

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        raise NotImplementedError


@dataclass
class Plant:
    """One control plane's database, clock and aggregator; `process()` is one process life."""

    path: Path
    admin: FakeAdmin
    clock: Clock = field(default_factory=lambda: Clock(T0))
    querier: Querier = field(default_factory=Querier)
    jobs: list[Callable[[], Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what people were told

    def __post_init__(self) -> None:
        self.engine = create_engine(f"sqlite:///{self.path}")
        metadata.create_all(self.engine)
        audit.install(self.engine)
        self.store = ExecutionStore(self.engine, self.clock)
        self.switches = Switches(self.engine, self.clock)
        self.log = audit.AuditLog(self.engine, self.clock)

    def runner(self) -> ActionRunner:
        targets = AggregatorTargets(
            frontdoor_url=self.admin.url, regions={"eu": self.admin.url}, token="tok"
        )
        return ActionRunner(targets, self.querier, clock=self.clock, sleep=self.clock.sleep)

    def executor(self) -> Executor:
        return Executor(
            self.store, self.log, self.runner(), notify=lambda *_: None, clock=self.clock
        )

    def process(self, crash: CrashHook = no_crash, *, deferred: bool = False) -> Remediator:
        return Remediator(
            list(RUNBOOKS.values()),
            self.store,
            self.switches,
            self.log,
            self.runner(),
            fleet=lambda: Fleet(
                providers={"eu": frozenset(f"pv{i}" for i in range(8))},
                healthy_regions=frozenset({"eu", "latam"}),
            ),
            clock=self.clock,
            notify=lambda _severity, message, _context: self.notes.append(message),
            submit=self.jobs.append if deferred else (lambda fn: fn()),
            crash=crash,
        )

    def drain(self) -> None:
        """Run what the worker threads would have, in order, until nothing is left."""
        while self.jobs:
            self.jobs.pop(0)()


def alert(rb: Runbook, *, firing: bool, at: float) -> AlertEvent:
    assert rb.trigger is not None
    labels = {"alertname": rb.trigger.alert, **rb.trigger.matchers, **LABELS}
    return AlertEvent(
        labels=labels, fingerprint="fp-" + rb.name, firing=firing, active_at=at, source="rules"
    )


def fail_verification(plant: Plant, rb: Runbook) -> None:
    """Make `rb`'s verification (as rendered for `alert(rb, ...)`) never hold."""
    assert rb.verify is not None
    labels = alert(rb, firing=True, at=T0).labels
    ctx = Context(labels=labels, value=None, params=default_params(rb))
    plant.querier.failing.add(render(rb.verify.expr, ctx))
