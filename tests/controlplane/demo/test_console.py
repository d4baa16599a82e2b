from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from controlplane.demo import console
from controlplane.demo.preflight import DemoBusy, DemoLock, check_ports, port_holder


def firing(state: str = "firing", **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": "ProviderDown", **labels}, "state": state, "value": "1"}


def test_alerts_firing_and_resolving_are_told_once() -> None:
    before = {"a": firing(region="eu"), "b": firing("pending", region="latam")}
    now = {"a": firing(region="eu"), "b": firing(region="latam")}
    assert console.alert_lines(before, now) == ["alert ProviderDown firing {region=latam} value 1"]
    assert console.alert_lines(now, {"a": firing(region="eu")}) == [
        "alert ProviderDown resolved {region=latam}"
    ]


def test_audit_events_read_as_one_line() -> None:
    event = {
        "kind": "step",
        "execution_id": "0123456789abcdef",
        "data": {"runbook": "isolate-provider", "step": "isolate", "state": "succeeded"},
    }
    assert console.audit_line(event) == (
        "step [01234567] runbook=isolate-provider step=isolate state=succeeded"
    )
    assert console.audit_line({"kind": "automation_paused", "data": {"by": "ana"}}) == (
        "automation_paused by=ana"
    )


def test_faults_injected_and_cleared() -> None:
    fault = {"id": "f1", "kind": "provider_down", "target": "evolution", "role": "eu"}
    assert console.fault_lines({}, {"eu:f1": fault}) == [
        "fault injected: provider_down on evolution (magnitude None)"
    ]
    assert console.fault_lines({"eu:f1": fault}, {}) == [
        "fault cleared: provider_down on evolution (magnitude None)"
    ]


def test_banner_names_both_tokens_and_where_the_logs_are(tmp_path: Path) -> None:
    line = console.RoleLine(name="eu", url="http://x", pid=7, log=Path.cwd() / "var/demo/eu.log")
    text = console.banner(
        [line],
        {"AGGREGATOR_ADMIN_TOKEN": "adm", "CONTROLPLANE_API_TOKEN": "api"},
        {"frontdoor": "http://f", "controlplane": "http://c", "loadgen": "http://l"},
    )
    assert "log var/demo/eu.log" in text
    assert "CONTROLPLANE_API_TOKEN      api" in text
    assert "/dash/chat" not in text  # no Slack stand-in, no chat page to name
    chatty = console.banner(
        [line], {}, {"frontdoor": "f", "controlplane": "http://c", "slack": "s"}
    )
    assert "chat (Slack)      http://c/dash/chat" in chatty
    assert console.shown_path(tmp_path / "x.log") == str(tmp_path / "x.log")


def test_a_second_lock_on_the_same_data_is_refused_with_the_holder(tmp_path: Path) -> None:
    first = DemoLock(tmp_path / "demo")
    first.acquire()
    try:
        with pytest.raises(DemoBusy, match=rf"already running \(pid {os.getpid()}\)"):
            DemoLock(tmp_path / "demo").acquire()
    finally:
        first.release()
    again = DemoLock(tmp_path / "demo")
    again.acquire()  # released: free again
    again.release()


def test_a_taken_port_is_named_with_its_process() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_holder(port).startswith(f"pid {os.getpid()}: ")
        with pytest.raises(DemoBusy, match=rf"{port} \(wallet\): pid {os.getpid()}"):
            check_ports({"wallet": port})
    check_ports({"wallet": port})  # closed: free
