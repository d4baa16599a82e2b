"""Named incidents for the demo, the end-to-end test and the MTTR benchmark.

A scenario injects one fault into the bundled aggregator over its admin API, then follows what
the control plane does through its own HTTP API (alerts, executions, steps) and what players
saw through the load generator's live report, as a timeline of events in seconds since the
fault. Nothing here knows how the processes were started.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    description: str
    role: str  # whose admin API takes the fault: a region id or "wallet"
    fault: Mapping[str, Any]
    alert: str
    runbook: str


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            name="provider-outage",
            role="eu",
            alert="ProviderFailing",
            runbook="isolate-provider",
            description="provider evolution in eu stops answering (every call times out)",
            fault={"kind": "provider_down", "target": "evolution", "duration_s": 45},
        ),
        Scenario(
            name="wallet-outage",
            role="wallet",
            alert="WalletQueueBacklog",
            runbook="replay-wallet-queue",
            description="the operator wallet's payout path fails: every win answers 500",
            fault={"kind": "wallet_errors", "target": "win", "magnitude": 1.0, "duration_s": 45},
        ),
        Scenario(
            # long enough for WalletQueueStale (an owed win 2 minutes old): the forced replay
            # asks two people and waits for them; nothing approves it by itself. Followed to
            # the backlog's end (WalletQueueStale resolves while thousands are still owed).
            name="wallet-outage-long",
            role="wallet",
            alert="WalletQueueBacklog",
            runbook="force-replay-wallet-queue",
            description="the operator wallet's payout path fails for 3 minutes: wins owed for long",
            fault={"kind": "wallet_errors", "target": "win", "magnitude": 1.0, "duration_s": 180},
        ),
        Scenario(
            name="region-outage",
            role="eu",
            alert="RegionDown",
            runbook="drain-region",
            description="region eu stops serving players (its health checks fail)",
            fault={"kind": "region_down", "target": "eu", "duration_s": 30},
        ),
    )
}


@dataclass(frozen=True, kw_only=True)
class Event:
    at_s: float
    text: str


@dataclass(kw_only=True)
class Outcome:
    scenario: str
    events: list[Event] = field(default_factory=list)
    alert_firing_s: float | None = None
    first_step_s: float | None = None
    verified_s: float | None = None
    resolved_s: float | None = None
    execution_state: str | None = None
    impact: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        def at(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}s"

        i = self.impact
        return (
            f"{self.scenario}: alert firing {at(self.alert_firing_s)}, first step "
            f"{at(self.first_step_s)}, verified {at(self.verified_s)}, alert resolved "
            f"{at(self.resolved_s)}, runbook {self.execution_state or 'did not run'}; players:"
            f" launches {i.get('launch_success', float('nan')):.2%} ok, rounds "
            f"{i.get('round_success', float('nan')):.2%} ok"
        )


class Follower:
    """Drives one scenario and records its timeline."""

    def __init__(
        self,
        *,
        controlplane_url: str,
        admin_urls: Mapping[str, str],
        admin_token: str,
        loadgen_url: str | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 0.25,
    ) -> None:
        self._cp = controlplane_url.rstrip("/")
        self._admin, self._token, self._loadgen = admin_urls, admin_token, loadgen_url
        self._http = session or requests.Session()
        self._clock, self._sleep, self._poll = clock, sleep, poll_s

    def run(
        self,
        scenario: Scenario,
        *,
        until: str = "resolved",
        timeout_s: float = 180.0,
        clear_after_verified_s: float | None = None,
        on_event: Callable[[Event], None] = lambda _e: None,
    ) -> Outcome:
        """Inject, then follow until `until` ("verified" or "resolved") or the timeout.
        `clear_after_verified_s` deletes the fault that long after verification (benchmarks
        repeat faults and need not wait out their full duration)."""
        out = Outcome(scenario=scenario.name)
        before = self._report()
        t0 = self._clock()
        fault_id = self._inject(scenario)

        def emit(text: str) -> float:
            at = self._clock() - t0
            event = Event(at_s=at, text=text)
            out.events.append(event)
            on_event(event)
            return at

        emit(f"fault injected: {scenario.description} ({scenario.fault['kind']})")
        seen: dict[str, str] = {}
        while self._clock() - t0 < timeout_s:
            self._observe(scenario, t0, out, seen, emit)
            verified = out.verified_s
            if (
                fault_id
                and verified is not None
                and clear_after_verified_s is not None
                and (self._clock() - t0 - verified >= clear_after_verified_s)
            ):
                self._clear(scenario, fault_id)
                emit("fault cleared")
                fault_id = ""
            if _finished(out, until):
                break
            self._sleep(self._poll)
        if fault_id:
            self._clear(scenario, fault_id)
        out.impact = _impact(before, self._report())
        return out

    def _observe(
        self,
        scenario: Scenario,
        t0: float,
        out: Outcome,
        seen: dict[str, str],
        emit: Callable[[str], float],
    ) -> None:
        state = self._alert_state(scenario.alert)
        if state != seen.get("alert", "inactive") and not (
            state == "inactive" and "alert" not in seen
        ):
            at = emit(f"alert {scenario.alert} {state if state != 'inactive' else 'resolved'}")
            if state == "firing" and out.alert_firing_s is None:
                out.alert_firing_s = at
            if state == "inactive" and seen.get("alert") == "firing":
                out.resolved_s = at
            seen["alert"] = state
        for ex in self._executions(scenario.runbook, since=t0):
            key = f"ex:{ex['id']}"
            if seen.get(key) != ex["state"]:
                at = emit(
                    f"runbook {scenario.runbook}: {ex['state']}"
                    + (f" ({ex['reason']})" if ex.get("reason") else "")
                )
                seen[key] = ex["state"]
                # a refusal (still failing, cooldown) is often followed by the run that acts
                if out.execution_state in (None, "refused") or ex["state"] != "refused":
                    out.execution_state = ex["state"]
                if ex["state"] == "succeeded" and out.verified_s is None:
                    out.verified_s = at
            for step in ex.get("steps", []):
                skey = f"step:{ex['id']}:{step['phase']}:{step['step_id']}"
                if step["state"] != "started" and seen.get(skey) != step["state"]:
                    at = emit(
                        f"  step {step['step_id']} ({step['action']}, {step['phase']}): "
                        f"{step['state']}"
                    )
                    seen[skey] = step["state"]
                    if out.first_step_s is None and step["phase"] == "steps":
                        out.first_step_s = at

    def _inject(self, scenario: Scenario) -> str:
        resp = self._http.post(
            f"{self._admin[scenario.role]}/admin/faults",
            json=dict(scenario.fault),
            headers=self._auth(),
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["id"])

    def _clear(self, scenario: Scenario, fault_id: str) -> None:
        self._http.delete(
            f"{self._admin[scenario.role]}/admin/faults/{fault_id}",
            headers=self._auth(),
            timeout=10,
        )

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _alert_state(self, name: str) -> str:
        body = self._get(f"{self._cp}/api/v1/alerts")
        states = [
            a["state"]
            for a in body.get("data", {}).get("alerts", [])
            if a["labels"].get("alertname") == name
        ]
        return "firing" if "firing" in states else ("pending" if states else "inactive")

    def _executions(self, runbook: str, since: float) -> list[dict[str, Any]]:
        wall_since = time.time() - (self._clock() - since) - 1.0
        listed = self._get(f"{self._cp}/api/v1/executions?runbook={runbook}&limit=20")
        return [
            self._get(f"{self._cp}/api/v1/executions/{e['id']}")
            for e in listed.get("executions", [])
            if e["created_at"] >= wall_since
        ]

    def _report(self) -> dict[str, Any]:
        return self._get(f"{self._loadgen}/report") if self._loadgen else {}

    def _get(self, url: str) -> dict[str, Any]:
        try:
            resp = self._http.get(url, timeout=5)
            body = resp.json()
        except (requests.RequestException, ValueError):
            return {}
        return body if isinstance(body, dict) else {}


def _finished(out: Outcome, until: str) -> bool:
    if until == "verified":
        return out.verified_s is not None
    settled = out.execution_state not in ("running", "verifying")  # None: nothing ran
    return out.resolved_s is not None and settled


def _impact(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What players saw between two load-generator reports."""
    if not before or not after:
        return {}

    def delta(section: str, key: str) -> int:
        return int(after[section][key]) - int(before[section][key])

    launches, rounds = delta("launches", "attempted"), delta("rounds", "attempted")
    launched = delta("launches", "ok") + delta("launches", "failover")
    return {
        "launches": launches,
        "launches_ok": launched,
        "launch_success": launched / launches if launches else 1.0,
        "rounds": rounds,
        "rounds_settled": delta("rounds", "settled"),
        "round_success": delta("rounds", "settled") / rounds if rounds else 1.0,
    }
