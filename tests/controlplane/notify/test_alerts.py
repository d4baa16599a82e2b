from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controlplane.model.series import labels_from
from controlplane.notify.alerts import (
    Alert,
    AlertStatus,
    GroupKey,
    fingerprint,
    format_time,
    go_quote,
    merge,
    parse_time,
)
from tests.controlplane.notify.conftest import T0


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # prometheus/common model/signature_test.go vectors
        ({}, 14695981039346656037),
        ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
    ],
)
def test_fingerprint_is_prometheus_commons(labels: dict[str, str], expected: int) -> None:
    assert fingerprint(labels_from(labels)) == f"{expected:016x}"


def test_group_key_string() -> None:
    key = GroupKey(
        route_key='{}/{severity="page"}',
        labels=labels_from({"region": "eu", "alertname": 'Say "hi"\n'}),
    )
    assert str(key) == '{}/{severity="page"}:{alertname="Say \\"hi\\"\\n", region="eu"}'
    assert go_quote("é\x01") == '"é\\x01"'


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (None, "0001-01-01T00:00:00Z"),
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "2024-05-01T12:00:00Z"),
        (datetime(2024, 5, 1, 12, 0, 0, 120000, tzinfo=UTC), "2024-05-01T12:00:00.12Z"),
    ],
)
def test_time_rendering_round_trips(moment: datetime | None, text: str) -> None:
    assert format_time(moment) == text
    assert parse_time(text) == moment


def test_parse_time_accepts_offsets_and_nanoseconds() -> None:
    assert parse_time("2024-05-01T14:00:00.123456789+02:00") == datetime(
        2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC
    )
    for bad in ("2024-05-01 12:00:00", "2024-05-01T12:00:00", "yesterday"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_status_by_time_and_merge_keeps_the_first_start() -> None:
    first = Alert.of({"alertname": "A"}, starts_at=T0)
    assert first.status_at(T0 + timedelta(days=1)) is AlertStatus.FIRING
    resend = Alert.of({"alertname": "A"}, starts_at=T0 + timedelta(minutes=1))
    assert merge(first, resend).starts_at == T0
    resolved = Alert.of({"alertname": "A"}, starts_at=T0, ends_at=T0 + timedelta(minutes=5))
    assert resolved.status_at(T0 + timedelta(minutes=4)) is AlertStatus.FIRING
    assert resolved.status_at(T0 + timedelta(minutes=5)) is AlertStatus.RESOLVED
    # after a resolution, a new start is a new incident
    again = Alert.of({"alertname": "A"}, starts_at=T0 + timedelta(minutes=10))
    assert merge(resolved, again).starts_at == T0 + timedelta(minutes=10)
