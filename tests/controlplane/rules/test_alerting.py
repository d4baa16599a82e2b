"""The alert state machine with Prometheus's semantics, driven by explicit evaluation times."""

from __future__ import annotations

import pytest

from controlplane.errors import EvalError
from controlplane.model.series import STALE_NAN, Labels, Matcher, MatchOp, is_stale_marker
from controlplane.promql.results import InstantSample
from controlplane.rules.alerting import (
    RESOLVED_RETENTION_MS,
    Alert,
    AlertState,
    AlertTracker,
)
from controlplane.rules.growsource import GrowingSource
from controlplane.rules.model import AlertingRule

S = 1000
M = 60 * S


def sample(value: float = 1.0, **labels: str) -> InstantSample:
    pairs = {"__name__": "up", "instance": "a", **labels}
    return InstantSample(labels=tuple(sorted(pairs.items())), t_ms=0, value=value)


def rule(**kw: object) -> AlertingRule:
    base: dict[str, object] = {
        "name": "InstanceDown",
        "expr": "up == 0",
        "for_ms": 2 * M,
        "labels": (("severity", "page"),),
        "annotations": (("summary", "{{ $labels.instance }} down, value {{ $value }}"),),
    }
    base.update(kw)
    return AlertingRule(**base)  # type: ignore[arg-type]


def one(tracker: AlertTracker) -> Alert:
    (alert,) = tracker.alerts()
    return alert


def series(samples: list[tuple[Labels, float]]) -> dict[str, float]:
    """{"ALERTS:<state>": value, "ALERTS_FOR_STATE:": value}"""
    out = {}
    for labels, value in samples:
        named = dict(labels)
        out[named["__name__"] + ":" + named.get("alertstate", "")] = value
    return out


def test_pending_then_firing_after_for_with_alerts_series() -> None:
    tracker = AlertTracker(rule())
    written = tracker.evaluate([sample(0)], 10 * S)
    alert = one(tracker)
    assert alert.state is AlertState.PENDING and alert.active_at_ms == 10 * S
    assert alert.labels == (("alertname", "InstanceDown"), ("instance", "a"), ("severity", "page"))
    assert alert.annotations == (("summary", "a down, value 0"),)
    assert series(written) == {"ALERTS:pending": 1.0, "ALERTS_FOR_STATE:": 10.0}

    tracker.evaluate([sample(0)], 10 * S + 2 * M - 1)
    assert one(tracker).state is AlertState.PENDING
    written = tracker.evaluate([sample(0)], 10 * S + 2 * M)
    alert = one(tracker)
    assert alert.state is AlertState.FIRING and alert.fired_at_ms == 10 * S + 2 * M
    assert alert.active_at_ms == 10 * S
    assert series(written) == {"ALERTS:firing": 1.0, "ALERTS_FOR_STATE:": 10.0}
    assert tracker.state() is AlertState.FIRING


def test_zero_for_fires_at_once() -> None:
    tracker = AlertTracker(rule(for_ms=0))
    tracker.evaluate([sample(0)], 0)
    assert one(tracker).state is AlertState.FIRING


def test_a_pending_alert_that_clears_is_forgotten() -> None:
    tracker = AlertTracker(rule())
    tracker.evaluate([sample(0)], 0)
    assert tracker.evaluate([], M) == []
    assert tracker.alerts() == [] and tracker.state() is AlertState.INACTIVE


def test_resolved_alerts_are_kept_15_minutes_then_dropped() -> None:
    tracker = AlertTracker(rule(for_ms=0))
    tracker.evaluate([sample(0)], 0)
    assert tracker.evaluate([], M) == []  # no ALERTS series for inactive alerts
    alert = one(tracker)
    assert alert.state is AlertState.INACTIVE and alert.resolved_at_ms == M
    assert tracker.active_alerts() == []
    tracker.evaluate([], M + RESOLVED_RETENTION_MS)
    assert one(tracker).state is AlertState.INACTIVE
    tracker.evaluate([], M + RESOLVED_RETENTION_MS + 1)
    assert tracker.alerts() == []


def test_a_returning_condition_is_a_new_alert() -> None:
    tracker = AlertTracker(rule())
    tracker.evaluate([sample(0)], 0)
    tracker.evaluate([sample(0)], 2 * M)
    tracker.evaluate([], 3 * M)
    tracker.evaluate([sample(0)], 4 * M)
    alert = one(tracker)
    assert alert.state is AlertState.PENDING and alert.active_at_ms == 4 * M
    assert alert.resolved_at_ms is None


def test_keep_firing_for_holds_then_resolves() -> None:
    tracker = AlertTracker(rule(for_ms=0, keep_firing_for_ms=30 * S))
    tracker.evaluate([sample(0)], 0)
    written = tracker.evaluate([], 10 * S)
    alert = one(tracker)
    assert alert.state is AlertState.FIRING and alert.keep_firing_since_ms == 10 * S
    assert series(written)["ALERTS:firing"] == 1.0
    tracker.evaluate([], 39 * S)
    assert one(tracker).state is AlertState.FIRING
    tracker.evaluate([], 40 * S)
    assert one(tracker).state is AlertState.INACTIVE and one(tracker).resolved_at_ms == 40 * S


def test_keep_firing_for_restarts_when_the_condition_returns() -> None:
    tracker = AlertTracker(rule(for_ms=0, keep_firing_for_ms=30 * S))
    tracker.evaluate([sample(0)], 0)
    tracker.evaluate([], 10 * S)
    tracker.evaluate([sample(0)], 20 * S)
    assert one(tracker).keep_firing_since_ms is None
    tracker.evaluate([], 30 * S)
    tracker.evaluate([], 59 * S)
    assert one(tracker).state is AlertState.FIRING
    assert one(tracker).active_at_ms == 0


def test_pending_alerts_do_not_keep_firing() -> None:
    tracker = AlertTracker(rule(keep_firing_for_ms=10 * M))
    tracker.evaluate([sample(0)], 0)
    tracker.evaluate([], M)
    assert tracker.alerts() == []


def test_value_and_annotations_follow_the_latest_evaluation() -> None:
    tracker = AlertTracker(rule())
    tracker.evaluate([sample(1)], 0)
    tracker.evaluate([sample(5)], M)
    alert = one(tracker)
    assert alert.value == 5 and alert.annotations == (("summary", "a down, value 5"),)


def test_labels_are_templated_and_empty_values_remove_labels() -> None:
    labels = (("severity", "{{ if gt $value 1.0 }}page{{ end }}"), ("instance", ""))
    tracker = AlertTracker(rule(labels=labels))
    tracker.evaluate([sample(2, job="x")], 0)
    assert one(tracker).labels == (
        ("alertname", "InstanceDown"),
        ("job", "x"),
        ("severity", "page"),
    )


def test_identity_is_the_label_set() -> None:
    tracker = AlertTracker(rule())
    tracker.evaluate([sample(0, instance="a"), sample(0, instance="b")], 0)
    tracker.evaluate([sample(0, instance="b")], M)
    assert [dict(a.labels)["instance"] for a in tracker.alerts()] == ["b"]


def test_duplicate_label_sets_are_an_error_and_change_nothing() -> None:
    tracker = AlertTracker(rule(labels=(("instance", "same"),)))
    with pytest.raises(EvalError, match="same labelset after applying alert labels"):
        tracker.evaluate([sample(0, instance="a"), sample(0, instance="b")], 0)
    assert tracker.alerts() == []


def test_exceeding_the_limit_drops_every_alert() -> None:
    tracker = AlertTracker(rule())
    tracker.evaluate([sample(0, instance="a")], 0)
    with pytest.raises(EvalError, match="exceeded limit of 1 with 2 alerts"):
        tracker.evaluate([sample(0, instance="a"), sample(0, instance="b")], M, limit=1)
    assert tracker.alerts() == []


def test_unrestored_trackers_write_no_series() -> None:
    tracker = AlertTracker(rule(), restored=False)
    assert tracker.evaluate([sample(0)], 0) == []


# --- sending -------------------------------------------------------------------------------


def test_sending_firing_and_resolved_alerts() -> None:
    tracker = AlertTracker(rule(for_ms=M))
    send = {"resend_delay_ms": M, "interval_ms": 10 * S}
    tracker.evaluate([sample(0)], 0)
    assert tracker.to_send(0, **send) == []  # pending is never sent
    tracker.evaluate([sample(0)], M)
    (sent,) = tracker.to_send(M, **send)
    assert sent.state is AlertState.FIRING and sent.starts_at_ms == M
    assert sent.ends_at_ms == M + 4 * M  # valid for 4 x max(resend delay, interval)
    tracker.evaluate([sample(0)], 2 * M)
    assert tracker.to_send(2 * M, **send) == []  # not more than the resend delay yet
    tracker.evaluate([sample(0)], 2 * M + 10 * S)
    assert len(tracker.to_send(2 * M + 10 * S, **send)) == 1
    tracker.evaluate([], 2 * M + 20 * S)
    (resolved,) = tracker.to_send(2 * M + 20 * S, **send)
    assert resolved.state is AlertState.INACTIVE and resolved.ends_at_ms == 2 * M + 20 * S
    assert resolved.starts_at_ms == M
    tracker.evaluate([], 2 * M + 30 * S)
    assert tracker.to_send(2 * M + 30 * S, **send) == []
    tracker.evaluate([], 3 * M + 30 * S)
    assert len(tracker.to_send(3 * M + 30 * S, **send)) == 1  # resent while retained


# --- restore after a restart ----------------------------------------------------------------


def _previous_process(source: GrowingSource, r: AlertingRule, until_ms: int) -> None:
    """An earlier process evaluated every 10s from 0 to `until_ms`, condition always true."""
    tracker = AlertTracker(r)
    for t in range(0, until_ms + 1, 10 * S):
        for labels, value in tracker.evaluate([sample(0)], t):
            source.append(labels, t, value)


def _restarted(source: GrowingSource, r: AlertingRule, start_ms: int) -> AlertTracker:
    """A new process: two evaluations (nothing written), then Prometheus's restore."""
    tracker = AlertTracker(r, restored=False)
    tracker.evaluate([sample(0)], start_ms)
    tracker.evaluate([sample(0)], start_ms + 10 * S)
    tracker.restore_for_state(
        source, start_ms + 10 * S, outage_tolerance_ms=60 * M, grace_ms=10 * M
    )
    assert tracker.restored
    return tracker


def test_restore_shifts_active_at_by_the_downtime() -> None:
    source = GrowingSource()
    r = rule(for_ms=30 * M)
    _previous_process(source, r, until_ms=5 * M)  # pending for 5m when it died
    tracker = _restarted(source, r, start_ms=7 * M)  # down 2m10s (last write at 5m)
    now = 7 * M + 10 * S
    # pending time already spent (5m) counts; the downtime does not
    assert one(tracker).active_at_ms == now - 5 * M


def test_restore_never_fires_within_the_grace_period() -> None:
    source = GrowingSource()
    r = rule(for_ms=30 * M)
    _previous_process(source, r, until_ms=25 * M)  # 5m left when it died: less than grace
    tracker = _restarted(source, r, start_ms=26 * M)
    now = 26 * M + 10 * S
    assert one(tracker).active_at_ms == now + 10 * M - 30 * M
    tracker.evaluate([sample(0)], now + 10 * M - 1)
    assert one(tracker).state is AlertState.PENDING
    tracker.evaluate([sample(0)], now + 10 * M)
    assert one(tracker).state is AlertState.FIRING


def test_an_alert_that_was_firing_fires_again_at_once() -> None:
    source = GrowingSource()
    r = rule(for_ms=30 * M)
    _previous_process(source, r, until_ms=40 * M)
    tracker = _restarted(source, r, start_ms=45 * M)
    assert one(tracker).active_at_ms == 0
    tracker.evaluate([sample(0)], 45 * M + 20 * S)
    assert one(tracker).state is AlertState.FIRING


def test_short_for_durations_are_not_restored() -> None:
    source = GrowingSource()
    r = rule(for_ms=5 * M)  # shorter than the 10m grace period: simply waits `for` again
    _previous_process(source, r, until_ms=4 * M)
    tracker = _restarted(source, r, start_ms=6 * M)
    assert one(tracker).active_at_ms == 6 * M


def test_an_alert_that_had_ended_is_not_restored() -> None:
    source = GrowingSource()
    r = rule(for_ms=30 * M)
    _previous_process(source, r, until_ms=5 * M)
    # the previous process saw it end: its last ALERTS_FOR_STATE sample is a staleness marker
    ended = AlertTracker(r)
    ended.evaluate([sample(0)], 0)
    labels = ended.for_state_labels(one(ended))
    source.append(labels, 5 * M + 10 * S, STALE_NAN)
    by_name = Matcher(name="__name__", op=MatchOp.EQ, value="ALERTS_FOR_STATE")
    (stored,) = source.select([by_name], 0, 6 * M)
    assert is_stale_marker(float(stored.values[-1]))
    tracker = _restarted(source, r, start_ms=7 * M)
    assert one(tracker).active_at_ms == 7 * M
