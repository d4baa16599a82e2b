"""Who is calling: the bearer token of a write call names the person (config/access.yml), and
refusals are JSON: 401 with `WWW-Authenticate: Bearer` for a missing or unknown token, 403 for a
role that may not. A user named in the body or an `X-User` header does not count."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from controlplane.access import (
    Access,
    AccessError,
    Permission,
    Unauthenticated,
    User,
    require,
)

AccessSource = Callable[[], Access]  # the current access file: /-/reload may replace it


def bearer_token(authorization: str) -> str | None:
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip()


def caller(access: Access) -> User | None:
    """The user whose bearer token this request carries, or None."""
    return access.authenticate(bearer_token(request.headers.get("Authorization", "")))


def writer(access: Access, permission: Permission) -> User:
    """The calling user if their role allows `permission`; AccessError (401/403) otherwise."""
    return require(caller(access), permission)


def refusal(exc: AccessError) -> Response:
    body = {"error": exc.code, "message": str(exc)}
    response = Response(json.dumps(body), status=exc.status, mimetype="application/json")
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def install_refusals(bp: Blueprint) -> None:
    bp.register_error_handler(AccessError, refusal)


# POST answers these as reads (Prometheus's API takes form-encoded queries)
_READ_POSTS = frozenset(
    f"/api/v1/{p}" for p in ("query", "query_range", "series", "labels", "rules", "alerts")
)
# open whatever anonymous_read says: probes, /metrics, and the way in
_OPEN = ("/metrics", "/healthz", "/readyz", "/-/healthy", "/-/ready")


def install_read_gate(
    app: Flask,
    access: AccessSource,
    session_user: Callable[[Access], User | None] = lambda _a: None,
    *,
    sign_in: str | None = None,
) -> None:
    """When `anonymous_read` is off, every read of the API and the dashboards needs a known
    token (any role; Grafana and promtool send a viewer's as a bearer token) or, for the
    dashboards, a session (`session_user`). A page asked for without one is sent to
    `sign_in`; everything else gets 401. Writes check their own role."""

    @app.before_request
    def _gate() -> BaseResponse | None:
        current = access()
        path = request.path
        if current.anonymous_read or path in _OPEN or (sign_in and path == sign_in):
            return None
        is_read = request.method in ("GET", "HEAD") or path in _READ_POSTS
        if not is_read and not path.startswith("/dash/"):
            return None  # a write: its endpoint asks for the role it needs
        if caller(current) is not None or session_user(current) is not None:
            return None
        if sign_in and request.method == "GET" and path.startswith("/dash/"):
            return redirect(f"{sign_in}?{urlencode({'next': request.full_path})}")
        return refusal(Unauthenticated("reading needs a token: anonymous_read is off"))
