"""Panels as pure functions of the data: alerts, executions, automation, and the small
pieces every page shares (tables, badges, cards, problems)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_mantine_components as dmc
from dash import html

from controlplane.runbooks.store import Execution, State
from dashboards import incidents, text
from dashboards.activity import AlertRow, Automation

SEVERITY_COLOURS = {"page": "red", "critical": "red", "ticket": "orange", "warning": "orange"}
STATE_COLOURS = {
    State.PENDING_APPROVAL: "violet",
    State.RUNNING: "blue",
    State.VERIFYING: "blue",
    State.SUCCEEDED: "green",
    State.FAILED: "red",
    State.ROLLED_BACK: "red",
    State.REFUSED: "orange",
    State.REJECTED: "orange",
    State.EXPIRED: "orange",
    State.SHADOWED: "gray",
}


NOWRAP = {"whiteSpace": "nowrap"}


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    wrap: Sequence[int] = (-1,),
    **props: Any,
) -> dmc.Table:
    """Cells keep to one line, except the columns in `wrap` (the last: free text)."""
    wrapping = {i % len(head) for i in wrap}

    def cell(i: int, content: Any) -> dmc.TableTd:
        return dmc.TableTd(content, style=None if i in wrapping else NOWRAP)

    return dmc.Table(
        [
            dmc.TableThead(dmc.TableTr([dmc.TableTh(h, style=NOWRAP) for h in head])),
            dmc.TableTbody([dmc.TableTr([cell(i, c) for i, c in enumerate(row)]) for row in rows]),
        ],
        striped=True,
        highlightOnHover=True,
        verticalSpacing=6,
        fz="sm",
        **props,
    )


def scroll(child: Any) -> dmc.TableScrollContainer:
    return dmc.TableScrollContainer(child, minWidth=640, type="native")


def card(title: str, *children: Any, extra: Any = None) -> dmc.Card:
    header = dmc.Group([dmc.Text(title, fw=600), extra], justify="space-between")
    return dmc.Card([header, *children], withBorder=True, radius="md", p="md")


def empty(message: str) -> dmc.Text:
    return dmc.Text(message, c="dimmed", size="sm", py="xs")


def problem(message: str | None) -> Any:
    if not message:
        return None
    return dmc.Alert(message, title="Not available", color="red", variant="light", my="xs")


def problems(messages: Sequence[str | None]) -> list[Any]:
    return [problem(m) for m in messages if m]


def badge(label: str, colour: str, variant: str = "light", **props: Any) -> dmc.Badge:
    return dmc.Badge(
        label,
        color=colour,
        variant=variant,
        radius="sm",
        style={"minWidth": "max-content"},
        **props,
    )


def state_badge(state: State) -> dmc.Badge:
    return badge(state.value.replace("_", " "), STATE_COLOURS[state], variant="filled")


def severity_badge(severity: str) -> dmc.Badge:
    return badge(severity or "none", SEVERITY_COLOURS.get(severity, "gray"), variant="filled")


def anchor(label: str, path: str, params: Mapping[str, str] | None = None) -> dmc.Anchor:
    return dmc.Anchor(label, href=text.link(path, params), size="sm", underline="hover")


def stat(label: str, value: Any, note: Any = None, colour: str | None = None) -> dmc.Paper:
    return dmc.Paper(
        [
            dmc.Text(label, size="xs", c="dimmed", tt="uppercase", fw=600),
            dmc.Text(value, size="xl", fw=700, **({"c": colour} if colour else {})),
            dmc.Text(note, size="xs", c="dimmed") if note else None,
        ],
        withBorder=True,
        p="sm",
        radius="md",
    )


def alert_link(row: AlertRow, params: Mapping[str, str]) -> dmc.Anchor:
    """An SLO burn alert leads to its SLO; any other to what automation did about it."""
    if row.slo_id is not None:
        return anchor(row.name, f"/slos/{row.slo_id}", {**params, **row.labels})
    return anchor(row.name, "/executions", {**params, "alert": row.name})


def alert_summary(rows: Sequence[AlertRow]) -> dmc.Group:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.severity == "none":
            continue  # a Watchdog firing means the pipeline works, not that anything burns
        key = (row.state, row.severity)
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return dmc.Group([badge("nothing firing", "green", size="lg")])
    order = sorted(counts, key=lambda k: (k[0] != "firing", SEVERITY_COLOURS.get(k[1], "~"), k))
    return dmc.Group(
        [
            badge(
                f"{counts[k]} {k[0]} {k[1] or ''}".strip(),
                SEVERITY_COLOURS.get(k[1], "gray") if k[0] == "firing" else "yellow",
                variant="filled" if k[0] == "firing" else "light",
                size="lg",
            )
            for k in order
        ],
        gap="xs",
    )


def alerts_table(rows: Sequence[AlertRow], now_s: float, params: Mapping[str, str]) -> Any:
    if not rows:
        return empty("No alert is pending or firing.")
    return scroll(
        table(
            ["severity", "alert", "where", "since (UTC)", "for", "summary"],
            [
                [
                    severity_badge(r.severity),
                    alert_link(r, params),
                    dmc.Text(text.labels(r.labels), size="sm"),
                    _since(r, now_s, params),
                    _for(r, now_s),
                    dmc.Text(r.summary, size="sm", miw=180),
                ]
                for r in rows
            ],
            wrap=(2, 5),
        )
    )


def _since(row: AlertRow, now_s: float, params: Mapping[str, str]) -> Any:
    """When it started, and the incident it belongs to (a page or ticket alert makes one)."""
    when = dmc.Text(text.clock(row.since_ms / 1000, now_s), size="xs", c="dimmed")
    if row.severity not in incidents.SEVERITIES:
        return when
    found = anchor("incident", f"/incidents/{incidents.incident_id(row.since_ms)}", params)
    return dmc.Group([when, found], gap=6, wrap="nowrap")


def _for(row: AlertRow, now_s: float) -> Any:
    """How long it has been firing; a pending alert says so."""
    held = text.age(row.since_ms / 1000, now_s)
    if row.state == "firing":
        return dmc.Text(held, fw=700, size="sm")
    return badge(f"pending {held}", "yellow", tt="none")


def waiting_badge(executions: Sequence[Execution]) -> Any:
    waiting = sum(1 for e in executions if e.state is State.PENDING_APPROVAL)
    if not waiting:
        return None
    return badge(f"{waiting} waiting for approval", "violet", variant="filled", size="lg")


def executions_table(
    executions: Sequence[Execution], now_s: float, params: Mapping[str, str]
) -> Any:
    if not executions:
        return empty("No execution matches.")
    return scroll(
        table(
            ["state", "runbook", "target", "started (UTC)", "age", "by", "reason"],
            [
                [
                    state_badge(e.state),
                    anchor(e.runbook, f"/executions/{e.id}", params),
                    dmc.Text(e.target_key, size="sm", ff="monospace"),
                    dmc.Text(text.clock(e.created_at, now_s), size="xs", c="dimmed"),
                    dmc.Text(text.age(e.created_at, now_s), size="sm"),
                    dmc.Text(_who(e), size="sm"),
                    dmc.Text(_waiting(e, now_s) or e.reason, size="sm", lineClamp=2),
                ]
                for e in executions
            ],
        )
    )


def _who(e: Execution) -> str:
    who = e.requested_by if e.trigger == "manual" else f"alert {e.labels.get('alertname', '')}"
    return f"{who} (dry run)" if e.dry_run else who


def _waiting(e: Execution, now_s: float) -> str:
    """What an execution waits for, in words: the on-call engineer's part."""
    if e.state is State.PENDING_APPROVAL:
        got = len(e.approvals)
        expires = f", expires in {text.age(now_s, e.deadline)}" if e.deadline else ""
        return f"waiting for approval ({got} so far{expires})"
    if e.state is State.VERIFYING and e.deadline:
        return f"verifying, deadline in {text.age(now_s, e.deadline)}"
    return ""


def automation_panel(state: Automation | None, now_s: float) -> Any:
    if state is None:
        return empty("Automation state unknown.")
    if state.paused:
        status = badge("paused", "red", variant="filled", size="lg")
        why = (
            f"by {state.changed_by or '?'} {text.age(state.changed_at, now_s)} ago: "
            f"{state.reason or 'no reason given'}"
        )
    else:
        status = badge("active", "green", variant="filled", size="lg")
        why = f"since {text.utc(state.changed_at)}" if state.changed_at else "never paused"
    ratio = state.used / state.max_actions if state.max_actions else 1.0
    colour = "red" if state.left == 0 else "orange" if ratio >= 0.75 else "green"
    return dmc.Stack(
        [
            dmc.Group([status, dmc.Text(why, size="sm")], gap="sm"),
            dmc.Text(
                f"action budget: {state.left} of {state.max_actions} left "
                f"({state.used} automated actions in the last {text.duration(state.window_s)})",
                size="sm",
            ),
            dmc.Progress(value=min(100.0, ratio * 100), color=colour, size="lg", radius="sm"),
            *[_maintenance(w, now_s) for w in state.maintenance],
        ],
        gap="xs",
    )


def _maintenance(window: Mapping[str, Any], now_s: float) -> Any:
    where = text.labels(window.get("matchers") or {}) or "everything"
    return dmc.Text(
        [
            badge("maintenance", "blue"),
            f" {where}: ends in {text.age(now_s, window['ends_at'])}"
            f" ({window.get('created_by', '?')}: {window.get('reason') or 'no reason'})",
        ],
        size="sm",
    )


def heading(title: str, subtitle: str | None = None) -> html.Div:
    return html.Div(
        [dmc.Title(title, order=2), dmc.Text(subtitle, c="dimmed", size="sm") if subtitle else None]
    )
