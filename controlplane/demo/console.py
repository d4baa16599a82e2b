"""What `controlplane demo` prints: the banner, a status line, the control plane's actions as
they happen (alerts firing and resolving, runbook decisions and steps, verification, faults
injected and cleared), and the summary at the end.

Text is made by pure functions; `LiveEvents` is the one part that polls over HTTP.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

# audit data worth a word on the console, in the order they are shown
_AUDIT_KEYS = (
    "runbook",
    "step",
    "action",
    "phase",
    "state",
    "ok",
    "guard",
    "verdict",
    "reason",
    "by",
)


@dataclass(frozen=True, kw_only=True)
class RoleLine:
    name: str
    url: str
    pid: int
    log: Path


def shown_path(path: Path) -> str:
    """`var/demo/eu.log` from the project directory, the absolute path from anywhere else."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def banner(roles: Sequence[RoleLine], tokens: Mapping[str, str], urls: Mapping[str, str]) -> str:
    lines = ["", "The bundled casino aggregator and its control plane are running:", ""]
    lines += [f"  {r.name:<12} {r.url:<24} pid {r.pid:<8} log {shown_path(r.log)}" for r in roles]
    lines.append("")
    lines += [f"  {name:<27} {value}" for name, value in tokens.items()]
    admin = tokens.get("AGGREGATOR_ADMIN_TOKEN", "")
    lines.append(f'\n  aggregator state  curl -H "Authorization: Bearer {admin}" '
                 f"{urls['frontdoor']}/admin/state")  # fmt: skip
    if "controlplane" in urls:
        lines.append(
            f"  dashboards        {urls['controlplane']}/dash/  (sign in with a token above)"
        )
        lines.append(f"  firing alerts     curl {urls['controlplane']}/api/v1/alerts")
    if "controlplane" in urls and "slack" in urls:
        lines.append(
            f"  chat (Slack)      {urls['controlplane']}/dash/chat  (what was posted to the Slack "
            "stand-in; its buttons act as you)"
        )
    if "loadgen" in urls:
        lines.append(f"  live report       {urls['loadgen']}/report")
    lines.append("\nWhat the control plane sees and does is shown below. Press Ctrl-C to stop.")
    return "\n".join(lines)


def status_line(report: Mapping[str, Any]) -> str:
    rounds, latency = report["rounds"], report["latency_ms"]["round"]
    return (
        f"[{report['elapsed_s']:.0f}s] rounds {rounds['settled']} settled, {rounds['failed']}"
        f" failed, {rounds['unknown']} unknown, {report['in_flight']} in flight;"
        f" launches {report['launches']['ok']} ok, {report['launches']['failed']} failed;"
        f" round p50 {latency['p50']} ms p99 {latency['p99']} ms"
    )


def summary_line(report: Mapping[str, Any]) -> str:
    launches, rounds = report["launches"], report["rounds"]
    latency = report["latency_ms"]["round"]
    return (
        f"players saw: launches {launches['ok']} ok, {launches['failover']} failover,"
        f" {launches['failed']} failed; rounds {rounds['settled']} settled,"
        f" {rounds['failed']} failed, {rounds['unknown']} unknown;"
        f" round latency p50 {latency['p50']} ms, p99 {latency['p99']} ms"
    )


def money_line(result: Mapping[str, Any]) -> str:
    if result.get("ok"):
        return (
            f"money: reconciled, {result['transactions']} wallet transactions,"
            f" {result['players_checked']} players, no lost or duplicated transaction"
        )
    problems = [f"{m['problem']} {m['subject']}: {m['detail']}" for m in result["mismatches"]]
    return "money: MISMATCHES\n  " + "\n  ".join(problems[:20])


def _labels(labels: Mapping[str, str], skip: Iterable[str] = ("alertname",)) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skip)
    return f"{{{inner}}}" if inner else ""


def alert_lines(
    before: Mapping[str, dict[str, Any]], now: Mapping[str, dict[str, Any]]
) -> list[str]:
    """Alerts (keyed by their labels) that started firing or stopped since the last look."""
    out = []
    for key, alert in now.items():
        if alert["state"] == "firing" and before.get(key, {}).get("state") != "firing":
            name = alert["labels"].get("alertname", "?")
            out.append(f"alert {name} firing {_labels(alert['labels'])} value {alert['value']}")
    for key, alert in before.items():
        if alert["state"] == "firing" and now.get(key, {}).get("state") != "firing":
            name = alert["labels"].get("alertname", "?")
            out.append(f"alert {name} resolved {_labels(alert['labels'])}")
    return out


def audit_line(event: Mapping[str, Any]) -> str:
    data = event.get("data") or {}
    words = [f"{k}={data[k]}" for k in _AUDIT_KEYS if data.get(k) not in (None, "")]
    execution = f" [{str(event['execution_id'])[:8]}]" if event.get("execution_id") else ""
    return f"{event['kind']}{execution} {' '.join(words)}".rstrip()


def fault_lines(
    before: Mapping[str, dict[str, Any]], now: Mapping[str, dict[str, Any]]
) -> list[str]:
    def text(f: Mapping[str, Any]) -> str:
        return f"{f['kind']} on {f.get('target') or f['role']} (magnitude {f.get('magnitude')})"

    out = [f"fault injected: {text(f)}" for k, f in now.items() if k not in before]
    out += [f"fault cleared: {text(f)}" for k, f in before.items() if k not in now]
    return out


class LiveEvents:
    """Polls the control plane (alerts, audit log) and the aggregator roles (faults), and
    returns the new happenings as console lines."""

    def __init__(
        self,
        *,
        controlplane_url: str,
        admin_urls: Mapping[str, str],
        admin_token: str,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cp, self._admin = controlplane_url, dict(admin_urls)
        self._auth = {"Authorization": f"Bearer {admin_token}"}
        self._http = http or requests.Session()
        self._clock = clock
        self._alerts: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, dict[str, Any]] | None = None  # None: not looked yet
        self._audit_after: int | None = None

    def poll(self) -> list[str]:
        lines = self._alert_lines() + self._audit_lines() + self._fault_lines()
        stamp = time.strftime("%H:%M:%S", time.localtime(self._clock()))
        return [f"[{stamp}] {line}" for line in lines]

    def _alert_lines(self) -> list[str]:
        body = self._get(f"{self._cp}/api/v1/alerts")
        if body is None:
            return []
        now = {_key(a["labels"]): a for a in body.get("data", {}).get("alerts", [])}
        lines, self._alerts = alert_lines(self._alerts, now), now
        return lines

    def _audit_lines(self) -> list[str]:
        after = self._audit_after if self._audit_after is not None else 0
        body = self._get(f"{self._cp}/api/v1/audit?after={after}&limit=200")
        events = (body or {}).get("events", [])
        first_look = self._audit_after is None
        if events:
            self._audit_after = max(int(e["seq"]) for e in events)
        elif first_look and body is not None:
            self._audit_after = 0
        # a guard that passed is in the audit log; on the console only a refusal is news
        shown = [e for e in events if (e.get("data") or {}).get("verdict") != "pass"]
        return [] if first_look else [audit_line(e) for e in shown]

    def _fault_lines(self) -> list[str]:
        now: dict[str, dict[str, Any]] = {}
        for role, url in self._admin.items():
            # /admin/state: the one read every role answers (the front door has no GET faults)
            body = self._get(f"{url}/admin/state", headers=self._auth)
            if body is None:
                return []  # a role not answering: compare next time, not against nothing
            now.update({f"{role}:{f['id']}": {**f, "role": role} for f in body.get("faults", [])})
        before, self._faults = self._faults, now
        return [] if before is None else fault_lines(before, now)

    def _get(self, url: str, headers: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        try:
            resp = self._http.get(url, timeout=2, headers=dict(headers or {}))
            body = resp.json() if resp.ok else None
        except (requests.RequestException, ValueError):
            return None
        return body if isinstance(body, dict) else None


def _key(labels: Mapping[str, str]) -> str:
    return os.linesep.join(f"{k}={v}" for k, v in sorted(labels.items()))
