"""HTTP API for runbooks, executions, approvals, automation, maintenance and the audit log.

Writes name the person by their bearer token (config/access.yml): 401 JSON for a missing or
unknown token, 403 for a role that may not (controlplane/operate decides, for the dashboards
too). Errors are JSON `{"error": "<code>", "message": "..."}` with a 4xx status; nothing changes
on a refused write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from controlplane.access import Permission, User
from controlplane.api.auth import AccessSource, install_refusals, writer
from controlplane.audit import AuditLog
from controlplane.errors import ConfigError
from controlplane.model import jsonbody
from controlplane.model.times import format_duration, parse_duration
from controlplane.operate import Operations
from controlplane.runbooks.engine import RemediationError
from controlplane.runbooks.model import Runbook
from controlplane.runbooks.store import State


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")


def create_blueprint(
    ops: Operations,
    *,
    access: AccessSource,
    max_maintenance_s: float = 24 * 3600.0,
) -> Blueprint:
    """`max_maintenance_s` bounds maintenance windows: they block automation while open."""
    bp = Blueprint("runbooks", __name__)
    install_refusals(bp)

    def who(permission: Permission) -> User:
        return writer(access(), permission)

    @bp.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return _json({"error": exc.code, "message": exc.message}, exc.status)

    @bp.errorhandler(RemediationError)
    def _refused(exc: RemediationError) -> Response:
        status = 404 if str(exc).startswith(("unknown runbook", "unknown execution")) else 409
        return _json(
            {"error": "not_found" if status == 404 else "conflict", "message": str(exc)}, status
        )

    _install_reads(bp, ops)
    _install_runs(bp, who, ops)
    _install_automation(bp, who, ops)
    _install_maintenance(bp, who, ops, max_maintenance_s)
    _install_audit(bp, ops.audit)
    return bp


def _install_reads(bp: Blueprint, ops: Operations) -> None:
    remediator, store = ops.remediator, ops.executions

    @bp.get("/api/v1/runbooks")
    def runbooks() -> Response:
        return _json({"runbooks": [_runbook_json(rb) for rb in remediator.runbooks.values()]})

    @bp.get("/api/v1/runbooks/<name>")
    def runbook(name: str) -> Response:
        rb = remediator.runbooks.get(name)
        if rb is None:
            raise ApiError(404, "not_found", f"unknown runbook {name!r}")
        return _json(_runbook_json(rb))

    @bp.get("/api/v1/executions")
    def executions() -> Response:
        states = None
        if request.args.get("state"):
            try:
                states = [State(s) for s in request.args["state"].split(",")]
            except ValueError:
                raise ApiError(
                    400,
                    "bad_request",
                    f"unknown state in {request.args['state']!r} "
                    f"(states: {[s.value for s in State]})",
                ) from None
        limit = _int_arg("limit", 100, 1, 1000)
        found = store.find(states=states, runbook=request.args.get("runbook"), limit=limit)
        return _json({"executions": [e.as_json() for e in found]})

    @bp.get("/api/v1/executions/<execution_id>")
    def execution(execution_id: str) -> Response:
        ex = store.get(execution_id)
        if ex is None:
            raise ApiError(404, "not_found", f"unknown execution {execution_id!r}")
        steps = [dict(s.__dict__) for s in store.steps_of(ex.id)]
        events = [dict(e.__dict__) for e in ops.audit.events(execution_id=ex.id)]
        return _json({**ex.as_json(), "steps": steps, "audit": events})


def _install_runs(bp: Blueprint, who: Callable[[Permission], User], ops: Operations) -> None:
    @bp.post("/api/v1/runbooks/<name>/executions")
    def run(name: str) -> Response:
        user = who(Permission.RUN)
        body = _body()
        labels, params = body.get("labels", {}), body.get("params", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ApiError(400, "bad_request", f"labels must map names to strings, got {labels!r}")
        if not isinstance(params, dict):
            raise ApiError(400, "bad_request", f"params must be an object, got {params!r}")
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ApiError(400, "bad_request", f"dry_run must be true or false, got {dry_run!r}")
        try:
            ex = ops.run(user, name, labels=labels, params=params, dry_run=dry_run)
        except ConfigError as exc:  # a template the labels and params given cannot fill
            raise ApiError(400, "bad_request", str(exc)) from None
        return _json(ex.as_json(), 201)

    @bp.post("/api/v1/executions/<execution_id>/approve")
    def approve(execution_id: str) -> Response:
        return _json(ops.approve(who(Permission.APPROVE), execution_id).as_json())

    @bp.post("/api/v1/executions/<execution_id>/reject")
    def reject(execution_id: str) -> Response:
        user = who(Permission.REJECT)
        reason = str(_body().get("reason", ""))
        return _json(ops.reject(user, execution_id, reason).as_json())


def _install_automation(bp: Blueprint, who: Callable[[Permission], User], ops: Operations) -> None:
    @bp.get("/api/v1/automation")
    def automation() -> Response:
        paused, reason, by, at = ops.switches.automation()
        max_actions, window_s = ops.remediator.budget
        return _json(
            {
                "paused": paused,
                "reason": reason,
                "changed_by": by,
                "changed_at": at,
                "budget": {"max_actions": max_actions, "window_s": window_s},
            }
        )

    @bp.post("/api/v1/automation/pause")
    def pause() -> Response:
        user = who(Permission.PAUSE)
        ops.pause(user, str(_body().get("reason", "")))
        return automation()

    @bp.post("/api/v1/automation/resume")
    def resume() -> Response:
        ops.resume(who(Permission.RESUME))
        return automation()


def _install_maintenance(
    bp: Blueprint, who: Callable[[Permission], User], ops: Operations, max_s: float
) -> None:
    @bp.get("/api/v1/maintenance")
    def maintenance() -> Response:
        return _json({"windows": ops.switches.maintenance_windows(active_at=ops.clock())})

    @bp.post("/api/v1/maintenance")
    def add_maintenance() -> Response:
        user = who(Permission.MAINTENANCE)
        body = _body()
        matchers = body.get("matchers", {})
        if not isinstance(matchers, dict) or not all(
            k in ("region", "provider") and isinstance(v, str) for k, v in matchers.items()
        ):
            raise ApiError(
                400, "bad_request", f"matchers take region/provider strings, got {matchers!r}"
            )
        seconds = _window_seconds(body.get("duration", ""), max_s)
        reason = str(body.get("reason", ""))
        window_id, ends_at = ops.start_maintenance(
            user, matchers=matchers, seconds=seconds, reason=reason
        )
        return _json({"id": window_id, "ends_at": ends_at}, 201)

    @bp.delete("/api/v1/maintenance/<window_id>")
    def end_maintenance(window_id: str) -> Response:
        if not ops.end_maintenance(who(Permission.MAINTENANCE), window_id):
            raise ApiError(404, "not_found", f"unknown maintenance window {window_id!r}")
        return _json({"id": window_id, "ended": True})


def _install_audit(bp: Blueprint, audit: AuditLog) -> None:
    @bp.get("/api/v1/audit")
    def audit_events() -> Response:
        after, limit = _int_arg("after", 0, 0, 2**62), _int_arg("limit", 500, 1, 5000)
        found = audit.events(
            execution_id=request.args.get("execution_id"), after=after, limit=limit
        )
        return _json({"events": [dict(e.__dict__) for e in found]})

    @bp.get("/api/v1/audit/verify")
    def audit_verify() -> Response:
        result = audit.verify()
        return _json(
            {"ok": result.ok, "checked": result.checked, "problems": list(result.problems)},
            200 if result.ok else 409,
        )


def _window_seconds(raw: object, max_s: float) -> float:
    try:
        seconds = parse_duration(str(raw))
    except ValueError:
        raise ApiError(400, "bad_request", f"duration {raw!r} is not a duration") from None
    if not 0 < seconds <= max_s:
        raise ApiError(
            400,
            "bad_request",
            f"duration {raw!r} must be more than 0s and at most the maximum maintenance window"
            f" of {format_duration(max_s)!r} (automation.maintenance_max_duration)",
        )
    return seconds


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    if len(raw) > 64 * 1024:
        raise ApiError(413, "too_large", "request body over 64 KiB")
    try:
        value = jsonbody.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"malformed JSON body: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", "JSON body must be an object")
    return value


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be in [{low}, {high}], got {value}")
    return value


def _runbook_json(rb: Runbook) -> dict[str, Any]:
    return {
        "name": rb.name,
        "description": rb.description,
        "mode": rb.mode.value,
        "path": rb.path,
        "trigger": None
        if rb.trigger is None
        else {"alert": rb.trigger.alert, "matchers": dict(rb.trigger.matchers)},
        "steps": [{"id": s.id, "action": s.action, "with": dict(s.params)} for s in rb.steps],
        "verify": None
        if rb.verify is None
        else {"expr": rb.verify.expr, "within_s": rb.verify.within_s},
        "rollback": [{"id": s.id, "action": s.action} for s in rb.rollback],
        "on_resolved": [{"id": s.id, "action": s.action} for s in rb.on_resolved],
        "guards": {"cooldown_s": rb.guards.cooldown_s, "max_concurrent": rb.guards.max_concurrent},
        "params": [p.__dict__ for p in rb.params],
        "approvers": rb.approvers,
    }
