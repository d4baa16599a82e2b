"""`/api/v1/rules` and `/api/v1/alerts` in Prometheus's JSON shapes (web/api/v1, and the alert
generator compliance specification), so Grafana, the compliance tester and curl read them.

    app.register_blueprint(create_blueprint(manager))

Times are RFC 3339 in UTC (`0001-01-01T00:00:00Z` before the first evaluation), durations and
evaluation times float seconds, alert values Go's `%e` (`"1e+00"`). `/api/v1/rules` takes
Prometheus's filters: `type=alert|record`, `rule_name[]`, `rule_group[]`, `file[]`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import Blueprint, Response, request

from controlplane.api.encode import error, success
from controlplane.gotemplate.fmt import format_float_e_shortest
from controlplane.rules.alerting import Alert, AlertState
from controlplane.rules.group import GroupStatus, RuleStatus
from controlplane.rules.model import AlertingRule, RecordingRule

ZERO_TIME = "0001-01-01T00:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RuleSource(Protocol):
    """What the blueprint reads: the RuleManager, or anything shaped like it."""

    def groups(self) -> list[GroupStatus]: ...

    def alerts(self) -> list[Alert]: ...


def rfc3339(t_ms: int | None) -> str:
    if t_ms is None:
        return ZERO_TIME
    when = _EPOCH + timedelta(milliseconds=t_ms)
    frac = f".{t_ms % 1000:03d}".rstrip("0").rstrip(".")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def alert_json(alert: Alert) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state.value,
        "activeAt": rfc3339(alert.active_at_ms),
        "value": format_float_e_shortest(alert.value),
    }
    if alert.keep_firing_since_ms is not None:
        body["keepFiringSince"] = rfc3339(alert.keep_firing_since_ms)
    return body


def rule_json(status: RuleStatus) -> dict[str, Any]:
    rule = status.rule
    common: dict[str, Any] = {"name": rule.name, "query": rule.expr.strip()}
    tail: dict[str, Any] = {"health": status.health.value}
    if status.last_error:
        tail["lastError"] = status.last_error
    tail["evaluationTime"] = status.evaluation_s
    tail["lastEvaluation"] = rfc3339(status.last_evaluation_ms)
    if isinstance(rule, RecordingRule):
        labels = {"labels": dict(rule.labels)} if rule.labels else {}
        return {**common, **labels, **tail, "type": "recording"}
    assert isinstance(rule, AlertingRule)
    return {
        "state": (status.state or AlertState.INACTIVE).value,
        **common,
        "duration": rule.for_ms / 1000,
        "keepFiringFor": rule.keep_firing_for_ms / 1000,
        "labels": dict(rule.labels),
        "annotations": dict(rule.annotations),
        "alerts": [alert_json(a) for a in status.alerts],
        **tail,
        "type": "alerting",
    }


def group_json(group: GroupStatus, rules: Sequence[RuleStatus]) -> dict[str, Any]:
    return {
        "name": group.group.name,
        "file": group.group.file,
        "rules": [rule_json(r) for r in rules],
        "interval": group.interval_ms / 1000,
        "limit": group.group.limit,
        "evaluationTime": group.evaluation_s,
        "lastEvaluation": rfc3339(group.last_evaluation_ms),
    }


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json"
    )


def _values(name: str) -> set[str]:
    return set(request.args.getlist(name) + request.form.getlist(name))


def create_blueprint(source: RuleSource) -> Blueprint:
    bp = Blueprint("rules_api", __name__, url_prefix="/api/v1")

    @bp.route("/rules", methods=["GET", "POST"])
    def rules() -> Response:
        kind = request.values.get("type", "").lower()
        if kind not in ("", "alert", "record"):
            return _json(error("bad_data", f"not supported value {kind!r}"), 400)
        names, groups, files = _values("rule_name[]"), _values("rule_group[]"), _values("file[]")
        out = []
        for group in source.groups():
            if (groups and group.group.name not in groups) or (
                files and group.group.file not in files
            ):
                continue
            chosen = [
                r
                for r in group.rules
                if (not names or r.rule.name in names)
                and (kind != "alert" or isinstance(r.rule, AlertingRule))
                and (kind != "record" or isinstance(r.rule, RecordingRule))
            ]
            if chosen or not (kind or names):
                out.append(group_json(group, chosen))
        return _json(success({"groups": out}))

    @bp.route("/alerts", methods=["GET", "POST"])
    def alerts() -> Response:
        return _json(success({"alerts": [alert_json(a) for a in source.alerts()]}))

    return bp
