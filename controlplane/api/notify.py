"""The HTTP surface of notifications, as a Flask blueprint the control plane app mounts.

POST   /api/v1/alertmanager        Alertmanager webhook (version 4) in -> the dispatcher
GET    /api/v1/silences?state=     {"silences": [...]}, state pending|active|expired
POST   /api/v1/silences            {"matchers": [...], "duration" | "endsAt", "startsAt"?,
                                    "createdBy", "comment"} -> 201 {"id": ...}
GET    /api/v1/silences/<id>
DELETE /api/v1/silences/<id>       expire it (ends_at = now)
GET    /api/v1/notify/groups       the aggregation groups and their alerts

Writes need `Authorization: Bearer <token>` of a user of config/access.yml: 401 JSON for a
missing or unknown token, 403 for a role that may not (silences: operator; the webhook:
operator). Every refusal is
`{"error": "<code>", "message": "...", "field"?: "..."}`. A silence may last at most
`max_silence` (30 days by default) and start no later than that from now. Creating and
expiring one are audit events (`silence_created`, `silence_expired`), as pausing automation is:
both stop something from reaching people, with the token's user as the actor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

from flask import Blueprint, Response, request

from controlplane.access import Permission
from controlplane.api.auth import AccessSource, install_refusals, writer
from controlplane.model import jsonbody
from controlplane.model.series import Matcher
from controlplane.model.times import format_duration, parse_duration
from controlplane.notify.alerts import Alert, format_time, parse_time
from controlplane.notify.dispatch import Dispatcher, GroupView
from controlplane.notify.errors import RequestError, SilenceError, SilenceExpired, SilenceNotFound
from controlplane.notify.ingest import IngestLimits, parse_payload
from controlplane.notify.matchers import matcher_from_object, parse_matchers
from controlplane.notify.notifiers import alert_json
from controlplane.notify.silences import Silence, SilenceState, utc_now
from controlplane.operate import SilenceRequest, Silencing

_SILENCE_FIELDS = frozenset({"matchers", "startsAt", "endsAt", "duration", "createdBy", "comment"})
DEFAULT_MAX_SILENCE = timedelta(days=30)


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    return {
        "id": silence.id,
        "state": silence.state_at(now).value,
        "matchers": silence.matcher_strings,
        "startsAt": format_time(silence.starts_at),
        "endsAt": format_time(silence.ends_at),
        "updatedAt": format_time(silence.updated_at),
        "createdBy": silence.created_by,
        "comment": silence.comment,
    }


def _read_body(limit: int) -> bytes:
    """The raw body, refusing a non-JSON content type and more than `limit` bytes unread."""
    if request.mimetype != "application/json":
        raise RequestError(
            415, "unsupported_media_type", f"Content-Type {request.mimetype!r}: send JSON"
        )
    if request.content_length is not None and request.content_length > limit:
        raise RequestError(
            413, "payload_too_large", f"body of {request.content_length} bytes > {limit}"
        )
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestError(413, "payload_too_large", f"body over {limit} bytes")
    return raw


def create_blueprint(
    *,
    dispatcher: Dispatcher,
    silencing: Silencing,
    access: AccessSource,
    clock: Callable[[], datetime] = utc_now,
    limits: IngestLimits | None = None,
    source_label: tuple[str, str] | None = ("source", "alertmanager"),
    ingest_needs_token: bool = True,
    name: str = "notify",
    on_ingest: Callable[[Sequence[Alert]], None] | None = None,
    max_silence: timedelta = DEFAULT_MAX_SILENCE,
) -> Blueprint:
    """`ingest_needs_token=False` opens the webhook endpoint to senders that cannot send a
    bearer token; alerts can trigger remediation, so keep it on where possible (the token's
    user needs the operator role). `on_ingest` also receives every accepted external alert
    (the runbooks treat them like our own)."""
    bp = Blueprint(name, __name__)
    _install_errors(bp)
    install_refusals(bp)
    limits = limits or IngestLimits()

    @bp.post("/api/v1/alertmanager")
    def ingest() -> Response:
        if ingest_needs_token:
            writer(access(), Permission.INGEST)
        raw = _read_body(limits.max_body_bytes)
        alerts = parse_payload(raw, now=clock(), limits=limits, source_label=source_label)
        dispatcher.put(alerts)
        if on_ingest is not None:
            on_ingest(alerts)
        return _json({"status": "success", "accepted": len(alerts)})

    @bp.get("/api/v1/notify/groups")
    def groups() -> Response:
        now = clock()
        return _json({"groups": [_group_view(g, now) for g in dispatcher.groups()]})

    _install_silences(bp, silencing, access, clock, max_silence)
    return bp


def _install_silences(
    bp: Blueprint,
    silencing: Silencing,
    access: AccessSource,
    clock: Callable[[], datetime],
    max_silence: timedelta,
) -> None:
    @bp.get("/api/v1/silences")
    def list_silences() -> Response:
        state = _state_param(request.args.get("state"))
        now = clock()
        found = silencing.silences.list_silences(state)
        return _json({"silences": [silence_json(s, now) for s in found]})

    @bp.post("/api/v1/silences")
    def create_silence() -> Response:
        user = writer(access(), Permission.SILENCE)
        body = _silence_body(_read_body(64 * 1024))
        silence = silencing.silence(user, _silence_request(body, clock(), max_silence))
        return _json({"id": silence.id, "silence": silence_json(silence, clock())}, 201)

    @bp.get("/api/v1/silences/<silence_id>")
    def get_silence(silence_id: str) -> Response:
        return _json(silence_json(silencing.silences.get(silence_id), clock()))

    @bp.delete("/api/v1/silences/<silence_id>")
    def expire_silence(silence_id: str) -> Response:
        user = writer(access(), Permission.SILENCE)
        return _json(silence_json(silencing.expire(user, silence_id), clock()))


def _group_view(group: GroupView, now: datetime) -> dict[str, Any]:
    return {
        "groupKey": str(group.key),
        "receiver": group.receiver,
        "labels": dict(group.key.labels),
        "nextFlush": format_time(group.next_flush),
        "alerts": [_alert_view(a, now) for a in group.alerts],
    }


def _alert_view(alert: Alert, now: datetime) -> dict[str, Any]:
    return {**alert_json(alert), "status": alert.status_at(now).value}


def _install_errors(bp: Blueprint) -> None:
    @bp.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        response = _json(exc.body(), exc.status)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @bp.errorhandler(SilenceNotFound)
    def _not_found(exc: SilenceNotFound) -> Response:
        return _json({"error": "not_found", "message": str(exc)}, 404)

    @bp.errorhandler(SilenceExpired)
    def _expired(exc: SilenceExpired) -> Response:
        return _json({"error": "already_expired", "message": str(exc)}, 409)

    @bp.errorhandler(SilenceError)
    def _invalid(exc: SilenceError) -> Response:
        return _json({"error": "invalid_silence", "message": str(exc)}, 400)


def _state_param(raw: str | None) -> SilenceState | None:
    if raw is None or raw == "":
        return None
    try:
        return SilenceState(raw)
    except ValueError:
        states = [s.value for s in SilenceState]
        raise RequestError(
            400, "bad_request", f"state: {raw!r} is not one of {states}", field="state"
        ) from None


def _silence_body(raw: bytes) -> dict[str, Any]:
    try:
        body = jsonbody.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, "malformed_json", f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestError(400, "bad_request", "the body must be a JSON object", field="$")
    for key in body:
        if key not in _SILENCE_FIELDS:
            raise RequestError(400, "unknown_field", f"{key}: unknown field", field=str(key))
    return body


def _silence_request(body: dict[str, Any], now: datetime, longest: timedelta) -> SilenceRequest:
    """The silence asked for. `createdBy` may be given (amtool sends it) but the silence is
    created by the token's user: a name in the body proves nothing."""
    matchers = _matchers(body.get("matchers"))
    starts_at = _opt_time(body, "startsAt") or now
    if ("duration" in body) == ("endsAt" in body):
        raise RequestError(400, "bad_request", "give exactly one of duration and endsAt")
    if starts_at - now > longest:
        _too_long("startsAt", body["startsAt"], "from now", longest)
    if "duration" in body:
        ends_at = starts_at + _duration(body["duration"], longest)
    else:
        ends_at = _time_field(body, "endsAt")
        if ends_at - max(starts_at, now) > longest:
            _too_long("endsAt", body["endsAt"], "after the start", longest)
    for key in ("createdBy", "comment"):
        if (key in body or key == "comment") and not isinstance(body.get(key), str):
            raise RequestError(
                400, "bad_request", f"{key}: {body.get(key)!r} is not a string", field=key
            )
    return SilenceRequest(
        matchers=matchers, starts_at=starts_at, ends_at=ends_at, comment=body["comment"]
    )


def _matchers(raw: Any) -> list[Matcher]:
    if not isinstance(raw, list) or not raw:
        raise RequestError(
            400, "bad_request", "matchers: a non-empty list is needed", field="matchers"
        )
    out: list[Matcher] = []
    for i, item in enumerate(raw):
        try:
            if isinstance(item, str):
                out.extend(parse_matchers(item))
            elif isinstance(item, dict):
                out.append(matcher_from_object(item))
            else:
                raise ValueError(f"{item!r} is neither a matcher string nor an object")
        except ValueError as exc:
            field = f"matchers[{i}]"
            raise RequestError(400, "bad_request", f"{field}: {exc}", field=field) from None
    return out


def _opt_time(body: dict[str, Any], key: str) -> datetime | None:
    return _time_field(body, key) if key in body else None


def _time_field(body: dict[str, Any], key: str) -> datetime:
    raw = body.get(key)
    try:
        if isinstance(raw, str) and (moment := parse_time(raw)) is not None:
            return moment
    except ValueError:
        pass
    raise RequestError(400, "bad_request", f"{key}: {raw!r} is not an RFC 3339 time", field=key)


def _duration(raw: Any, longest: timedelta) -> timedelta:
    try:
        seconds = parse_duration(raw) if isinstance(raw, str) else 0.0
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise RequestError(
            400, "bad_request", f"duration: {raw!r} is not a positive duration", field="duration"
        )
    # compared as seconds: 99999999y does not even fit in a timedelta
    if seconds > longest.total_seconds():
        _too_long("duration", raw, "", longest)
    return timedelta(seconds=seconds)


def _too_long(field: str, raw: Any, what: str, longest: timedelta) -> NoReturn:
    limit = format_duration(longest.total_seconds())
    raise RequestError(
        400,
        "bad_request",
        f"{field}: {raw!r} is more than the maximum silence of {limit!r}"
        f"{' ' + what if what else ''} (silence_max_duration)",
        field=field,
    )
