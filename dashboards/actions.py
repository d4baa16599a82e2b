"""What the dashboards' buttons do, and the controls they sit in.

Each `*_do` returns the function `acting.act` runs as the signed-in person: it calls the same
`Operations` method as the HTTP API, so the role checks, the refusals and the audit events are
those of the API. The controls are pure components; pages wire them in small callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dash_mantine_components as dmc
from dash import html

from controlplane.access import User
from controlplane.model.series import MatchOp
from controlplane.notify.matchers import new_matcher
from controlplane.operate import Operations, SilenceRequest
from dashboards import text
from dashboards.acting import Outcome
from dashboards.activity import AlertRow

SILENCE_HOURS = (1, 4)
_MAX_REASON = 500


def pause_do(reason: str | None) -> Callable[[Operations, User], str]:
    def do(ops: Operations, user: User) -> str:
        ops.pause(user, (reason or "")[:_MAX_REASON])
        return f"automation paused by {user.name}"

    return do


def resume_do() -> Callable[[Operations, User], str]:
    def do(ops: Operations, user: User) -> str:
        ops.resume(user)
        return f"automation resumed by {user.name}"

    return do


def approve_do(execution_id: str) -> Callable[[Operations, User], str]:
    def do(ops: Operations, user: User) -> str:
        ex = ops.approve(user, execution_id)
        return f"approved by {user.name}: {len(ex.approvals)} approval(s), now {ex.state.value}"

    return do


def reject_do(execution_id: str, reason: str | None) -> Callable[[Operations, User], str]:
    def do(ops: Operations, user: User) -> str:
        ex = ops.reject(user, execution_id, (reason or "")[:_MAX_REASON])
        return f"rejected by {user.name}: now {ex.state.value}"

    return do


def silence_matchers(row: AlertRow) -> dict[str, str]:
    """What a silence from the dashboards matches: the alert and its identifying labels."""
    return {"alertname": row.name, **row.labels}


def silence_do(
    matchers: Mapping[str, str], hours: int, now_s: float
) -> Callable[[Operations, User], str]:
    def do(ops: Operations, user: User) -> str:
        if hours not in SILENCE_HOURS or not matchers:
            return "nothing to silence"
        silence = ops.silence(
            user,
            SilenceRequest(
                matchers=[new_matcher(k, MatchOp.EQ, v) for k, v in sorted(matchers.items())],
                ends_at=datetime.fromtimestamp(now_s, UTC) + timedelta(hours=hours),
                comment=f"silenced for {hours}h from the dashboards",
            ),
        )
        return f"silenced {text.labels(matchers)} for {hours}h ({silence.id[:8]})"

    return do


def run_do(
    runbook: str, labels: Mapping[str, str], *, dry_run: bool
) -> Callable[[Operations, User], Outcome]:
    def do(ops: Operations, user: User) -> Outcome:
        ex = ops.run(user, runbook, labels=labels, params={}, dry_run=dry_run)
        verb = "planned (dry run, nothing changed)" if dry_run else "started"
        return Outcome(
            ok=ex.state.value not in ("refused", "failed"),
            message=f"{runbook} {verb}: {ex.state.value}{f' ({ex.reason})' if ex.reason else ''}",
            link=f"/executions/{ex.id}",
        )

    return do


def parse_labels(raw: str | None) -> tuple[dict[str, str], str | None]:
    """`region=eu provider=pv1` (spaces or commas) -> labels, or why not."""
    labels: dict[str, str] = {}
    for part in (raw or "").replace(",", " ").split():
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            return {}, f"{part!r} is not name=value"
        labels[name.strip()] = value.strip().strip('"')
    return labels, None


# components


def outcome(result: Outcome | None, params: Mapping[str, str] | None = None) -> Any:
    if result is None:
        return None
    children: list[Any] = [result.message]
    if result.link:
        children += [" ", dmc.Anchor("open", href=text.link(result.link, params or {}))]
    return dmc.Alert(
        children,
        color="green" if result.ok else "red",
        variant="light",
        p="xs",
        mt="xs",
        className="acted ok" if result.ok else "acted refused",
    )


def automation_controls() -> Any:
    return dmc.Stack(
        [
            dmc.TextInput(id="ov-reason", placeholder="reason (for the audit log)", size="xs"),
            dmc.Group(
                [
                    dmc.Button("Pause automation", id="ov-pause", color="red", size="xs"),
                    dmc.Button("Resume", id="ov-resume", variant="default", size="xs"),
                ],
                gap="xs",
            ),
            html.Div(id="ov-acted"),
        ],
        gap=6,
        mt="sm",
    )


def silence_controls() -> Any:
    return dmc.Group(
        [
            dmc.Select(
                id="ov-silence-alert",
                placeholder="an alert to silence",
                data=[],
                size="xs",
                w=360,
                comboboxProps={"withinPortal": True},
            ),
            *[
                dmc.Button(f"Silence {h}h", id=f"ov-silence-{h}", size="xs", variant="default")
                for h in SILENCE_HOURS
            ],
            html.Div(id="ov-silenced"),
        ],
        gap="xs",
        mt="sm",
    )


def approval_controls() -> Any:
    """Shown while the execution waits; what a click did stays shown after it moved on."""
    buttons = dmc.Group(
        [
            dmc.Button("Approve", id="exd-approve", color="green", size="xs"),
            dmc.TextInput(id="exd-reason", placeholder="why reject", size="xs", w=260),
            dmc.Button("Reject", id="exd-reject", color="red", variant="outline", size="xs"),
        ],
        gap="xs",
        id="exd-actions",
        style={"display": "none"},
    )
    return html.Div([buttons, html.Div(id="exd-acted")], style={"marginBottom": 12})


def run_controls(runbooks: list[str]) -> Any:
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Select(
                        id="run-runbook",
                        data=runbooks,
                        placeholder="runbook",
                        size="xs",
                        w=220,
                        comboboxProps={"withinPortal": True},
                    ),
                    dmc.TextInput(
                        id="run-labels", placeholder="region=eu provider=pv1", size="xs", w=300
                    ),
                    dmc.Button("Plan (dry run)", id="run-plan", size="xs", variant="default"),
                    dmc.Button("Run", id="run-go", size="xs", disabled=True),
                ],
                gap="xs",
            ),
            html.Div(id="run-acted"),
        ],
        gap=4,
    )


def alert_options(rows: list[AlertRow]) -> list[dict[str, str]]:
    """One option per alert; the value is what the silence will match."""
    seen: dict[str, dict[str, str]] = {}
    for row in rows:
        matchers = silence_matchers(row)
        key = text.labels(matchers)
        seen.setdefault(key, {"label": f"{row.name} {text.labels(row.labels)}", "value": key})
    return list(seen.values())


def matchers_of(value: str | None, rows: list[AlertRow]) -> dict[str, str]:
    """The matchers of the chosen option, from the alerts as they are now."""
    for row in rows:
        matchers = silence_matchers(row)
        if text.labels(matchers) == value:
            return matchers
    return {}
