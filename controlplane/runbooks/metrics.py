"""The remediation's own health on /metrics, read from its tables at scrape time, so the rules
that watch the control plane (rules/controlplane.yml) see automation paused for too long, the
action budget spent, and runbooks that keep failing or rolling back.

    controlplane_automation_paused                          1 while the kill switch is on
    controlplane_automation_paused_since_timestamp_seconds  when it was switched (paused only)
    controlplane_automation_budget_max_actions              automated actions allowed per window
    controlplane_automation_budget_used_actions             used in the current window
    controlplane_runbook_executions{runbook, state}         executions by state, ever
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.runbooks.situation import MUTATING
from controlplane.runbooks.store import ExecutionStore, executions
from controlplane.runbooks.switches import Switches

log = logging.getLogger(__name__)


class RemediationCollector(Collector):
    def __init__(
        self,
        store: ExecutionStore,
        switches: Switches,
        budget: Callable[[], tuple[int, float]],
        engine: sa.Engine,
        clock: Callable[[], float],
    ) -> None:
        self._store, self._switches, self._budget = store, switches, budget
        self._engine, self._clock = engine, clock

    def collect(self) -> Iterator[Metric]:
        try:  # the database boundary: a scrape without these beats a failed scrape
            yield from self._automation()
            yield from self._executions()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("remediation metrics not read: %s", exc)

    def _automation(self) -> Iterator[Metric]:
        paused, _reason, _by, changed_at = self._switches.automation()
        yield GaugeMetricFamily(
            "controlplane_automation_paused", "1 while automation is paused.", value=int(paused)
        )
        if paused:
            yield GaugeMetricFamily(
                "controlplane_automation_paused_since_timestamp_seconds",
                "When automation was paused.",
                value=changed_at,
            )
        max_actions, window_s = self._budget()
        used = self._store.mutating_step_times(self._clock() - window_s, MUTATING)
        yield GaugeMetricFamily(
            "controlplane_automation_budget_max_actions",
            "Automated actions allowed per budget window.",
            value=max_actions,
        )
        yield GaugeMetricFamily(
            "controlplane_automation_budget_used_actions",
            "Automated actions taken in the current budget window.",
            value=len(used),
        )

    def _executions(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "controlplane_runbook_executions",
            "Runbook executions by state, since the database was created.",
            labels=["runbook", "state"],
        )
        query = sa.select(executions.c.runbook, executions.c.state, sa.func.count()).group_by(
            executions.c.runbook, executions.c.state
        )
        with self._engine.connect() as conn:
            for runbook, state, count in conn.execute(query):
                family.add_metric([runbook, state], count)
        yield family
