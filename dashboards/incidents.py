"""Incidents, as the on-call engineer and the postmortem mean them, derived from what the rules
recorded: the same definition holds over the embedded store and over a remote Prometheus.

An incident is a maximal span during which at least one alert of severity page or ticket
(critical and warning count alike) was pending or firing: the ALERTS_FOR_STATE series the rule
evaluator writes, read by range queries through the querier, plus the alerts pending or firing
now (`reads.alerts()`: external alerts write no series). Alerts less than `GAP_MS` (10m) apart
join into one incident, so a flapping alert stays one incident.

- It starts at the earliest `activeAt` of its alerts (the value of ALERTS_FOR_STATE), exact to
  the second whatever the query's step; its id is that minute in UTC, `20260302-1115`, so a
  link finds the same incident from any range, today or next month. A link may also name any
  minute inside an incident (the overview links an alert by its own start): the page shows the
  incident that contains it, under its own id.
- It ends when the last of its alerts was last seen, to the step of the query; it is ongoing
  while one of them still is.
- Its executions are those created while it lasted, whatever triggered them: a postmortem
  wants what was done during the incident, including by hand.
- The budget it consumed, per SLO instance, is `slo:period_error_budget_remaining:ratio` at its
  start minus at its end, in shares of the SLO window's budget.

The execution store's episodes (an execution's `resolution`, per triggering alert fingerprint)
do not define incidents: they exist only where a runbook ran, and say nothing of alerts that
triggered none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from controlplane.model.series import METRIC_NAME, Series
from controlplane.rules.alerting import Alert
from controlplane.runbooks.store import Execution, StepRecord
from dashboards import incident_lanes, queries
from dashboards.activity import AuditFilter, attempt, audit_events, severity_rank
from dashboards.incident_budget import SPENT, Budget, BudgetUse, budget_uses, budgets, matrix
from dashboards.incident_lanes import Key, Lanes, alert_key
from dashboards.reads import ReadModels
from dashboards.view import Window, step_ms

SEVERITIES = ("page", "critical", "ticket", "warning")
GAP_MS = 10 * 60_000
LOOKUP_LEAD_MS = 60 * 60_000  # before a linked minute: alerts that join the incident from before
LOOKUP_SPAN_MS = 7 * 86_400_000  # after it: an incident longer than this is cut there
ID_FORMAT = "%Y%m%d-%H%M"
MAX_EXECUTIONS = 100


@dataclass(frozen=True, kw_only=True)
class Episode:
    """One alert while pending or firing: from its activeAt to when it was last seen."""

    labels: Mapping[str, str]  # the alert's, without __name__ and alertstate
    start_ms: int
    end_ms: int
    ongoing: bool = False

    @property
    def key(self) -> Key:
        return alert_key(self.labels)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "?")


@dataclass(frozen=True, kw_only=True)
class Incident:
    start_ms: int
    end_ms: int  # last seen; now while ongoing
    ongoing: bool
    episodes: tuple[Episode, ...]

    @property
    def id(self) -> str:
        return incident_id(self.start_ms)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def alerts(self) -> tuple[str, ...]:
        """Alert names, the first to start first."""
        return tuple(dict.fromkeys(e.name for e in sorted(self.episodes, key=lambda e: e.start_ms)))

    @property
    def severity(self) -> str:
        return min((e.labels.get("severity", "") for e in self.episodes), key=severity_rank)

    def holds(self, t_ms: float) -> bool:
        return self.start_ms <= t_ms <= self.end_ms


def incident_id(start_ms: int) -> str:
    return datetime.fromtimestamp(start_ms / 1000, UTC).strftime(ID_FORMAT)


def parse_id(text: str) -> int | None:
    """The first millisecond of the id's minute; None for anything else."""
    try:
        moment = datetime.strptime(text, ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return round(moment.timestamp() * 1000)


def episodes_of(series: Sequence[Series], step: int, live_from: int | None) -> list[Episode]:
    """Episodes from ALERTS_FOR_STATE series (valued at activeAt, in seconds); those seen at
    or after `live_from` (None: the query ended in the past) are ongoing."""
    found = []
    for one in series:
        labels = {k: v for k, v in one.labels if k != METRIC_NAME}
        t, values = one.timestamps.tolist(), one.values.tolist()
        for first, last in incident_lanes.runs(t, step):
            active_s = min(v for tv, v in zip(t, values, strict=True) if first <= tv <= last)
            found.append(
                Episode(
                    labels=labels,
                    start_ms=min(first, round(active_s * 1000)),
                    end_ms=last,
                    ongoing=live_from is not None and last >= live_from,
                )
            )
    return found


def with_current(
    recorded: list[Episode], alerts: Sequence[Alert], until_ms: int, now_ms: int
) -> list[Episode]:
    """`recorded` with the alerts pending or firing now that started by `until_ms`: the same
    alert (same labels and activeAt) goes on until now; one without series is added."""
    out = list(recorded)
    for alert in alerts:
        labels = dict(alert.labels)
        if labels.get("severity") not in SEVERITIES or alert.resolved_at_ms is not None:
            continue
        now = Episode(labels=labels, start_ms=alert.active_at_ms, end_ms=now_ms, ongoing=True)
        # ALERTS_FOR_STATE holds activeAt in whole seconds
        same = [
            i
            for i, e in enumerate(out)
            if e.key == now.key and 0 <= now.start_ms - e.start_ms < 1000
        ]
        for i in same:
            out[i] = dataclasses.replace(out[i], end_ms=now_ms, ongoing=True)
        if not same and alert.active_at_ms <= until_ms:
            out.append(now)
    return out


def _same_second(recorded: Episode, now: Episode) -> bool:
    return 0 <= now.start_ms - recorded.start_ms < 1000


def incidents_of(episodes: Sequence[Episode], gap_ms: int = GAP_MS) -> list[Incident]:
    """Episodes that overlap or are less than `gap_ms` apart, merged; the oldest first."""
    groups: list[list[Episode]] = []
    end = 0
    for ep in sorted(episodes, key=lambda e: (e.start_ms, e.end_ms)):
        if groups and ep.start_ms <= end + gap_ms:
            groups[-1].append(ep)
            end = max(end, ep.end_ms)
        else:
            groups.append([ep])
            end = ep.end_ms
    return [
        Incident(
            start_ms=min(e.start_ms for e in group),
            end_ms=max(e.end_ms for e in group),
            ongoing=any(e.ongoing for e in group),
            episodes=tuple(group),
        )
        for group in groups
    ]


def incidents_in(reads: ReadModels, window: Window) -> list[Incident]:
    """Every incident that overlaps the window, the newest first (raises what reads raise)."""
    step = min(window.step_ms, GAP_MS)  # so that no gap the definition counts hides in a step
    expr = queries.alert_active_at(SEVERITIES, step)
    result = reads.querier.range(expr, window.start_ms, window.end_ms, step)
    now = reads.now_ms()
    live_from = window.end_ms - step if window.end_ms >= now - step else None
    episodes = episodes_of(matrix(result), step, live_from)
    episodes = with_current(episodes, reads.alerts(), window.end_ms, now)
    return sorted(incidents_of(episodes), key=lambda i: i.start_ms, reverse=True)


def find_incidents(reads: ReadModels, window: Window) -> tuple[list[Incident], str | None]:
    return attempt(lambda: incidents_in(reads, window), [], "the alerts")


def locate(reads: ReadModels, wanted: str) -> Incident | None:
    """The incident with this id, or the one that holds its minute; None when none does."""
    minute = parse_id(wanted)
    now = reads.now_ms()
    if minute is None or minute > now:
        return None
    lo, hi = minute - LOOKUP_LEAD_MS, min(now, minute + LOOKUP_SPAN_MS)
    window = Window(start_ms=lo, end_ms=hi, step_ms=step_ms(hi - lo))
    found = incidents_in(reads, window)
    exact = [i for i in found if i.id == wanted]
    holding = [i for i in found if i.start_ms < minute + 60_000 and minute <= i.end_ms]
    return next(iter(exact or holding), None)


# -- the list ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IncidentRow:
    incident: Incident
    executions: int  # created while it lasted
    worst: BudgetUse | None  # the SLO instance that lost the most budget (None: none lost any)


def incident_rows(reads: ReadModels, window: Window) -> tuple[list[IncidentRow], tuple[str, ...]]:
    found, problem = find_incidents(reads, window)
    if not found:
        return [], tuple(p for p in (problem,) if p)
    since = min(i.start_ms for i in found)
    wide = Window(start_ms=since, end_ms=window.end_ms, step_ms=min(window.step_ms, GAP_MS))
    none: tuple[list[Execution], list[Budget]] = ([], [])
    runs, run_problem = attempt(
        lambda: reads.executions.find(since=since / 1000, limit=1000), none[0], "executions"
    )
    spent, budget_problem = attempt(lambda: budgets(reads, wide), none[1], "the error budgets")
    rows = []
    for incident in found:
        uses = budget_uses(spent, incident.start_ms, incident.end_ms)
        rows.append(
            IncidentRow(
                incident=incident,
                executions=len([e for e in runs if incident.holds(e.created_at * 1000)]),
                worst=uses[0] if uses and (uses[0].consumed or 0) > SPENT else None,
            )
        )
    problems = (problem, run_problem, budget_problem)
    return rows, tuple(p for p in problems if p)


# -- one incident ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IncidentDetail:
    incident: Incident
    window: Window  # what the timeline shows: the incident and a margin either side
    lanes: Lanes
    executions: tuple[Execution, ...]  # created while it lasted
    budgets: tuple[Budget, ...]
    uses: tuple[BudgetUse, ...]
    problems: tuple[str, ...] = ()


def shown_window(incident: Incident, now_ms: int) -> Window:
    margin = max(5 * 60_000, incident.duration_ms // 10)
    end = now_ms if incident.ongoing else min(now_ms, incident.end_ms + margin)
    start = incident.start_ms - margin
    return Window(start_ms=start, end_ms=end, step_ms=step_ms(end - start))


def incident_detail(reads: ReadModels, wanted: str) -> tuple[IncidentDetail | None, str | None]:
    """The incident with this id (or holding its minute) and everything on its time axis."""
    found, problem = attempt(lambda: locate(reads, wanted), None, "the alerts")
    if found is None:
        return None, problem
    window = shown_window(found, reads.now_ms())
    lanes, runs, problems = _lanes(reads, found, window)
    none: list[Budget] = []
    spent, budget_problem = attempt(lambda: budgets(reads, window), none, "the error budgets")
    return IncidentDetail(
        incident=found,
        window=window,
        lanes=lanes,
        executions=tuple(e for e in runs if found.holds(e.created_at * 1000)),
        budgets=tuple(spent),
        uses=tuple(budget_uses(spent, found.start_ms, found.end_ms)),
        problems=tuple(p for p in (*problems, budget_problem) if p),
    ), None


def _lanes(
    reads: ReadModels, incident: Incident, window: Window
) -> tuple[Lanes, list[Execution], list[str | None]]:
    """Every lane of the timeline, each read on its own: one that fails leaves the others."""
    live_from = window.end_ms - window.step_ms if incident.ongoing else None
    none: list[incident_lanes.Span] = []
    alerts, alert_problem = attempt(
        lambda: _alert_spans(reads, incident, window, live_from), none, "the alert states"
    )
    faults, fault_problem = attempt(
        lambda: _fault_spans(reads, window, live_from), none, "the fault gauges"
    )
    no_runs: tuple[list[Execution], dict[str, list[StepRecord]]] = ([], {})
    (runs, steps), run_problem = attempt(lambda: _executions(reads, window), no_runs, "executions")
    events, event_problem = audit_events(reads, AuditFilter(), window, limit=2000)
    spans, marks = incident_lanes.execution_lane(runs, steps, reads.now_ms())
    by_id = {e.id: e for e in runs}
    lanes = Lanes(
        spans=tuple(faults + alerts + spans),
        marks=tuple(marks + incident_lanes.audit_marks(events.events, by_id)),
    )
    return lanes, runs, [alert_problem, fault_problem, run_problem, event_problem]


def _alert_spans(
    reads: ReadModels, incident: Incident, window: Window, live_from: int | None
) -> list[incident_lanes.Span]:
    """Pending and firing as ALERTS recorded them; an alert with no series (one from outside,
    through the Alertmanager webhook) as one span, from what is known of it now."""
    expr = queries.alert_states(SEVERITIES, window.step_ms)
    found = matrix(reads.querier.range(expr, window.start_ms, window.end_ms, window.step_ms))
    keys = {e.key for e in incident.episodes}
    spans = incident_lanes.alert_spans(found, keys, window.step_ms, live_from)
    drawn = {alert_key(dict(s.labels)) for s in found}
    return spans + [
        incident_lanes.episode_span(e.labels, e.start_ms, e.end_ms, e.ongoing)
        for e in incident.episodes
        if e.key not in drawn
    ]


def _fault_spans(
    reads: ReadModels, window: Window, live_from: int | None
) -> list[incident_lanes.Span]:
    region, wallet = (
        matrix(reads.querier.range(expr, window.start_ms, window.end_ms, window.step_ms))
        for expr in queries.faults_active(window.step_ms)
    )
    return incident_lanes.fault_spans(region, wallet, window.step_ms, live_from)


def _executions(
    reads: ReadModels, window: Window
) -> tuple[list[Execution], dict[str, list[StepRecord]]]:
    found = reads.executions.find(since=window.start_ms / 1000, limit=MAX_EXECUTIONS)
    runs = sorted(
        (e for e in found if e.created_at * 1000 <= window.end_ms), key=lambda e: e.created_at
    )
    return runs, {e.id: reads.executions.steps_of(e.id) for e in runs}
