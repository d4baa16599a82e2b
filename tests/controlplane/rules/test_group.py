"""Evaluating a group at a time t: order, health, staleness, metrics."""

from __future__ import annotations

import itertools
import math

from prometheus_client import CollectorRegistry

from controlplane.model.series import is_stale_marker
from controlplane.promql.engine import Engine
from controlplane.rules.group import GroupEvaluator, RuleHealth, RuleMetrics
from controlplane.rules.growsource import GrowingSource
from controlplane.rules.load import parse_text
from controlplane.rules.model import AlertingRule, RecordingRule, RuleGroup
from controlplane.rules.notation import series_from
from tests.controlplane.rules.fakes import ListSink, ScriptedQuerier

S = 1000


def group(*rules: RecordingRule | AlertingRule, limit: int = 0) -> RuleGroup:
    return RuleGroup(name="g", file="f.yml", rules=rules, interval_ms=10 * S, limit=limit)


def test_recording_output_is_visible_to_later_rules_of_the_same_evaluation() -> None:
    source = GrowingSource([series_from('requests_total{job="api"}', "0+10x10", 10 * S)])
    rules = parse_text(
        """
groups:
  - name: g
    rules:
      - record: job:requests:rate1m
        expr: sum by (job) (rate(requests_total[1m]))
      - alert: Busy
        expr: job:requests:rate1m > 0.5
        labels: {severity: ticket}
""",
        "f.yml",
    )[0]
    evaluator = GroupEvaluator(rules, querier=Engine(source), sink=source)
    sent = evaluator.evaluate(60 * S)
    assert [a.labels for a in sent] == [
        (("alertname", "Busy"), ("job", "api"), ("severity", "ticket"))
    ]
    assert sent[0].value == 1.0


def test_a_failing_rule_is_marked_err_and_the_others_still_run() -> None:
    querier = ScriptedQuerier(
        {
            "first": lambda t: [({"a": "1"}, 1.0)],
            "third": lambda t: [({"a": "3"}, 3.0)],
        }
    )
    sink = ListSink()
    registry = CollectorRegistry()
    # group start, then (start, end) per rule, then group end
    ticks = itertools.chain([0.0, 0.1, 0.2, 0.5, 0.6, 0.7, 0.9, 1.5], itertools.count(2.0))
    evaluator = GroupEvaluator(
        group(
            RecordingRule(name="r1", expr="first"),
            RecordingRule(name="r2", expr="second"),  # unknown to the fake: times out
            RecordingRule(name="r3", expr="third"),
        ),
        querier=querier,
        sink=sink,
        metrics=RuleMetrics(registry),
        timer=lambda: next(ticks),
    )
    before = evaluator.status()
    assert [r.health for r in before.rules] == [RuleHealth.UNKNOWN] * 3
    evaluator.evaluate(5 * S)
    status = evaluator.status()
    assert [r.health for r in status.rules] == [RuleHealth.OK, RuleHealth.ERR, RuleHealth.OK]
    assert "query timed out" in status.rules[1].last_error
    assert status.rules[0].last_error == ""
    assert all(r.last_evaluation_ms == 5 * S for r in status.rules)
    assert status.last_evaluation_ms == 5 * S
    assert math.isclose(status.evaluation_s, 1.5)
    assert math.isclose(status.rules[0].evaluation_s, 0.1)
    assert [dict(lb)["__name__"] for lb, _, _ in sink.samples] == ["r1", "r3"]
    key = {"rule_group": "f.yml;g"}
    assert registry.get_sample_value("controlplane_rule_evaluation_failures_total", key) == 1
    assert registry.get_sample_value("controlplane_rule_evaluations_total", key) == 3
    assert registry.get_sample_value("controlplane_rule_group_last_evaluation_samples", key) == 2

    querier.answers["second"] = lambda t: [({"a": "2"}, 2.0)]
    evaluator.evaluate(15 * S)
    assert evaluator.status().rules[1].health is RuleHealth.OK
    assert evaluator.status().rules[1].last_error == ""


def test_recording_labels_duplicates_and_limits() -> None:
    querier = ScriptedQuerier(
        {
            "two": lambda t: [({"__name__": "x", "a": "1"}, 1.0), ({"__name__": "x", "a": "2"}, 2.0)],
            "clash": lambda t: [({"__name__": "x", "a": "1"}, 1.0), ({"__name__": "y", "a": "1"}, 2.0)],
        }
    )  # fmt: skip
    sink = ListSink()
    evaluator = GroupEvaluator(
        group(
            RecordingRule(name="r", expr="two", labels=(("team", "core"), ("a", ""))),
            RecordingRule(name="c", expr="clash"),
            RecordingRule(name="l", expr="two"),
            limit=1,
        ),
        querier=querier,
        sink=sink,
    )
    evaluator.evaluate(0)
    rules = evaluator.status().rules
    # `a` removed by its empty value: both samples become one series
    assert rules[0].health is RuleHealth.ERR
    assert "same labelset after applying rule labels" in rules[0].last_error
    assert "same labelset after applying rule labels" in rules[1].last_error
    assert rules[2].last_error == "exceeded limit of 1 with 2 series"
    assert sink.samples == []


def test_series_a_rule_stops_producing_get_staleness_markers() -> None:
    present = {"b": True}
    querier = ScriptedQuerier(
        {
            "x": lambda t: [({"a": "1"}, 1.0)] + ([({"a": "2"}, 2.0)] if present["b"] else []),
        }
    )
    sink = ListSink()
    evaluator = GroupEvaluator(group(RecordingRule(name="r", expr="x")), querier=querier, sink=sink)
    evaluator.evaluate(0)
    present["b"] = False
    evaluator.evaluate(10 * S)
    at_10 = [(dict(lb)["a"], v) for lb, t, v in sink.samples if t == 10 * S]
    assert at_10[0] == ("1", 1.0)
    assert at_10[1][0] == "2" and is_stale_marker(at_10[1][1])


def test_alerts_series_in_the_sink_across_a_lifecycle() -> None:
    firing = {"on": True}
    querier = ScriptedQuerier(
        {"up == 0": lambda t: [({"__name__": "up", "i": "a"}, 0.0)] if firing["on"] else []}
    )
    sink = ListSink()
    evaluator = GroupEvaluator(
        group(AlertingRule(name="Down", expr="up == 0", for_ms=10 * S)), querier=querier, sink=sink
    )
    evaluator.evaluate(0)
    evaluator.evaluate(10 * S)
    firing["on"] = False
    evaluator.evaluate(20 * S)
    alerts = [(lb["alertstate"], t, v) for lb, t, v in sink.named("ALERTS")]
    assert alerts[:3] == [
        ("pending", 0, 1.0),
        ("firing", 10 * S, 1.0),
        ("pending", 10 * S, alerts[2][2]),
    ]
    assert is_stale_marker(alerts[2][2])  # the pending series ends when the alert fires
    assert alerts[3][:2] == ("firing", 20 * S) and is_stale_marker(alerts[3][2])
    for_state = [(t, v) for _, t, v in sink.named("ALERTS_FOR_STATE")]
    assert for_state[:2] == [(0, 0.0), (10 * S, 0.0)] and is_stale_marker(for_state[2][1])
    status = evaluator.status().rules[0]
    assert status.alerts == () and status.state is not None and status.state.value == "inactive"


def test_reload_keeps_alert_state_of_surviving_rules() -> None:
    querier = ScriptedQuerier({"up == 0": lambda t: [({"i": "a"}, 0.0)]})
    rule = AlertingRule(name="Down", expr="up == 0", for_ms=60 * S)
    old = GroupEvaluator(group(rule), querier=querier, sink=ListSink())
    old.evaluate(0)
    new = GroupEvaluator(
        group(rule, RecordingRule(name="r", expr="up == 0")), querier=querier, sink=ListSink()
    )
    new.copy_state(old)
    new.evaluate(60 * S)
    (alert,) = new.alerts()
    assert alert.active_at_ms == 0 and alert.state.value == "firing"
