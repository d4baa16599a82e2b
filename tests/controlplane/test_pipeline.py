from __future__ import annotations

from controlplane.pipeline import rule_groups
from controlplane.rules.model import AlertingRule
from tests.conftest import ROOT


def test_the_running_control_plane_evaluates_the_slo_rules_too() -> None:
    groups = {g.name: g for g in rule_groups(ROOT / "rules")}
    assert "casino-providers-alerts" in groups
    for slo in (
        "launches-launch-success",
        "rounds-round-success",
        "wallet-wallet-success",
        "wallet-wallet-latency",
    ):
        assert f"slo-sli-recordings-{slo}" in groups and f"slo-alerts-{slo}" in groups
    alerts = {r.name for g in groups.values() for r in g.rules if isinstance(r, AlertingRule)}
    assert {"LaunchSuccessBudgetBurn", "WalletSuccessBudgetBurn", "ProviderFailing"} <= alerts
