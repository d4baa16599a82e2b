"""promtool's rule unit tests (`promtool test rules`), run on the control plane's own engine.

The file format is promtool's (rule_files, evaluation_interval, group_eval_order, tests with
interval, input_series, alert_rule_test, promql_expr_test, external_labels, external_url,
name), refused on unknown fields as promtool refuses them. Semantics are promtool's: input
series are loaded into an in-memory store, every rule group is evaluated at every
evaluation_interval from 0 to the largest eval_time (recording output and ALERTS written back,
so later rules and expression tests see them); an alert test compares the *firing* alerts of
the evaluation at or just before its eval_time; an expression test runs an instant query at
its eval_time once all evaluations are done. Failures print as promtool prints them
(unittest_format.py) and the exit code is promtool's: 0 all passed, 1 any failure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from controlplane.errors import ConfigError, ControlPlaneError
from controlplane.gotemplate.fmt import go_quote
from controlplane.model.series import Labels, SeriesSource
from controlplane.promql.engine import Engine
from controlplane.promql.results import Querier
from controlplane.rules.alerting import AlertState
from controlplane.rules.group import GroupEvaluator, query_vector
from controlplane.rules.growsource import GrowingSource
from controlplane.rules.load import RuleFileError, load_files
from controlplane.rules.model import RuleGroup
from controlplane.rules.notation import parse_metric, series_from
from controlplane.rules.unittest_file import UnitTestFile, UnitTestGroup, parse_unit_test_file
from controlplane.rules.unittest_format import (
    AlertDiff,
    LabelsAndAnnotations,
    alert_failure,
    expr_error,
    expr_failure,
    go_duration,
    model_duration,
    rule_error,
)

EngineFactory = Callable[[SeriesSource, int], Querier]


def default_engine(source: SeriesSource, evaluation_interval_ms: int) -> Querier:
    # promtool sets the subquery step to the evaluation interval
    return Engine(source, subquery_step_ms=evaluation_interval_ms)


def run_files(
    paths: Iterable[str | Path],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    engine: EngineFactory = default_engine,
) -> int:
    """Run unit-test files and print as `promtool test rules` does; 0 if all pass, else 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    failed = False
    for path in paths:
        print("Unit Testing: ", path, file=out)
        errors = run_file(path, err=err, engine=engine)
        if errors:
            print("  FAILED:", file=err)
            for message in errors:
                print(message, file=err)
                print(file=out)
            failed = True
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0


def run_file(
    path: str | Path, *, err: TextIO | None = None, engine: EngineFactory = default_engine
) -> list[str]:
    """The failure messages of one unit-test file (empty: it passed)."""
    try:
        spec = parse_unit_test_file(path, warn=err or sys.stderr)
    except ControlPlaneError as exc:
        return [str(exc)]
    order: dict[str, int] = {}
    for i, name in enumerate(spec.group_eval_order):
        if name in order:
            return [f"group name repeated in evaluation order: {name}"]
        order[name] = i
    errors: list[str] = []
    for group in spec.tests:
        errors.extend(run_group(spec, group, order, engine))
    return errors


def run_group(
    spec: UnitTestFile, test: UnitTestGroup, order: dict[str, int], engine: EngineFactory
) -> list[str]:
    try:
        store = GrowingSource(
            series_from(s.series, s.values, test.interval_ms) for s in test.input_series
        )
        groups = load_files(spec.rule_files)
    except RuleFileError as exc:
        return list(exc.problems)
    except ControlPlaneError as exc:
        return [str(exc)]
    querier = engine(store, spec.evaluation_interval_ms)
    evaluators = [
        GroupEvaluator(
            g,
            querier=querier,
            sink=store,
            default_interval_ms=test.interval_ms,
            external_labels=test.external_labels,
            external_url=test.external_url,
            log_failures=False,
        )
        for g in _ordered(groups, order)
    ]
    errors, stopped = _evaluate(test, evaluators, spec.evaluation_interval_ms)
    if stopped:  # a rule failed: promtool reports it and skips the expression tests
        return errors
    return errors + _expr_tests(test, querier)


def _ordered(groups: Sequence[RuleGroup], order: dict[str, int]) -> list[RuleGroup]:
    return sorted(groups, key=lambda g: order.get(g.name, 0))


def _evaluate(
    test: UnitTestGroup, evaluators: Sequence[GroupEvaluator], interval_ms: int
) -> tuple[list[str], bool]:
    """Alert test failures, and whether a rule failed (which ends the group's run)."""
    alert_times = sorted({t.eval_time_ms for t in test.alert_tests})
    errors: list[str] = []
    current = 0
    t_ms = 0
    while t_ms <= test.max_eval_time_ms():
        rule_errors: list[str] = []
        for ev in evaluators:
            ev.evaluate(t_ms)
            rule_errors.extend(
                rule_error(status.rule.name, go_duration(t_ms), status.last_error)
                for status in ev.status().rules
                if status.last_error
            )
        if rule_errors:
            return errors + rule_errors, True
        while current < len(alert_times) and t_ms <= alert_times[current] < t_ms + interval_ms:
            errors.extend(_alert_tests(test, evaluators, alert_times[current]))
            current += 1
        t_ms += interval_ms
    return errors, False


def _alert_tests(
    test: UnitTestGroup, evaluators: Sequence[GroupEvaluator], at_ms: int
) -> list[str]:
    cases = [c for c in test.alert_tests if c.eval_time_ms == at_ms]
    names = {c.alertname for c in cases}
    got: dict[str, list[LabelsAndAnnotations]] = {}
    for ev in evaluators:
        for tracker in ev.trackers.values():
            if tracker.rule.name not in names:
                continue
            got.setdefault(tracker.rule.name, []).extend(
                LabelsAndAnnotations(labels=a.labels, annotations=a.annotations)
                for a in tracker.active_alerts()
                if a.state is AlertState.FIRING
            )
    errors = []
    for case in cases:
        exp = [
            LabelsAndAnnotations(
                labels=tuple(sorted({**a.labels, "alertname": case.alertname}.items())),
                annotations=tuple(sorted(a.annotations.items())),
            )
            for a in case.exp_alerts
        ]
        diff = AlertDiff(expected=sorted(exp), got=sorted(got.get(case.alertname, [])))
        if diff.expected != diff.got:
            errors.append(alert_failure(test.name, case.alertname, model_duration(at_ms), diff))
    return errors


def _expr_tests(test: UnitTestGroup, querier: Querier) -> list[str]:
    errors = []
    for case in test.expr_tests:
        when = model_duration(case.eval_time_ms)
        try:
            vector = query_vector(querier, case.expr, case.eval_time_ms)
        except ControlPlaneError as exc:
            errors.append(expr_error(case.expr, when, str(exc)))
            continue
        got = sorted((s.labels, s.value) for s in vector)
        expected: list[tuple[Labels, float]] = []
        try:
            for s in case.exp_samples:
                expected.append((_exp_labels(s.labels), s.value))
        except ControlPlaneError as exc:
            errors.append(expr_error(case.expr, when, str(exc)))
            continue
        expected.sort()
        # exact comparison, NaN never equal: as promtool's reflect.DeepEqual
        if len(expected) != len(got) or any(
            e[0] != g[0] or e[1] != g[1] for e, g in zip(expected, got, strict=True)
        ):
            errors.append(expr_failure(case.expr, when, expected, got))
    return errors


def _exp_labels(text: str) -> Labels:
    try:
        return parse_metric(text)
    except ControlPlaneError as exc:
        raise ConfigError(f"labels {go_quote(text)}: {exc}") from None
