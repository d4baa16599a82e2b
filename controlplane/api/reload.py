"""`POST /-/reload` (or PUT), as Prometheus and Alertmanager answer it: re-read the rules, SLO
specs, runbooks and routing; 200 when the new files run, 400 naming the file and field when one
is wrong (the running configuration stays). A write: it needs the bearer token."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, Response, request

from controlplane.api.auth import bearer_problem
from controlplane.errors import ConfigError


def _json(body: object, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def create_blueprint(reload: Callable[[], None], *, api_token: str) -> Blueprint:
    bp = Blueprint("reload", __name__)

    @bp.route("/-/reload", methods=["POST", "PUT"])
    def reload_config() -> Response:
        problem = bearer_problem(request.headers.get("Authorization", ""), api_token)
        if problem is not None:
            response = _json({"error": "unauthorized", "message": problem}, 401)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        try:
            reload()
        except ConfigError as exc:
            return _json({"error": "reload_failed", "message": str(exc)}, 400)
        return _json({"status": "success"}, 200)

    return bp
