"""Backtests: replay recorded samples through rule files and tell, per alerting rule and per
alert, when it would have gone pending, fired and resolved.

    groups = load_files(rule_files(["rules"])[0])
    batch = checkpoint.read_export(path)            # or backtestcli.fetch_prometheus(...)
    report = replay(groups, batch, start_ms=start, end_ms=end, progress=bar)

The samples go into a fresh in-memory Store, without the series the rules write themselves
(`record` names, ALERTS, ALERTS_FOR_STATE): a recording made by the live rules must not stand
in for the one under test. Each group is evaluated on the multiples of its interval (or of
`interval_ms`) inside [start, end]; groups due at the same instant run in file order.

Two ways to get there, with the same result:

- stepwise: the live GroupEvaluator at every grid time, writing recordings and ALERTS into the
  store as it goes; exact for any rules, one instant query per rule and step;
- vectorised, used when equivalent: window by window, one range query per rule in file order;
  recordings written with staleness markers as the group writes them, and each step's result
  fed to the rule's AlertTracker (the same alert state machine). Equivalent when each
  recording a rule reads is recorded earlier in file order, nothing reads ALERTS, no group
  has a limit and no selector an @ or a negative offset; otherwise, or when a range query
  fails, the stepwise replay runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from controlplane.backtest.progress import Progress
from controlplane.backtest.reads import (
    DEFAULT_LOOKBACK_MS,
    produced_names,
    stepwise_reason,
    without_produced,
)
from controlplane.errors import ControlPlaneError, StoreError
from controlplane.model.series import (
    STALE_NAN,
    Labels,
    Series,
    SeriesBatch,
)
from controlplane.promql.engine import Engine
from controlplane.promql.results import InstantSample
from controlplane.rules.alerting import Alert, AlertTracker
from controlplane.rules.group import GroupEvaluator, RuleHealth, query_vector, recorded
from controlplane.rules.model import DEFAULT_INTERVAL_MS, AlertingRule, RecordingRule, RuleGroup
from controlplane.tsdb.store import Store

# steps a range query covers at once in the vectorised replay (at most 11,000 by the API)
WINDOW_STEPS = 3600

# -- what happened --------------------------------------------------------------------------------


class EpisodeStatus(StrEnum):
    PENDING = "pending"  # still pending at the end of the range
    FIRING = "firing"  # still firing at the end of the range
    RESOLVED = "resolved"  # fired, then resolved
    CANCELLED = "cancelled"  # pending, went away before `for` elapsed


@dataclass(frozen=True, kw_only=True)
class Episode:
    """One life of one alert, from pending (its activeAt) to resolved or cancelled."""

    pending_at_ms: int
    firing_at_ms: int | None = None
    resolved_at_ms: int | None = None
    cancelled_at_ms: int | None = None
    value: float | None = None  # the alert's value when it fired (what `$value` renders)

    @property
    def status(self) -> EpisodeStatus:
        if self.resolved_at_ms is not None:
            return EpisodeStatus.RESOLVED
        if self.cancelled_at_ms is not None:
            return EpisodeStatus.CANCELLED
        return EpisodeStatus.PENDING if self.firing_at_ms is None else EpisodeStatus.FIRING


@dataclass(frozen=True, kw_only=True)
class AlertHistory:
    labels: Labels  # the alert's labels, alertname included
    episodes: tuple[Episode, ...]


@dataclass(frozen=True, kw_only=True)
class RuleHistory:
    group: RuleGroup
    rule: AlertingRule
    alerts: tuple[AlertHistory, ...]


@dataclass(frozen=True, kw_only=True)
class RuleErrors:
    group: str
    rule: str
    failures: int  # evaluations that failed
    last_error: str


@dataclass(frozen=True, kw_only=True)
class BacktestReport:
    start_ms: int
    end_ms: int
    interval_ms: int | None  # None: each group at its own interval
    evaluations: int  # rule evaluations (rules x grid steps)
    series: int  # input series replayed
    samples: int
    dropped_series: int  # input series the rules produce themselves
    rules: tuple[RuleHistory, ...]  # alerting rules, in file order
    errors: tuple[RuleErrors, ...] = ()
    vectorised: bool = False
    stepwise_reason: str = ""  # why the vectorised replay was not used


class _Episodes:
    """Episodes of one alerting rule, from its tracker's alerts after each evaluation."""

    def __init__(self) -> None:
        self.open: dict[Labels, Episode] = {}
        self.done: dict[Labels, list[Episode]] = {}

    def observe(self, alerts: Sequence[Alert], t_ms: int) -> None:
        seen: set[Labels] = set()
        for alert in alerts:
            seen.add(alert.labels)
            current = self.open.get(alert.labels)
            if current is not None and current.pending_at_ms != alert.active_at_ms:
                self._close(alert.labels, current, t_ms)  # ended and restarted unseen
                current = None
            if alert.resolved_at_ms is not None:
                if current is not None:
                    self._finish(
                        alert.labels, replace(current, resolved_at_ms=alert.resolved_at_ms)
                    )
                continue
            if current is None:
                current = Episode(pending_at_ms=alert.active_at_ms)
            if current.firing_at_ms is None and alert.fired_at_ms is not None:
                current = replace(current, firing_at_ms=alert.fired_at_ms, value=alert.value)
            self.open[alert.labels] = current
        for labels in [lb for lb in self.open if lb not in seen]:
            self._close(labels, self.open[labels], t_ms)

    def _close(self, labels: Labels, episode: Episode, t_ms: int) -> None:
        """The tracker dropped the alert: a pending one went away (or a limit cleared it)."""
        if episode.firing_at_ms is None:
            self._finish(labels, replace(episode, cancelled_at_ms=t_ms))
        else:
            self._finish(labels, replace(episode, resolved_at_ms=t_ms))

    def _finish(self, labels: Labels, episode: Episode) -> None:
        self.open.pop(labels, None)
        self.done.setdefault(labels, []).append(episode)

    def histories(self) -> tuple[AlertHistory, ...]:
        return tuple(
            AlertHistory(
                labels=k,
                episodes=(*self.done.get(k, ()), *((self.open[k],) if k in self.open else ())),
            )
            for k in sorted(set(self.done) | set(self.open))
        )


# -- the replay ---------------------------------------------------------------------------------


def evaluation_times(start_ms: int, end_ms: int, interval_ms: int) -> range:
    """A group's grid inside [start, end]: multiples of its interval, so that the times do not
    depend on where the range happens to start."""
    return range(-(-start_ms // interval_ms) * interval_ms, end_ms + 1, interval_ms)


@dataclass(kw_only=True)
class _Run:
    groups: Sequence[RuleGroup]
    engine: Engine
    store: Store
    grids: list[range]
    progress: Progress | None
    total: int
    done: int = 0
    episodes: dict[tuple[int, int], _Episodes] = field(default_factory=dict)
    failures: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)

    def advance(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def failed(self, key: tuple[int, int], error: str) -> None:
        self.failures[key] = (self.failures.get(key, (0, ""))[0] + 1, error)


def replay(
    groups: Sequence[RuleGroup],
    batch: SeriesBatch,
    *,
    start_ms: int,
    end_ms: int,
    interval_ms: int | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    stepwise: bool = False,
    progress: Progress | None = None,
) -> BacktestReport:
    if end_ms < start_ms:
        raise StoreError(f"the backtest range ends before it starts: {start_ms!r} > {end_ms!r}")
    batch, dropped = without_produced(batch, produced_names(groups))
    reason = "asked for" if stepwise else stepwise_reason(groups, lookback_ms)
    grids = [
        evaluation_times(start_ms, end_ms, interval_ms or g.interval_or(default_interval_ms))
        for g in groups
    ]
    total = sum(len(grid) * len(g.rules) for grid, g in zip(grids, groups, strict=True))

    def fresh() -> _Run:
        first_ms = int(batch.timestamps.min()) if len(batch.timestamps) else start_ms
        store = Store(retention_ms=max(end_ms, start_ms + 1) - min(first_ms, start_ms) + 1)
        store.append_batch(batch)
        engine = Engine(store, lookback_ms=lookback_ms)
        return _Run(
            groups=groups, engine=engine, store=store, grids=grids, progress=progress, total=total
        )

    run = fresh()
    if reason is None:
        try:
            _vectorised(run)
        except ControlPlaneError as exc:
            reason = f"a range query failed: {exc}"
            run = fresh()
    if reason is not None:
        _stepwise(run, default_interval_ms)
    return BacktestReport(
        start_ms=start_ms,
        end_ms=end_ms,
        interval_ms=interval_ms,
        evaluations=total,
        series=len(batch),
        samples=len(batch.timestamps),
        dropped_series=dropped,
        rules=tuple(
            RuleHistory(group=groups[gi], rule=rule, alerts=run.episodes[(gi, ri)].histories())
            for gi, group in enumerate(groups)
            for ri, rule in enumerate(group.rules)
            if isinstance(rule, AlertingRule)
        ),
        errors=tuple(
            RuleErrors(group=groups[g].name, rule=groups[g].rules[r].name, failures=n, last_error=e)
            for (g, r), (n, e) in sorted(run.failures.items())
        ),
        vectorised=reason is None,
        stepwise_reason=reason or "",
    )


def _stepwise(run: _Run, default_interval_ms: int) -> None:
    """Every group at every grid time with the live GroupEvaluator."""
    evaluators = [
        GroupEvaluator(
            g, querier=run.engine, sink=run.store, default_interval_ms=default_interval_ms
        )
        for g in run.groups
    ]
    for gi, evaluator in enumerate(evaluators):
        run.episodes.update({(gi, ri): _Episodes() for ri in evaluator.trackers})
    # (time, group index, position in its grid): groups due at one instant run in file order
    due = [(grid[0], gi, 0) for gi, grid in enumerate(run.grids) if len(grid)]
    heapq.heapify(due)
    while due:
        t_ms, gi, pos = heapq.heappop(due)
        evaluator = evaluators[gi]
        evaluator.evaluate(t_ms)
        for ri, tracker in evaluator.trackers.items():
            run.episodes[(gi, ri)].observe(tracker.alerts(), t_ms)
        for ri, status in enumerate(evaluator.status().rules):
            if status.health is RuleHealth.ERR:
                run.failed((gi, ri), status.last_error)
        if pos + 1 < len(run.grids[gi]):
            heapq.heappush(due, (run.grids[gi][pos + 1], gi, pos + 1))
        run.advance(len(evaluator.group.rules))


def _vectorised(run: _Run) -> None:
    """Window by window (WINDOW_STEPS steps of the shortest interval, which bounds memory),
    rule by rule in file order: one range query over the window's part of the group's grid,
    then the output recorded or the rule's alert tracker stepped."""
    trackers = {
        (gi, ri): AlertTracker(rule)
        for gi, group in enumerate(run.groups)
        for ri, rule in enumerate(group.rules)
        if isinstance(rule, AlertingRule)
    }
    run.episodes.update({key: _Episodes() for key in trackers})
    written: dict[tuple[int, int], set[Labels]] = {}  # recorded at the rule's previous step
    grids = [g for g in run.grids if len(g)]
    if not grids:
        return
    first, last = min(g[0] for g in grids), max(g[-1] for g in grids)
    width = WINDOW_STEPS * min(g.step for g in grids)
    for lo in range(first, last + 1, width):
        for gi, group in enumerate(run.groups):
            grid = run.grids[gi]
            piece = grid[_index(grid, lo) : _index(grid, lo + width)]
            for ri, rule in enumerate(group.rules):
                if not len(piece):
                    continue
                present, values = _range(run, rule.expr, piece)
                key = (gi, ri)
                if isinstance(rule, RecordingRule):
                    written[key] = _record(run, rule, piece, present, values, written.get(key))
                else:
                    _alert(run, key, trackers[key], piece, present, values)


def _index(grid: range, t_ms: int) -> int:
    """Position of the first grid time at or after t."""
    return max(0, -(-(t_ms - grid.start) // grid.step))


def _range(
    run: _Run, expr: str, grid: range
) -> tuple[dict[Labels, np.ndarray], dict[Labels, np.ndarray]]:
    """Per output series: a presence mask and the values over the grid."""
    result = run.engine.range(expr, grid[0], grid[-1], grid.step)
    present: dict[Labels, np.ndarray] = {}
    values: dict[Labels, np.ndarray] = {}
    for s in result.matrix:
        idx = (s.timestamps - grid[0]) // grid.step
        present[s.labels] = np.zeros(len(grid), dtype=bool)
        present[s.labels][idx] = True
        values[s.labels] = np.zeros(len(grid))
        values[s.labels][idx] = s.values
    run.advance(len(grid))
    return present, values


def _record(
    run: _Run,
    rule: RecordingRule,
    grid: range,
    present: dict[Labels, np.ndarray],
    values: dict[Labels, np.ndarray],
    before: set[Labels] | None,
) -> set[Labels]:
    """Write the output as the group would: a sample per step, and a staleness marker at the
    first step a series is missing after it was written (`before`: written at the step before
    the grid). Returns the series written at the grid's last step."""
    before = before or set()
    times = np.asarray(grid, dtype=np.int64)
    out: dict[Labels, Series] = {}
    at_end: set[Labels] = set()
    for labels, mask in present.items():
        ((name, _),) = recorded(rule, [InstantSample(labels=labels, t_ms=0, value=0.0)], 0)
        if name in out:
            raise StoreError(f"rule {rule.name!r}: output series {name!r} from two results")
        stale = np.zeros_like(mask)
        stale[1:] = mask[:-1] & ~mask[1:]  # written, then missing at the next step
        stale[0] = name in before and not mask[0]
        keep = mask | stale
        v = np.where(mask, values[labels], STALE_NAN)[keep]
        out[name] = Series(labels=name, timestamps=times[keep], values=v)
        if mask[-1]:
            at_end.add(name)
    for name in before - set(out):
        out[name] = Series(labels=name, timestamps=times[:1], values=np.array([STALE_NAN]))
    run.store.append_batch(SeriesBatch.from_series(list(out.values())))
    return at_end


def _alert(
    run: _Run,
    key: tuple[int, int],
    tracker: AlertTracker,
    grid: range,
    present: dict[Labels, np.ndarray],
    values: dict[Labels, np.ndarray],
) -> None:
    """Feed each step's result to the rule's AlertTracker, at the steps where it has
    something to do (a result, or alerts it holds)."""
    episodes = run.episodes[key]
    any_present = np.zeros(len(grid), dtype=bool)
    for mask in present.values():
        any_present |= mask

    def query(expr: str, t_ms: int) -> list[InstantSample]:
        return query_vector(run.engine, expr, t_ms)

    for i, t_ms in enumerate(grid):
        if not any_present[i] and not episodes.open and not tracker.alerts():
            continue
        vector = [
            InstantSample(labels=labels, t_ms=t_ms, value=float(values[labels][i]))
            for labels, mask in present.items()
            if mask[i]
        ]
        try:
            tracker.evaluate(vector, t_ms, query=query)
        except ControlPlaneError as exc:
            run.failed(key, str(exc))
        episodes.observe(tracker.alerts(), t_ms)
