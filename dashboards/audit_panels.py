"""Panels of one execution (steps, guard decisions, verification, who did what) and of the
audit log (events, the hash chain's verification), as pure functions of the data."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dash_mantine_components as dmc

from controlplane.audit import AuditEvent
from controlplane.runbooks.store import ACTIVE, StepRecord
from dashboards import text
from dashboards.activity import AuditPage, ChainStatus, ExecutionDetail
from dashboards.panels import anchor, badge, card, empty, scroll, stat, state_badge, table

KIND_COLOURS = {
    "triggered": "blue",
    "guard": "gray",
    "step": "cyan",
    "verification": "teal",
    "succeeded": "green",
    "failed": "red",
    "rolled_back": "red",
    "refused": "orange",
    "rejected": "orange",
    "expired": "orange",
    "approved": "violet",
    "pending_approval": "violet",
    "automation_paused": "red",
    "automation_resumed": "green",
}


def data_text(data: Mapping[str, Any], limit: int = 160) -> str:
    body = json.dumps(dict(data), sort_keys=True, default=str, separators=(", ", ": "))
    return body if len(body) <= limit else body[: limit - 1] + "…"


def execution_summary(detail: ExecutionDetail, now_s: float) -> Any:
    ex = detail.execution
    return dmc.Stack(
        [
            dmc.Group(
                [dmc.Title(ex.runbook, order=2), state_badge(ex.state), badge(ex.mode, "gray")],
                gap="sm",
            ),
            dmc.Text(ex.reason or "-", size="sm"),
            dmc.SimpleGrid(
                [
                    stat("target", ex.target_key),
                    stat("triggered by", _trigger(detail)),
                    stat(
                        "started", text.utc(ex.created_at), f"{text.age(ex.created_at, now_s)} ago"
                    ),
                    stat("last change", text.utc(ex.updated_at), _deadline(detail, now_s)),
                ],
                cols={"base": 1, "sm": 2, "lg": 4},
                spacing="sm",
            ),
            dmc.Text(
                f"labels: {text.labels(ex.labels)}    params: {data_text(ex.params, 300)}",
                size="xs",
                c="dimmed",
                ff="monospace",
            ),
        ],
        gap="sm",
    )


def _trigger(detail: ExecutionDetail) -> str:
    ex = detail.execution
    if ex.trigger == "manual":
        return f"{ex.requested_by} (manual{', dry run' if ex.dry_run else ''})"
    return f"alert {ex.labels.get('alertname', '?')}"


def _deadline(detail: ExecutionDetail, now_s: float) -> str | None:
    ex = detail.execution
    approvals = ", ".join(f"{a.get('user')} at {text.utc(a.get('at'))}" for a in ex.approvals)
    parts = [f"approved by {approvals}" if approvals else None]
    if ex.deadline and ex.state in ACTIVE:
        parts.append(f"deadline {text.utc(ex.deadline)} ({text.age(now_s, ex.deadline)} left)")
    return "; ".join(p for p in parts if p) or None


def steps_table(steps: Sequence[StepRecord]) -> Any:
    if not steps:
        return empty("No step has run.")
    colours = {"done": "green", "failed": "red", "started": "blue"}
    return scroll(
        table(
            ["phase", "step", "action", "state", "started", "took", "result"],
            [
                [
                    s.phase,
                    dmc.Text(s.step_id, fw=600, size="sm"),
                    dmc.Code(s.action),
                    badge(s.state, colours.get(s.state, "gray")),
                    dmc.Text(text.utc(s.started_at), size="xs", c="dimmed"),
                    text.duration(None if s.finished_at is None else s.finished_at - s.started_at),
                    dmc.Text(data_text(s.result), size="xs", ff="monospace"),
                ]
                for s in steps
            ],
        )
    )


def guards_table(events: Sequence[AuditEvent]) -> Any:
    if not events:
        return empty("No guard was consulted (a manual or resumed run).")
    colours = {"pass": "green", "refuse": "red", "approval": "violet", "shadow": "gray"}
    return scroll(
        table(
            ["guard", "verdict", "reason"],
            [
                [
                    dmc.Text(str(e.data.get("guard", "?")), fw=600, size="sm"),
                    badge(
                        str(e.data.get("verdict", "?")),
                        colours.get(str(e.data.get("verdict")), "gray"),
                    ),
                    dmc.Text(str(e.data.get("reason", "")), size="sm"),
                ]
                for e in events
            ],
        )
    )


def verification_panel(events: Sequence[AuditEvent]) -> Any:
    if not events:
        return empty("Not verified (yet): the runbook has no verify step, or it has not run.")
    items = []
    for e in events:
        ok = bool(e.data.get("ok"))
        items.append(
            dmc.Alert(
                [
                    dmc.Code(str(e.data.get("expr", "")), block=True),
                    dmc.Text(str(e.data.get("reason", "")), size="sm", mt=4),
                ],
                title=f"{'held' if ok else 'did not hold'} ({text.utc(e.at)})",
                color="green" if ok else "red",
                variant="light",
            )
        )
    return dmc.Stack(items, gap="xs")


def trail(events: Sequence[AuditEvent]) -> Any:
    """Who did what, in order: the execution's audit events as a timeline."""
    if not events:
        return empty("No audit event.")
    return dmc.Timeline(
        [
            dmc.TimelineItem(
                [
                    dmc.Text(data_text(e.data, 220), size="xs", ff="monospace", c="dimmed"),
                    dmc.Text(f"{text.utc(e.at)}  ·  #{e.seq}", size="xs", c="dimmed"),
                ],
                title=dmc.Group(
                    [
                        badge(e.kind, KIND_COLOURS.get(e.kind, "gray")),
                        dmc.Text(e.actor, size="sm", fw=600),
                    ],
                    gap="xs",
                ),
            )
            for e in events
        ],
        active=len(events) - 1,
        bulletSize=14,
        lineWidth=2,
    )


def chain_panel(status: ChainStatus | None, now_s: float) -> Any:
    if status is None:
        return empty("The audit chain could not be verified.")
    head = (
        "empty log"
        if status.head_seq is None
        else f"head #{status.head_seq} {(status.head_hash or '')[:16]}…"
    )
    when = f"verified {text.age(status.verified_at, now_s)} ago over {status.checked} rows; {head}"
    if status.ok:
        return dmc.Alert(when, title="Audit chain intact", color="green", variant="light")
    return dmc.Alert(
        [
            dmc.Text(when, size="sm"),
            dmc.List([dmc.ListItem(p) for p in status.problems[:10]], size="sm"),
        ],
        title="Audit chain BROKEN: the log was changed",
        color="red",
        variant="filled",
    )


def audit_table(page: AuditPage, now_s: float, params: Mapping[str, str]) -> Any:
    if not page.events:
        return empty("No audit event matches in this range.")
    rows = [
        [
            dmc.Text(f"#{e.seq}", size="xs", ff="monospace"),
            dmc.Text(text.clock(e.at, now_s), size="xs", c="dimmed"),
            dmc.Text(e.actor, size="sm", fw=600),
            badge(e.kind, KIND_COLOURS.get(e.kind, "gray")),
            anchor(e.execution_id[:8], f"/executions/{e.execution_id}", params)
            if e.execution_id
            else "-",
            dmc.Text(data_text(e.data), size="xs", ff="monospace"),
        ]
        for e in page.events
    ]
    note = f"{len(page.events)} events, newest first" + (
        " (older ones not shown)" if page.more else ""
    )
    return dmc.Stack(
        [
            dmc.Text(note, size="xs", c="dimmed"),
            scroll(table(["seq", "at (UTC)", "actor", "kind", "execution", "data"], rows)),
        ],
        gap=4,
    )


def execution_sections(detail: ExecutionDetail, now_s: float) -> list[Any]:
    return [
        execution_summary(detail, now_s),
        card("Steps", steps_table(detail.steps)),
        dmc.SimpleGrid(
            [
                card("Guard decisions", guards_table(detail.of_kind("guard"))),
                card("Verification", verification_panel(detail.of_kind("verification"))),
            ],
            cols={"base": 1, "lg": 2},
            spacing="md",
        ),
        card("Who did what", trail(detail.events)),
    ]
