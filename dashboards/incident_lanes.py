"""What the incident page draws on its one time axis, lane by lane: the faults the aggregator
reported, each alert's pending and firing spans, each execution with its steps, and the
decisions the audit log holds (guard refusals, verifications, approvals, notifications,
automation switches); and all of it again as one chronological list. Pure functions of the
data the incident's queries returned (dashboards/incidents.py reads it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from controlplane.audit import AuditEvent
from controlplane.model.series import METRIC_NAME, Series
from controlplane.rules.alerting import ALERT_STATE
from controlplane.runbooks.store import FINAL, Execution, State, StepRecord

Key = tuple[tuple[str, str], ...]  # an alert's labels, sorted: what tells two alerts apart


class Tone(StrEnum):
    """What a span or mark means, for its colour: bad, a warning, good, news, waiting."""

    BAD = "bad"
    WARN = "warn"
    GOOD = "good"
    INFO = "info"
    PENDING = "pending"
    NEUTRAL = "neutral"
    FAULT = "fault"


# lane -> its title; in this order, top to bottom
LANES = {
    "faults": "faults",
    "alerts": "alerts",
    "executions": "executions",
    "guards": "guard refusals",
    "verification": "verifications",
    "approvals": "approvals",
    "notifications": "notifications",
    "automation": "automation switches",
}
STATE_TONES = {
    State.SUCCEEDED: Tone.GOOD,
    State.FAILED: Tone.BAD,
    State.ROLLED_BACK: Tone.BAD,
    State.ROLLING_BACK: Tone.BAD,
    State.REFUSED: Tone.WARN,
    State.REJECTED: Tone.WARN,
    State.EXPIRED: Tone.WARN,
    State.ABORTED: Tone.WARN,
    State.SHADOWED: Tone.NEUTRAL,
    State.PENDING_APPROVAL: Tone.PENDING,
    State.RUNNING: Tone.INFO,
    State.VERIFYING: Tone.INFO,
}
# labels every alert of a kind shares, or that its row already says
_QUIET_LABELS = {METRIC_NAME, ALERT_STATE, "alertname", "severity", "team"}


@dataclass(frozen=True, kw_only=True)
class Span:
    lane: str
    row: str
    start_ms: int
    end_ms: int
    tone: Tone
    opened: str  # what its start means, for the list
    closed: str | None  # what its end means (None: nothing happened then, or it goes on)
    who: str
    ongoing: bool = False  # still so at the end of what was read


@dataclass(frozen=True, kw_only=True)
class Mark:
    lane: str
    row: str
    at_ms: int
    tone: Tone
    what: str
    who: str


@dataclass(frozen=True, kw_only=True)
class Entry:
    at_ms: int
    lane: str
    what: str
    who: str
    tone: Tone


@dataclass(frozen=True, kw_only=True)
class Lanes:
    spans: tuple[Span, ...] = ()
    marks: tuple[Mark, ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        """(lane, row) top to bottom: lanes in their order, rows by when they first appear."""
        first: dict[tuple[str, str], int] = {}
        for lane, row, at in [(s.lane, s.row, s.start_ms) for s in self.spans] + [
            (m.lane, m.row, m.at_ms) for m in self.marks
        ]:
            first[(lane, row)] = min(at, first.get((lane, row), at))
        order = list(LANES)
        return sorted(first, key=lambda k: (order.index(k[0]), first[k], k[1]))

    def with_data(self) -> list[str]:
        return list(dict.fromkeys(lane for lane, _row in self.rows()))

    def entries(self) -> list[Entry]:
        """Everything that happened, in order: a span's start, its marks, its end if it ended."""
        out = [
            (m.at_ms, 1, Entry(at_ms=m.at_ms, lane=m.lane, what=m.what, who=m.who, tone=m.tone))
            for m in self.marks
        ]
        for s in self.spans:
            opened = Entry(at_ms=s.start_ms, lane=s.lane, what=s.opened, who=s.who, tone=s.tone)
            out.append((s.start_ms, 0, opened))
            if s.closed is not None:
                tone = Tone.GOOD if s.lane in ("faults", "alerts") else s.tone
                closed = Entry(at_ms=s.end_ms, lane=s.lane, what=s.closed, who=s.who, tone=tone)
                out.append((s.end_ms, 2, closed))
        order = list(LANES)
        out.sort(key=lambda item: (item[0], item[1], order.index(item[2].lane)))
        return [entry for _at, _rank, entry in out]


def runs(t_ms: Sequence[int], step_ms: int) -> list[tuple[int, int]]:
    """Consecutive points of a series (no point missed at `step_ms`) as (first, last)."""
    if not len(t_ms):
        return []
    t = np.asarray(t_ms, dtype=np.int64)
    breaks = np.nonzero(np.diff(t) > step_ms)[0]
    starts = [0, *(breaks + 1).tolist()]
    ends = [*breaks.tolist(), len(t) - 1]
    return [(int(t[a]), int(t[b])) for a, b in zip(starts, ends, strict=True)]


def alert_key(labels: Mapping[str, str]) -> Key:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in (METRIC_NAME, ALERT_STATE)))


def alert_row(labels: Mapping[str, str]) -> str:
    """`ProviderFailing eu/evolution (page)`: the region first, then what else tells it apart."""
    shown = {k: v for k, v in labels.items() if k not in _QUIET_LABELS and not k.startswith("slo_")}
    where = [shown.pop("region")] if "region" in shown else []
    where += [shown[k] for k in sorted(shown)]
    place = f" {'/'.join(where)}" if where else ""
    return f"{labels.get('alertname', '?')}{place} ({labels.get('severity') or 'none'})"


def severity_tone(severity: str) -> Tone:
    return Tone.BAD if severity in ("page", "critical") else Tone.WARN


def fault_spans(
    region: Sequence[Series], wallet: Sequence[Series], step_ms: int, live_from: int | None
) -> list[Span]:
    """Each injected fault while the aggregator reported it (the wallet's have no region)."""
    spans = []
    for series, is_wallet in [(s, False) for s in region] + [(s, True) for s in wallet]:
        labels = dict(series.labels)
        where = "wallet" if is_wallet else labels.get("region", "?")
        kind = labels.get("kind", "?")
        for first, last in runs(series.timestamps.tolist(), step_ms):
            over = live_from is None or last < live_from
            spans.append(
                Span(
                    lane="faults",
                    row=f"{where}: {kind}",
                    start_ms=first,
                    end_ms=last,
                    tone=Tone.FAULT,
                    opened=f"fault {kind} active in {where}",
                    closed=f"fault {kind} over in {where}" if over else None,
                    who="aggregator",
                    ongoing=not over,
                )
            )
    return spans


def alert_spans(
    series: Sequence[Series], keys: set[Key], step_ms: int, live_from: int | None
) -> list[Span]:
    """Pending and firing spans of the incident's alerts (the ALERTS series of `keys`)."""
    spans = []
    for one in series:
        labels = dict(one.labels)
        state = labels.get(ALERT_STATE, "firing")
        if alert_key(labels) not in keys:
            continue
        row = alert_row(labels)
        for first, last in runs(one.timestamps.tolist(), step_ms):
            over = live_from is None or last < live_from
            firing = state == "firing"
            spans.append(
                Span(
                    lane="alerts",
                    row=row,
                    start_ms=first,
                    end_ms=last,
                    tone=severity_tone(labels.get("severity", "")) if firing else Tone.PENDING,
                    opened=f"{row} {state}",
                    closed=f"{row} resolved" if firing and over else None,
                    who="rules",
                    ongoing=not over,
                )
            )
    return _cleared(spans, step_ms)


def episode_span(labels: Mapping[str, str], start_ms: int, end_ms: int, ongoing: bool) -> Span:
    row = alert_row(labels)
    return Span(
        lane="alerts",
        row=row,
        start_ms=start_ms,
        end_ms=end_ms,
        tone=severity_tone(labels.get("severity", "")),
        opened=f"{row} active",
        closed=None if ongoing else f"{row} resolved",
        who="external",
        ongoing=ongoing,
    )


def _cleared(spans: list[Span], step_ms: int) -> list[Span]:
    """A pending span that ended without its alert firing says so."""
    firing = {(s.row, s.start_ms) for s in spans if s.tone is not Tone.PENDING}
    out = []
    for s in spans:
        fired = any(row == s.row and 0 <= at - s.end_ms <= 2 * step_ms for row, at in firing)
        ends = s.tone is Tone.PENDING and not fired and not s.ongoing
        out.append(s if not ends else _replace_closed(s, f"{s.row} cleared before firing"))
    return out


def _replace_closed(span: Span, closed: str | None) -> Span:
    return dataclasses.replace(span, closed=closed)


def execution_row(ex: Execution) -> str:
    return f"{ex.runbook} {ex.target_key}"


def execution_lane(
    executions: Sequence[Execution], steps: Mapping[str, Sequence[StepRecord]], now_ms: int
) -> tuple[list[Span], list[Mark]]:
    """Each execution from its start to its end (now while it runs), its steps as marks."""
    spans, marks = [], []
    for ex in executions:
        row = execution_row(ex)
        final = ex.state in FINAL
        why = f" ({ex.reason})" if ex.reason else ""
        spans.append(
            Span(
                lane="executions",
                row=row,
                start_ms=round(ex.created_at * 1000),
                end_ms=round(ex.updated_at * 1000) if final else now_ms,
                tone=STATE_TONES.get(ex.state, Tone.NEUTRAL),
                opened=f"{ex.runbook} on {ex.target_key}: {_trigger(ex)}",
                # a refusal is told by the guard that refused, on its own lane
                closed=f"{ex.runbook} on {ex.target_key}: {_state(ex.state)}{why}"
                if final and ex.state is not State.REFUSED
                else None,
                who=ex.requested_by,
                ongoing=not final,
            )
        )
        marks += [_step_mark(ex, row, s) for s in steps.get(ex.id, ())]
    return spans, marks


def _trigger(ex: Execution) -> str:
    if ex.trigger == "manual":
        return f"run by {ex.requested_by}{' (dry run)' if ex.dry_run else ''}"
    return f"triggered by {ex.labels.get('alertname', 'an alert')}"


def _state(state: State) -> str:
    return state.value.replace("_", " ")


def _step_mark(ex: Execution, row: str, step: StepRecord) -> Mark:
    tones = {"done": Tone.GOOD, "failed": Tone.BAD}
    phase = "" if step.phase == "steps" else f"{step.phase} "
    return Mark(
        lane="executions",
        row=row,
        at_ms=round(step.started_at * 1000),
        tone=tones.get(step.state, Tone.INFO),
        what=f"{ex.runbook}: {phase}step {step.step_id} ({step.action}) {step.state}",
        who="controlplane" if ex.trigger == "alert" else ex.requested_by,
    )


def audit_marks(events: Sequence[AuditEvent], executions: Mapping[str, Execution]) -> list[Mark]:
    """The audit log's decisions: refusals, verifications, approvals, notifications and
    switches; what executions and steps did is on their own lane already."""
    refused_by_guard = {
        e.execution_id for e in events if e.kind == "guard" and e.data.get("verdict") == "refuse"
    }
    marks = []
    for event in sorted(events, key=lambda e: e.seq):
        if event.kind == "refused" and event.execution_id in refused_by_guard:
            continue  # the guard's own refusal says it, with its name
        ex = executions.get(event.execution_id or "")
        if ex is not None and not event.data.get("reason") and ex.reason:
            event = dataclasses.replace(event, data={**event.data, "reason": ex.reason})
        mark = _audit_mark(event, f"{ex.runbook} on {ex.target_key}: " if ex else "")
        if mark is not None:
            marks.append(mark)
    return marks


def _audit_mark(event: AuditEvent, subject: str) -> Mark | None:
    for matches, lane, describe in _KINDS:
        if matches(event.kind, event.data):
            tone, what = describe(event.kind, event.data)
            at_ms = round(event.at * 1000)
            row, who = LANES[lane], event.actor
            return Mark(lane=lane, row=row, at_ms=at_ms, tone=tone, what=subject + what, who=who)
    return None


def _reason(data: Mapping[str, object]) -> str:
    return str(data.get("reason") or "")


def _guard(kind: str, data: Mapping[str, object]) -> tuple[Tone, str]:
    if kind == "guard":
        return Tone.BAD, f"guard {data.get('guard', '?')} refused: {_reason(data)}"
    return Tone.WARN, f"{kind}: {_reason(data) or 'no reason given'}"


def _verification(_kind: str, data: Mapping[str, object]) -> tuple[Tone, str]:
    ok = bool(data.get("ok"))
    held = "held" if ok else "did not hold"
    return (Tone.GOOD if ok else Tone.BAD), f"verification {held}: {data.get('expr', '')}"


def _approval(kind: str, data: Mapping[str, object]) -> tuple[Tone, str]:
    if kind == "approved":
        return Tone.GOOD, f"approved ({data.get('count', '?')} of {data.get('needed', '?')})"
    if kind == "pending_approval":
        why = _reason(data)
        return Tone.PENDING, f"waits for approval: {why}" if why else "waits for approval"
    return Tone.WARN, f"{kind.replace('_', ' ')} {_reason(data)}".strip()


def _notification(kind: str, data: Mapping[str, object]) -> tuple[Tone, str]:
    if kind.startswith("silence"):
        matchers = data.get("matchers") or []
        shown = ", ".join(str(m) for m in matchers) if isinstance(matchers, list) else matchers
        return Tone.NEUTRAL, f"{kind.replace('_', ' ')}: {shown}"
    alerts = data.get("alerts") or []
    names = ", ".join(str(a) for a in alerts) if isinstance(alerts, list) else str(alerts)
    status = str(data.get("status", ""))
    via = f" via {data['integration']}" if data.get("integration") else ""
    to = f" to {data['receiver']}" if data.get("receiver") else ""
    tone = Tone.GOOD if status == "resolved" else Tone.INFO
    return tone, f"{kind.replace('_', ' ')} {names} {status}{to}{via}".replace("  ", " ")


def _switch(kind: str, data: Mapping[str, object]) -> tuple[Tone, str]:
    tone = Tone.WARN if kind.endswith(("paused", "started")) else Tone.NEUTRAL
    return tone, f"{kind.replace('_', ' ')} {_reason(data)}".strip()


Matcher = Callable[[str, Mapping[str, object]], bool]
Describer = Callable[[str, Mapping[str, object]], tuple[Tone, str]]
_KINDS: tuple[tuple[Matcher, str, Describer], ...] = (
    (lambda k, d: k == "guard" and d.get("verdict") == "refuse", "guards", _guard),
    (lambda k, _d: k in ("refused", "aborted"), "guards", _guard),
    (lambda k, _d: k == "verification", "verification", _verification),
    (
        lambda k, _d: k in ("approved", "rejected", "expired", "pending_approval"),
        "approvals",
        _approval,
    ),
    # what the notifier or Slack record (`notified`, `slack_*`), and silences
    (lambda k, _d: k.startswith(("notif", "slack", "silence")), "notifications", _notification),
    (lambda k, _d: k.startswith(("automation_", "maintenance_")), "automation", _switch),
)
