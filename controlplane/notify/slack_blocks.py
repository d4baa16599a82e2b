"""Block Kit for the Slack messages: pure functions from what a group shows to blocks.

    text, blocks = render(view, actions=buttons.for_group)     # one alert group's message
    text, blocks = reply(severity, message, link)               # a runbook's line in its thread

`text` is the fallback Slack shows in notifications and where blocks cannot be shown. Slack's
limits are kept here (150 characters of header, 3000 of section text, 10 fields, 50 blocks),
so a group with long annotations or many alerts is clipped rather than refused
(`invalid_blocks` would lose the whole message). Buttons come from the injected `actions`
hook (controlplane/slack/buttons.py); without it the message has no actions block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey, common

Block = dict[str, Any]

HEADER_MAX, SECTION_MAX, FIELD_MAX, FIELDS_MAX = 150, 3000, 2000, 10
CONTEXT_MAX, ACTIONS_MAX, BLOCKS_MAX = 10, 25, 50
INCIDENT_ID = "%Y%m%d-%H%M"  # dashboards/incidents.py ID_FORMAT: the minute it started, UTC
# shown elsewhere in the message (the title, the severity line, the budget section)
_NOT_FIELDS = frozenset({"alertname", "severity"})
_BUDGET_ANNOTATIONS = ("budget_burnt", "error_budget_burnt", "burn_rate", "budget_remaining")
_EMOJI = {"page": ":red_circle:", "critical": ":red_circle:", "resolved": ":white_check_mark:"}
_SEVERITY_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


@dataclass(frozen=True, kw_only=True)
class ExecutionRef:
    id: str
    runbook: str
    state: str
    target: str = ""


@dataclass(frozen=True, kw_only=True)
class Automation:
    """What automation is doing about the group, as of the message's last update."""

    paused: bool = False
    reason: str = ""
    executions: tuple[ExecutionRef, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MessageView:
    """One group's message. `key` and `alerts` are what the dispatcher's GroupView has, so the
    buttons' hook reads either; the rest is the channel's configuration and what we know."""

    key: GroupKey
    receiver: str
    status: AlertStatus
    alerts: tuple[Alert, ...]
    started_at: datetime  # the group's first alert's start: names its incident
    external_url: str = ""
    title: str = ""
    text: str = ""
    mention: str = ""
    max_alerts: int = 10
    automation: Automation | None = None


Actions = Callable[[MessageView], list[Block]]


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn and plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def incident_url(view: MessageView) -> str:
    minute = view.started_at.astimezone(UTC).strftime(INCIDENT_ID)
    return f"{view.external_url.rstrip('/')}/dash/incidents/{minute}"


def counts(view: MessageView) -> tuple[int, int]:
    firing = sum(1 for a in view.alerts if a.notified_status is AlertStatus.FIRING)
    return firing, len(view.alerts) - firing


def title(view: MessageView) -> str:
    """Alertmanager's default Slack title: `[FIRING:2] Name (group labels)`."""
    if view.title:
        return view.title
    firing, _ = counts(view)
    state = f"FIRING:{firing}" if view.status is AlertStatus.FIRING else "RESOLVED"
    labels = dict(view.key.labels)
    name = labels.pop("alertname", "") or _common(view).get("alertname", "alerts")
    where = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"[{state}] {name}" + (f" ({where})" if where else "")


def fallback_text(view: MessageView) -> str:
    summary = view.text or escape(_annotation(view, "summary"))
    mention = f"{view.mention} " if view.mention and view.status is AlertStatus.FIRING else ""
    text = f"{mention}{escape(title(view))}" + (f": {summary}" if summary else "")
    return clip(text, SECTION_MAX)


def render(view: MessageView, actions: Actions | None = None) -> tuple[str, list[Block]]:
    """The fallback text and the blocks of one group's message."""
    blocks: list[Block] = [_header(view), _overview(view)]
    fields = _fields(view)
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.extend(_budget(view))
    blocks.extend(_alert_list(view))
    blocks.extend(_automation(view.automation, view.external_url))
    blocks.append(_links(view))
    elements = (actions(view) if actions is not None else [])[:ACTIONS_MAX]
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    return fallback_text(view), blocks[:BLOCKS_MAX]


def reply(
    severity: str, message: str, link: tuple[str, str] | None = None
) -> tuple[str, list[Block]]:
    """A line in a group's thread: a runbook started, a step, a verdict, an approval."""
    emoji = _SEVERITY_EMOJI.get(severity, _SEVERITY_EMOJI["info"])
    text = clip(f"{emoji} {escape(message)}", SECTION_MAX)
    blocks: list[Block] = [_mrkdwn_section(text)]
    if link is not None:
        blocks.append(_context([f"<{link[0]}|{escape(link[1])}>"]))
    return clip(message, SECTION_MAX), blocks


def _header(view: MessageView) -> Block:
    emoji = _emoji(view)
    text = clip(f"{emoji} {title(view)}", HEADER_MAX)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _overview(view: MessageView) -> Block:
    firing, resolved = counts(view)
    severity = _common(view).get("severity", "")
    lines = []
    if view.mention and view.status is AlertStatus.FIRING:
        lines.append(view.mention)
    status = f"*Status* {view.status.value}: {firing} firing, {resolved} resolved"
    lines.append(f"*Severity* `{escape(severity)}` · {status}" if severity else status)
    summary = view.text or escape(_annotation(view, "summary"))
    if summary:
        lines.append(f"*{summary}*" if not view.text else summary)
    description = escape(_annotation(view, "description"))
    if description:
        lines.append(description)
    return _mrkdwn_section("\n".join(lines))


def _fields(view: MessageView) -> list[Block]:
    """The labels that matter: the group's own, then those every alert shares."""
    shown = dict(view.key.labels) | _common(view)
    names = [n for n in shown if n not in _NOT_FIELDS and not n.startswith("slo_")]
    return [
        {"type": "mrkdwn", "text": clip(f"*{escape(n)}*\n{escape(shown[n])}", FIELD_MAX)}
        for n in names[:FIELDS_MAX]
    ]


def _budget(view: MessageView) -> list[Block]:
    """What an SLO alert carries about its error budget; nothing for other alerts."""
    labels = _common(view)
    slo_id = labels.get("slo_id")
    if not slo_id:
        return []
    name = " ".join(x for x in (labels.get("slo_service"), labels.get("slo_name")) if x)
    parts = [f"*Error budget* · SLO <{_dash(view.external_url, 'slos', slo_id)}|{escape(slo_id)}>"]
    if name:
        parts.append(escape(name))
    if labels.get("slo_severity"):
        parts.append(f"burning at {escape(labels['slo_severity'])} rate")
    for key in _BUDGET_ANNOTATIONS:
        value = _annotation(view, key)
        if value:
            parts.append(f"{key.replace('_', ' ')}: {escape(value)}")
    return [_mrkdwn_section(" · ".join(parts))]


def _alert_list(view: MessageView) -> list[Block]:
    """One line per alert with what sets it apart from the others, when there are several."""
    if len(view.alerts) < 2:
        return []
    shared = set(_common(view))
    lines = []
    for alert in view.alerts[: view.max_alerts]:
        own = ", ".join(f"{k}={v}" for k, v in alert.labels if k not in shared) or "(same labels)"
        if alert.ends_at is not None:
            when = f"resolved {_hhmm(alert.ends_at)}"
        else:
            when = f"since {_hhmm(alert.starts_at)}"
        emoji = _EMOJI["resolved"] if alert.ends_at is not None else ":small_red_triangle:"
        lines.append(f"{emoji} `{escape(own)}` {when}")
    hidden = len(view.alerts) - view.max_alerts
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    return [_mrkdwn_section("\n".join(lines))]


def _automation(automation: Automation | None, external_url: str) -> list[Block]:
    if automation is None:
        return []
    lines = []
    if automation.paused:
        lines.append(f":double_vertical_bar: *Automation paused* {escape(automation.reason)}")
    for ex in automation.executions:
        link = _dash(external_url, "executions", ex.id)
        target = f" on {escape(ex.target)}" if ex.target else ""
        lines.append(f":gear: <{link}|{escape(ex.runbook)}>{target}: {escape(ex.state)}")
    if not lines:
        lines.append(":gear: no runbook has acted on these alerts")
    return [_mrkdwn_section("\n".join(lines))]


def _links(view: MessageView) -> Block:
    links = [f"<{incident_url(view)}|Incident timeline>"]
    runbook = _annotation(view, "runbook_url")
    if runbook:
        links.append(f"<{runbook}|Runbook>")
    sources = sorted({a.generator_url for a in view.alerts if a.generator_url})
    if len(sources) == 1:
        links.append(f"<{sources[0]}|Query>")
    links.append(f"started {_hhmm(view.started_at)}")
    return _context(links)


def _mrkdwn_section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def _context(items: Sequence[str]) -> Block:
    elements = [{"type": "mrkdwn", "text": clip(t, FIELD_MAX)} for t in items[:CONTEXT_MAX]]
    return {"type": "context", "elements": elements}


def _common(view: MessageView) -> dict[str, str]:
    return common([a.labels for a in view.alerts])


def _annotation(view: MessageView, name: str) -> str:
    """The annotation every alert agrees on, else the first firing alert's (a group of one
    name usually shares its runbook but not its summary)."""
    shared = common([a.annotations for a in view.alerts]).get(name)
    if shared is not None:
        return shared
    firing = [a for a in view.alerts if a.ends_at is None] or list(view.alerts)
    return next((dict(a.annotations)[name] for a in firing if name in dict(a.annotations)), "")


def _emoji(view: MessageView) -> str:
    if view.status is AlertStatus.RESOLVED:
        return _EMOJI["resolved"]
    return _EMOJI.get(_common(view).get("severity", ""), ":large_orange_circle:")


def _dash(external_url: str, page: str, ident: str) -> str:
    return f"{external_url.rstrip('/')}/dash/{page}/{ident}"


def _hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M UTC")
