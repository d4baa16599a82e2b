"""Forwarding of player requests: pick the regions to try, send, retry once elsewhere.

A retry on another region is safe because launches create nothing that money depends on and a
round is idempotent by its client-chosen id: a region that already played it replays the same
wallet keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from aggregator import sessions
from aggregator.errors import ApiError, BadRequest
from aggregator.frontdoor.metrics import FrontdoorMetrics
from aggregator.frontdoor.routing import Region, RegionTable
from aggregator.frontdoor.transport import Transport, TransportError, Upstream
from aggregator.httpapi import json_object

MAX_ATTEMPTS = 2  # the first region, then one other


class Route(StrEnum):
    LAUNCH = "launch"
    ROUND = "round"


PATHS = {"/player/launch": Route.LAUNCH, "/player/round": Route.ROUND}


def _json(status: int, body: dict[str, object]) -> Upstream:
    return Upstream(status=status, body=json.dumps(body).encode())


def _outcome(answer: Upstream) -> str:
    if answer.status < 400:
        return "ok"
    if answer.status < 500:
        return "rejected"
    return "failed"


def region_failed(answer: Upstream) -> bool:
    """A 5xx that says nothing about money is the region failing, not the round: try another.

    `launch_failed` is the region's own definite answer (no provider can serve), not a fault.
    """
    if answer.status not in (502, 503, 504):
        return False
    try:
        body = json.loads(answer.body)
    except (ValueError, RecursionError):  # not the region's JSON: the region failing
        return True
    if not isinstance(body, dict):
        return True
    return "money" not in body and body.get("error") != "launch_failed"


class Forwarder:
    def __init__(
        self,
        table: RegionTable,
        transport: Transport,
        metrics: FrontdoorMetrics,
        *,
        timeout_s: float = 10.0,
        unreachable: Callable[[str], bool] = lambda _region: False,
    ) -> None:
        self._table = table
        self._transport = transport
        self._metrics = metrics
        self._timeout = timeout_s
        self._unreachable = unreachable

    def handle(self, route: Route, raw: bytes) -> Upstream:
        home: str | None
        try:
            payload = json_object(raw)
            if route is Route.LAUNCH:
                home = None
                order = self._table.launch_order(str(payload.get("user", "")))
            else:
                home, user = _session_home(payload)
                order = self._table.round_order(home, user)
                if home not in self._table.ids():
                    home = None  # a forged or stale region name must not become a label value
        except ApiError as exc:
            return Upstream(status=exc.status, body=json.dumps(exc.body()).encode())
        if not order:
            self._metrics.requests.labels(region="none", route=route.value, outcome="no_region")
            return _json(
                503, {"error": "no_region_available", "message": "every region is drained"}
            )
        return self._try(route, raw, order[:MAX_ATTEMPTS], home)

    def _try(self, route: Route, raw: bytes, order: list[Region], home: str | None) -> Upstream:
        last: Upstream | None = None
        error: TransportError | None = None
        for region in order:
            if home is not None and region.id != home:
                self._metrics.failovers.labels(region=home, kind="region_failover").inc()
                home = None  # one failover event per request
            try:
                answer = self._send(region, route, raw)
            except TransportError as exc:
                outcome = "timeout" if exc.timeout else "error"
                self._metrics.requests.labels(
                    region=region.id, route=route.value, outcome=outcome
                ).inc()
                self._table.mark_suspect(region.id, str(exc))
                error, last = exc, None
                continue
            if region_failed(answer):
                self._metrics.requests.labels(
                    region=region.id, route=route.value, outcome="unavailable"
                ).inc()
                self._table.mark_suspect(region.id, f"{route.value} answered {answer.status}")
                last = answer
                continue
            self._metrics.requests.labels(
                region=region.id, route=route.value, outcome=_outcome(answer)
            ).inc()
            return answer
        if last is not None:
            return last
        timed_out = error is not None and error.timeout
        return _json(
            504 if timed_out else 502,
            {"error": "gateway_timeout" if timed_out else "bad_gateway", "message": str(error)},
        )

    def _send(self, region: Region, route: Route, raw: bytes) -> Upstream:
        if self._unreachable(region.id):
            raise TransportError(f"region {region.id!r} unreachable (region_down fault)")
        return self._transport.request(
            "POST", f"{region.url}/player/{route.value}", body=raw, timeout=self._timeout
        )


def _session_home(payload: dict[str, Any]) -> tuple[str, str]:
    token = payload.get("session")
    if not isinstance(token, str):
        raise BadRequest(f"round needs a session string, got {token!r}", code="invalid_session")
    claims = sessions.unverified_payload(token)
    return str(claims.get("region", "")), str(claims.get("user", ""))


class PlayerFastPath:
    """WSGI middleware: POST /player/launch and /player/round go straight to the forwarder;
    everything else (admin, probes, metrics) falls through to the Flask app."""

    def __init__(self, forwarder: Forwarder, fallback: Any) -> None:
        self._forwarder = forwarder
        self._fallback = fallback

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        route = PATHS.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self._fallback(environ, start_response)
        # the app's BodyLimit, outermost, has checked the length against the limit
        length = int(environ.get("CONTENT_LENGTH") or 0)
        answer = self._forwarder.handle(route, environ["wsgi.input"].read(length))
        start_response(
            f"{answer.status} {_phrase(answer.status)}",
            [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))],
        )
        return [answer.body]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
