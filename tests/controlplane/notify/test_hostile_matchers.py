"""Alertmanager matchers are RE2 too: a catastrophic pattern against a long label value
(silence, inhibition, route) answers at once; a pattern RE2 refuses is refused where it
enters, and a stored silence from before RE2 that it refuses mutes nothing instead of
breaking every notification."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from controlplane.errors import ConfigError
from controlplane.model.series import labels_from
from controlplane.notify.alerts import Alert
from controlplane.notify.inhibit import Inhibitor
from controlplane.notify.matchers import matcher_from_object, matches, parse_matchers
from controlplane.notify.silences import SilenceStore, silences_table
from tests.controlplane.notify.conftest import T0, FakeClock, routing_from

LONG = "a" * 100_000 + "!"
HOSTILE = ["(a+)+$", "(a|aa)+b", "(.*a){25}", "(a*)*b"]


@pytest.mark.parametrize("pattern", HOSTILE)
def test_catastrophic_patterns_match_long_values_at_once(pattern: str) -> None:
    started = time.monotonic()
    silence = parse_matchers(f'{{alertname="A", value=~"{pattern}"}}')
    assert not matches(silence, {"alertname": "A", "value": LONG})
    matcher = f"'value=~\"{pattern}\"'"
    routing = routing_from(
        f"route: {{receiver: a, routes: [{{receiver: b, matchers: [{matcher}]}}]}}\n"
        "receivers: [{name: a}, {name: b}]\n"
        f"inhibit_rules: [{{source_matchers: [{matcher}], target_matchers: [x=1]}}]\n"
    )
    labels = labels_from({"alertname": "A", "value": LONG, "x": "1"})
    assert [r.options.receiver for r in routing.route.match(labels)] == ["a"]
    firing = Alert(labels=labels, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    assert not Inhibitor(routing.inhibit_rules, [firing], T0).mutes(labels)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("pattern", ["x**", "(?=a)", "a{1001}"])
def test_patterns_re2_refuses_are_refused_where_they_enter(pattern: str) -> None:
    with pytest.raises(ValueError, match="is not a valid regex"):
        matcher_from_object({"name": "a", "value": pattern, "isRegex": True})
    with pytest.raises(ConfigError, match=r"route\.routes\[0\]\.matchers\[0\]: .* not a valid"):
        routing_from(
            f"route: {{receiver: a, routes: [{{matchers: ['x=~\"{pattern}\"']}}]}}\n"
            "receivers: [{name: a}]\n"
        )


def test_a_stored_silence_re2_refuses_mutes_nothing(
    silence_store: SilenceStore, sqlite_engine: sa.Engine, clock: FakeClock
) -> None:
    kept = silence_store.add(
        matchers=parse_matchers("alertname=A"),
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        created_by="alice",
        comment="from before RE2",
    )
    stored = [{"name": "alertname", "op": "=~", "value": "A(?=x)"}]  # Python's re took it
    with sqlite_engine.begin() as conn:
        conn.execute(sa.update(silences_table).values(matchers=stored))
    (silence,) = silence_store.active()
    assert not silence.mutes(labels_from({"alertname": "A"}))
    assert silence_store.expire(kept.id).id == kept.id  # and it can still be expired
