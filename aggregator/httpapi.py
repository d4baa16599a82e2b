"""What every aggregator role's HTTP surface shares: JSON errors, the admin bearer token,
Idempotency-Key replay for mutating admin calls, /metrics, /healthz, /readyz, the thin WSGI
path for the hot routes, and the keep-alive client the roles call each other with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from aggregator.errors import ApiError, BadRequest, Conflict, Unauthorized
from aggregator.limits import parse_json

F = TypeVar("F", bound=Callable[..., Any])


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def json_body() -> dict[str, Any]:
    """The request's JSON object, or BadRequest naming what is wrong."""
    return json_object(request.get_data(cache=True))


def json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object ({} when empty), or BadRequest naming what is wrong."""
    if not raw:
        return {}
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise BadRequest(f"JSON body must be an object, got {type(value).__name__}")
    return value


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_response(exc.body(), exc.status, _error_headers(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return json_response(_http_error_body(exc), exc.code or 500)


def _error_headers(exc: ApiError) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None


def _http_error_body(exc: HTTPException) -> dict[str, Any]:
    code = (exc.name or "error").lower().replace(" ", "_")
    return {"error": code, "message": exc.description}


FastHandler = Callable[[bytes], tuple[int, object]]


class FastRoutes:
    """WSGI middleware for a role's hot routes: a (method, path) in `routes` skips Flask's
    request context, routing and Response objects (a fifth of a small request's CPU);
    everything else, wrong methods included, falls through to the Flask app.

    A handler takes the raw body and returns (HTTP status, JSON body). Errors answer as the
    Flask handlers above do: an ApiError as its JSON body, anything else logged and answered
    500 `internal_server_error` (or raised, where Flask would propagate it: testing, debug).
    """

    def __init__(self, app: Flask, routes: Mapping[tuple[str, str], FastHandler]) -> None:
        self._app = app
        self._fallback = app.wsgi_app
        self._routes = routes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        handler = self._routes.get((method, path))
        if handler is None:
            return self._fallback(environ, start_response)
        extra: dict[str, str] | None = None
        try:
            status, body = handler(_wsgi_body(environ))
        except ApiError as exc:
            status, body, extra = exc.status, exc.body(), _error_headers(exc)
        except Exception as exc:
            if self._propagates():
                raise
            self._app.logger.error("Exception on %s [%s]", path, method, exc_info=exc)
            status, body = 500, _http_error_body(InternalServerError())
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        start_response(_status_line(status), headers + list((extra or {}).items()))
        return [data]

    def _propagates(self) -> bool:
        propagate = self._app.config["PROPAGATE_EXCEPTIONS"]
        return bool(self._app.testing or self._app.debug if propagate is None else propagate)


def _wsgi_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        return bytes(stream.read(length))
    # no length: a body only where the server says the stream ends (werkzeug does the same)
    return bytes(stream.read()) if environ.get("wsgi.input_terminated") else b""


def _status_line(status: int) -> str:
    # werkzeug's spelling, so a fast route's status line is the one Flask would send
    return f"{status} {HTTP_STATUS_CODES.get(status, 'unknown').upper()}"


class IdempotencyCache:
    """Remembers the response to each Idempotency-Key so a repeated call replays it.

    A key reused with a different method, path or body is refused, as Stripe and the IETF
    draft do, rather than silently doing something else.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 86_400.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_keys
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, str, Response]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def run(self, key: str, fingerprint: str, handler: Callable[[], Response]) -> Response:
        with self._lock_for(key):
            now = self._clock()
            with self._guard:
                hit = self._items.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                if hit[1] != fingerprint:
                    raise Conflict(f"Idempotency-Key {key!r} was used for a different request")
                replay = hit[2]
                return Response(
                    replay.get_data(),
                    status=replay.status_code,
                    headers={**dict(replay.headers), "Idempotent-Replayed": "true"},
                )
            response = handler()
            if response.status_code < 500:
                with self._guard:
                    self._items[key] = (now, fingerprint, response)
                    while len(self._items) > self._max:
                        old, _ = self._items.popitem(last=False)
                        self._locks.pop(old, None)
            return response


def admin_endpoint(token: str, cache: IdempotencyCache) -> Callable[[F], F]:
    """Decorator for /admin routes: bearer token always, Idempotency-Key replay on writes."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_bearer(token)
            if request.method in ("GET", "HEAD"):
                return view(*args, **kwargs)
            key = request.headers.get("Idempotency-Key")
            if not key:
                return view(*args, **kwargs)
            fingerprint = hashlib.sha256(
                request.method.encode() + request.path.encode() + request.get_data(cache=True)
            ).hexdigest()
            return cache.run(key, fingerprint, lambda: _as_response(view(*args, **kwargs)))

        return wrapper  # type: ignore[return-value]

    return decorate


def _as_response(value: Any) -> Response:
    return value if isinstance(value, Response) else json_response(value)


def check_bearer(token: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("missing bearer token in Authorization header")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("wrong bearer token")


def install_probes(
    app: Flask,
    registry: CollectorRegistry,
    ready: Callable[[], tuple[bool, str]] = lambda: (True, "ready"),
) -> None:
    """/metrics from the role's own registry, /healthz (alive), /readyz (can serve)."""

    @app.get("/metrics")
    def _metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def _healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def _readyz() -> Response:
        ok, why = ready()
        return json_response(
            {"status": "ready" if ok else "not_ready", "reason": why}, 200 if ok else 503
        )


# --- the calling side: a keep-alive HTTP/1.1 client for calls between the roles -------------
