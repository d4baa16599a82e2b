"""`POST /-/reload` (or PUT), as Prometheus and Alertmanager answer it: re-read the rules, SLO
specs, runbooks, routing and access file; 200 when the new files run, 400 naming the file and
field when one is wrong (the running configuration stays). A write: it needs an admin's token
(401 without a known token, 403 for another role)."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, Response

from controlplane.access import Permission
from controlplane.api.auth import AccessSource, install_refusals, writer
from controlplane.errors import ConfigError


def _json(body: object, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def create_blueprint(reload: Callable[[], None], *, access: AccessSource) -> Blueprint:
    bp = Blueprint("reload", __name__)
    install_refusals(bp)

    @bp.route("/-/reload", methods=["POST", "PUT"])
    def reload_config() -> Response:
        writer(access(), Permission.RELOAD)
        try:
            reload()
        except ConfigError as exc:
            return _json({"error": "reload_failed", "message": str(exc)}, 400)
        return _json({"status": "success"}, 200)

    return bp
