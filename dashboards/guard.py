"""Dash's callback endpoint takes JSON from the browser, and so from anyone: a body nested
thousands deep, not an object, or naming no callback of this app answered 500 (RecursionError,
KeyError inside Dash). Checked here first, before Dash reads it; a refusal is a 400 JSON error,
as everywhere else on the control plane."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, request

from controlplane.model import jsonbody

CALLBACK_PATH = "_dash-update-component"


def _refuse(message: str) -> Response:
    body = {"error": "bad_request", "message": message}
    return Response(json.dumps(body), status=400, mimetype="application/json")


def problem(raw: bytes, callbacks: Any) -> str | None:
    """Why this callback request cannot be served, or None if Dash may have it."""
    try:
        body = jsonbody.loads(raw)
    except ValueError as exc:
        return f"malformed callback request: {exc}"
    if not isinstance(body, dict):
        return "a callback request is a JSON object"
    output, inputs = body.get("output"), body.get("inputs", [])
    if not isinstance(output, str) or output not in callbacks:
        return f"no callback for output {str(output)[:200]!r}"
    if not isinstance(inputs, list) or not isinstance(body.get("state", []), list):
        return "inputs and state are lists"
    return None


def install(server: Flask, prefix: str, dash_app: Any) -> None:
    path = f"{prefix}{CALLBACK_PATH}"

    @server.before_request
    def _check_callback() -> Response | None:
        if request.method != "POST" or request.path != path:
            return None
        why = problem(request.get_data(cache=True), dash_app.callback_map)
        return _refuse(why) if why is not None else None
