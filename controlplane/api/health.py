"""What every control plane answers outside the APIs: /metrics (with its own HTTP request
metrics), /healthz, /readyz, and errors as `{"error", "message"}` JSON (never a traceback)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from werkzeug.exceptions import HTTPException

log = logging.getLogger("controlplane.app")


def install_metrics(app: Flask, registry: CollectorRegistry, backend: str) -> None:
    requests_total = Counter(
        "controlplane_http_requests_total",
        "HTTP requests served by the control plane, by route and status code.",
        ["handler", "code"],
        registry=registry,
    )
    duration = Histogram(
        "controlplane_http_request_duration_seconds",
        "Time to answer an HTTP request, by route.",
        ["handler"],
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        registry=registry,
    )
    Gauge(
        "controlplane_query_backend_info",
        "1 for the backend that answers PromQL: embedded or remote.",
        ["backend"],
        registry=registry,
    ).labels(backend).set(1)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        rule = request.url_rule
        handler = rule.rule if rule is not None else "unmatched"
        requests_total.labels(handler, str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            duration.labels(handler).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def _metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def install_probes(app: Flask, ready: Callable[[], tuple[bool, str]]) -> None:
    @app.get("/healthz")
    def _healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    def _readyz() -> Response:
        ok, why = ready()
        return _json({"status": "ready" if ok else "not_ready", "reason": why}, 200 if ok else 503)


def install_errors(app: Flask) -> None:
    """Everything outside the Prometheus API answers errors as `{"error", "message"}`."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return _json({"error": code, "message": exc.description}, exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        return _json({"error": "internal", "message": f"{type(exc).__name__}: {exc}"}, 500)
