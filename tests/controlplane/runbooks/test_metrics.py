"""The remediation's own health on /metrics, which rules/controlplane.yml watches."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from controlplane.app import EXTENSION, create_app
from controlplane.config import Config, StoreConfig
from tests.conftest import ROOT

AUTH = {"Authorization": "Bearer t"}


def test_automation_state_budget_and_executions_by_state(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    config = Config(
        api_token="t",
        database_url=f"sqlite:///{tmp_path / 'cp.db'}",
        rules_dir=ROOT / "rules",
        runbooks_dir=ROOT / "runbooks",
        routing_file=ROOT / "config" / "routing.yml",
        # not the default var/controlplane-store of the checkout, shared by every test
        store=StoreConfig(checkpoint_path=tmp_path / "store"),
    )
    app = create_app(config, registry=registry)
    plane = app.extensions[EXTENSION]
    plane.start()
    try:
        client = app.test_client()
        assert registry.get_sample_value("controlplane_automation_paused") == 0
        assert (
            registry.get_sample_value("controlplane_automation_paused_since_timestamp_seconds")
            is None
        )
        assert registry.get_sample_value("controlplane_automation_budget_max_actions") == 20
        assert registry.get_sample_value("controlplane_automation_budget_used_actions") == 0
        client.post("/api/v1/automation/pause", json={"reason": "drill"}, headers=AUTH)
        assert registry.get_sample_value("controlplane_automation_paused") == 1
        assert registry.get_sample_value("controlplane_automation_paused_since_timestamp_seconds")
        body = {"labels": {"region": "eu", "provider": "evolution"}, "dry_run": True}
        client.post("/api/v1/runbooks/isolate-provider/executions", json=body, headers=AUTH)
        states = {
            s.labels["state"]: s.value
            for m in registry.collect()
            if m.name == "controlplane_runbook_executions"
            for s in m.samples
        }
        assert sum(states.values()) == 1, states
    finally:
        plane.stop()
