"""The incident scenario with people who act: the shipped runbooks behind a real Remediator
(the drain waits for two approvers), the operations the HTTP API and the pages share, people of
every role (tests/people.py), and the runbooks API mounted beside /dash/ to check what a click
did. Actions never reach an aggregator: an approved execution is handed to `jobs`, the
executor's queue, where the test sees it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask

from controlplane.access.session import Sessions
from controlplane.api.runbooks import create_blueprint
from controlplane.db import create_engine
from controlplane.notify.silences import SilenceStore
from controlplane.operate import Operations, Silencing
from controlplane.runbooks.act import ActionRunner, AggregatorTargets
from controlplane.runbooks.engine import Remediator
from controlplane.runbooks.guards import Fleet
from controlplane.runbooks.load import load_runbook
from controlplane.runbooks.model import Mode
from dashboards import ReadModels
from dashboards.acting import Acting
from tests.conftest import ROOT
from tests.dashboards import scenario
from tests.people import people


@dataclass
class ActingWorld:
    app: Flask
    reads: ReadModels
    ops: Operations
    jobs: list[Callable[[], Any]]


def runbooks() -> list[Any]:
    loaded = [load_runbook(p) for p in sorted((ROOT / "runbooks").glob("*.yaml"))]
    return [_two_approvers(rb) if rb.name == "drain-region" else rb for rb in loaded]


def _two_approvers(rb: Any) -> Any:
    """The scenario's drain waits for two people; a second drain (of latam) may be asked."""
    guards = dataclasses.replace(rb.guards, max_concurrent=2)
    return dataclasses.replace(rb, mode=Mode.APPROVAL, approvers=2, guards=guards)


def build_acting(tmp: Path) -> ActingWorld:
    engine, alerts, slos = scenario.evaluate(ROOT / "rules")
    made = scenario.stores(tmp / "controlplane.db")
    jobs: list[Callable[[], Any]] = []
    fleet = Fleet(
        providers={"eu": frozenset({"evolution", "netent", "pragmatic"})},
        healthy_regions=frozenset({"eu", "latam"}),
    )
    remediator = Remediator(
        runbooks(),
        made.executions,
        made.switches,
        made.audit,
        ActionRunner(AggregatorTargets(), engine, clock=made.clock),
        fleet=lambda: fleet,
        clock=made.clock,
        submit=jobs.append,
    )
    silences = SilenceStore(
        create_engine(f"sqlite:///{tmp / 'controlplane.db'}"),  # the scenario's database
        clock=lambda: datetime.fromtimestamp(made.clock(), UTC),
    )
    ops = Operations(
        remediator=remediator,
        executions=made.executions,
        switches=made.switches,
        audit=made.audit,
        silencing=Silencing(silences=silences, audit=made.audit),
        clock=made.clock,
    )
    access = people()
    acting = Acting(ops=ops, access=access, sessions=Sessions(lambda: "test-secret"))
    reads = dataclasses.replace(scenario.reads_for(engine, alerts, slos, made), acting=acting)
    app = scenario.app_for(reads)
    app.register_blueprint(create_blueprint(ops, access=access))
    return ActingWorld(app=app, reads=reads, ops=ops, jobs=jobs)
