"""The demo's named incidents fit the shipped rules and runbooks: a scenario follows a shipped
runbook and a shipped alert, and a fault lasts long enough for what the scenario is there to
show."""

from __future__ import annotations

import re

import pytest

from controlplane.demo.scenarios import SCENARIOS, Scenario
from controlplane.pipeline import rule_groups
from controlplane.rules.model import AlertingRule
from controlplane.runbooks.load import load_runbooks
from controlplane.runbooks.model import Mode
from tests.conftest import ROOT

RUNBOOKS = {rb.name: rb for rb in load_runbooks(ROOT / "runbooks")}
ALERTS = {
    rule.name: rule
    for group in rule_groups(ROOT / "rules")
    for rule in group.rules
    if isinstance(rule, AlertingRule)
}


# scenario -> the alert that triggers its runbook, where the timeline follows another one
TRIGGERED_BY = {"wallet-outage-long": "WalletQueueStale"}


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=lambda s: s.name)
def test_each_scenario_follows_a_shipped_runbook_and_alert(scenario: Scenario) -> None:
    runbook = RUNBOOKS[scenario.runbook]
    assert runbook.trigger is not None
    assert runbook.trigger.alert == TRIGGERED_BY.get(scenario.name, scenario.alert)
    assert {scenario.alert, runbook.trigger.alert} <= set(ALERTS)


def test_the_long_wallet_outage_lasts_until_two_people_are_asked() -> None:
    scenario = SCENARIOS["wallet-outage-long"]
    assert RUNBOOKS[scenario.runbook].mode is Mode.APPROVAL
    assert RUNBOOKS[scenario.runbook].approvers == 2
    # followed until the backlog is gone, so that the money reconciles when the demo stops:
    # WalletQueueStale resolves as soon as the oldest items are paid, thousands still owed
    assert scenario.alert == "WalletQueueBacklog"
    stale = ALERTS[TRIGGERED_BY[scenario.name]]
    match = re.search(r"casino_wallet_queue_oldest_age_seconds\) > (\d+)", stale.expr)
    assert match, stale.expr
    fires_after_s = int(match[1]) + stale.for_ms / 1000
    # the request shows up, and stays pending for a while, before the wallet heals
    assert scenario.fault["duration_s"] >= fires_after_s + 30
