"""`GET /api/v1/slos` and `GET /api/v1/slos/<id>`: every SLO of `rules/slo/` with where it
stands now (controlplane.slo.status), for the dashboards, Slack and curl.

    GET /api/v1/slos?service=launches&time=<rfc3339 or unix>

Errors are the control plane's own JSON (`{"error": "<code>", "message": "..."}`): 400 for a
bad parameter, 404 for an unknown SLO, 503 when the telemetry cannot be queried.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence

from flask import Blueprint, Response, request

from controlplane.api.params import parse_time_ms
from controlplane.errors import ControlPlaneError
from controlplane.promql.results import Querier
from controlplane.rules.alerting import Alert
from controlplane.slo.spec import SLO
from controlplane.slo.status import SLOStatus, slo_status

log = logging.getLogger(__name__)


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def create_blueprint(
    slos: Sequence[SLO],
    querier: Querier,
    alerts: Callable[[], Sequence[Alert]],
    *,
    clock: Callable[[], float] = time.time,
) -> Blueprint:
    bp = Blueprint("slos", __name__)

    @bp.errorhandler(_Problem)
    def _problem(exc: _Problem) -> Response:
        return _json({"error": exc.code, "message": exc.message}, exc.status)

    def statuses(chosen: Sequence[SLO]) -> tuple[int, list[SLOStatus]]:
        text = request.args.get("time", "")
        try:
            at_ms = parse_time_ms(text) if text else round(clock() * 1000)
        except ValueError as exc:
            raise _Problem(400, "bad_request", f'invalid parameter "time": {exc}') from None
        current = alerts()
        try:
            return at_ms, [slo_status(s, querier, current, time_ms=at_ms) for s in chosen]
        except ControlPlaneError as exc:
            log.warning("SLO status query failed: %s", exc)
            raise _Problem(503, "unavailable", f"cannot query the SLO series: {exc}") from None

    @bp.get("/api/v1/slos")
    def _list() -> Response:
        service = request.args.get("service")
        at_ms, found = statuses([s for s in slos if service is None or s.service == service])
        return _json({"time_ms": at_ms, "slos": [s.as_json() for s in found]})

    @bp.get("/api/v1/slos/<slo_id>")
    def _one(slo_id: str) -> Response:
        # looked up per request: a reload replaces the list's contents
        slo = next((s for s in slos if s.id == slo_id), None)
        if slo is None:
            known = ", ".join(sorted(s.id for s in slos)) or "none"
            raise _Problem(404, "not_found", f"no SLO {slo_id!r}; known: {known}")
        at_ms, (found,) = statuses([slo])
        return _json({"time_ms": at_ms, **found.as_json()})

    return bp
