"""`GET /docs/alerts/<Alert>.md`: the page each shipped alert's `runbook_url` points at
(`{{ $externalURL }}/docs/alerts/<Alert>.md`), served as plain text from the docs folder, so
the link in a notification opens on the control plane that sent it. Read-only, no token, and
only the names of that one folder (no paths)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Blueprint, Response

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _not_found(name: str) -> Response:
    body = {"error": "not_found", "message": f"no alert page {name!r}"}
    return Response(json.dumps(body), status=404, mimetype="application/json")


def create_blueprint(docs_dir: Path) -> Blueprint:
    bp = Blueprint("docs", __name__)
    folder = docs_dir / "alerts"

    @bp.get("/docs/alerts/")
    def index() -> Response:
        return page("README")

    @bp.get("/docs/alerts/<name>.md")
    def page(name: str) -> Response:
        path = folder / f"{name}.md"
        if not _NAME.match(name) or not path.is_file():
            return _not_found(name)
        response = Response(path.read_text(encoding="utf-8"), mimetype="text/plain")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return bp
