"""Alerts from another Alertmanager: its webhook message (version 4), checked strictly.

Everything is checked before anything is taken, so a refused message changes nothing. Each
refusal names the field (`alerts[3].labels.severity`). A firing alert stays firing until the
sender reports it resolved, so the sending Alertmanager should use `send_resolved: true`.
Ingested alerts get a provenance label (`source="alertmanager"` by default), which replaces
any such label they carried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.model import jsonbody
from controlplane.model.series import labels_from
from controlplane.notify.alerts import Alert, AlertStatus, pairs, parse_time
from controlplane.notify.errors import RequestError
from controlplane.notify.matchers import LABEL_NAME

_TOP_FIELDS = frozenset(
    {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels"}
    | {"commonLabels", "commonAnnotations", "externalURL", "alerts"}
)
_ALERT_FIELDS = frozenset(
    {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
)
_STRING_FIELDS = ("groupKey", "receiver", "externalURL")
_STATUSES = {s.value for s in AlertStatus}


@dataclass(frozen=True, kw_only=True)
class IngestLimits:
    max_alerts: int = 1000
    max_body_bytes: int = 1 << 20


def _invalid(field: str, message: str) -> RequestError:
    return RequestError(400, "invalid_payload", f"{field}: {message}", field=field)


def parse_payload(
    raw: bytes,
    *,
    now: datetime,
    limits: IngestLimits,
    source_label: tuple[str, str] | None = ("source", "alertmanager"),
) -> list[Alert]:
    """The alerts of one webhook message, or RequestError (4xx) saying what is wrong."""
    if len(raw) > limits.max_body_bytes:
        raise RequestError(
            413, "payload_too_large", f"body of {len(raw)} bytes > {limits.max_body_bytes}"
        )
    try:
        body = jsonbody.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, "malformed_json", f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise _invalid("$", f"the body must be a JSON object, got {type(body).__name__}")
    _check_top(body)
    alerts = body["alerts"]
    if len(alerts) > limits.max_alerts:
        raise RequestError(
            413,
            "too_many_alerts",
            f"alerts: {len(alerts)} alerts > the limit of {limits.max_alerts}",
            field="alerts",
        )
    return [_alert(item, f"alerts[{i}]", now, source_label) for i, item in enumerate(alerts)]


def _check_top(body: Mapping[str, Any]) -> None:
    for key in body:
        if key not in _TOP_FIELDS:
            raise RequestError(400, "unknown_field", f"{key}: unknown field", field=str(key))
    if body.get("version") != "4":
        raise _invalid("version", f"{body.get('version')!r}: only version '4' is understood")
    if not isinstance(body.get("alerts"), list):
        raise _invalid("alerts", f"{body.get('alerts')!r} is not a list")
    if "status" in body and body["status"] not in _STATUSES:
        raise _invalid("status", f"{body['status']!r} is not firing or resolved")
    for key in _STRING_FIELDS:
        if key in body and not isinstance(body[key], str):
            raise _invalid(key, f"{body[key]!r} is not a string")
    count = body.get("truncatedAlerts", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise _invalid("truncatedAlerts", f"{count!r} is not a non-negative integer")
    for key in ("groupLabels", "commonLabels"):
        if key in body:
            _labels(body[key], key, allow_empty=True)
    if "commonAnnotations" in body:
        _strings(body["commonAnnotations"], "commonAnnotations")


def _alert(item: Any, where: str, now: datetime, source_label: tuple[str, str] | None) -> Alert:
    if not isinstance(item, dict):
        raise _invalid(where, f"{item!r} is not an object")
    for key in item:
        if key not in _ALERT_FIELDS:
            field = f"{where}.{key}"
            raise RequestError(400, "unknown_field", f"{field}: unknown field", field=field)
    if "labels" not in item:
        raise _invalid(f"{where}.labels", "missing")
    labels = dict(_labels(item["labels"], f"{where}.labels", allow_empty=False))
    if source_label is not None:
        labels[source_label[0]] = source_label[1]
    status = item.get("status")
    if status not in _STATUSES:
        raise _invalid(f"{where}.status", f"{status!r} is not firing or resolved")
    starts_at = _time(item.get("startsAt"), f"{where}.startsAt", required=True)
    ends_at = _time(item.get("endsAt"), f"{where}.endsAt", required=False)
    if status == AlertStatus.RESOLVED.value:
        if ends_at is None:
            raise _invalid(f"{where}.endsAt", "a resolved alert needs its end time")
        ends_at = min(ends_at, now)
    else:
        # firing until the sender says otherwise, whatever end it guessed
        ends_at = None
    for key in ("generatorURL", "fingerprint"):
        if key in item and not isinstance(item[key], str):
            raise _invalid(f"{where}.{key}", f"{item[key]!r} is not a string")
    assert starts_at is not None
    return Alert(
        labels=labels_from(labels),
        starts_at=starts_at,
        ends_at=ends_at,
        annotations=pairs(_strings(item.get("annotations", {}), f"{where}.annotations")),
        generator_url=item.get("generatorURL", ""),
    )


def _labels(raw: Any, where: str, *, allow_empty: bool) -> dict[str, str]:
    values = _strings(raw, where)
    for name in values:
        if not LABEL_NAME.match(name):
            raise _invalid(f"{where}.{name}", f"{name!r} is not a valid label name")
    if not allow_empty and not any(values.values()):
        raise _invalid(where, "an alert needs at least one label")
    return values


def _strings(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _invalid(where, f"{raw!r} is not an object of strings")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise _invalid(f"{where}.{key}", f"{value!r} is not a string")
    return raw


def _time(raw: Any, where: str, *, required: bool) -> datetime | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str):
        raise _invalid(where, f"{raw!r} is not an RFC 3339 time")
    try:
        moment = parse_time(raw)
    except ValueError:
        raise _invalid(where, f"{raw!r} is not an RFC 3339 time") from None
    if moment is None and required:
        raise _invalid(where, f"{raw!r}: a zero time is not a start")
    return moment
