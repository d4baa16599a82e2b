"""The region's admin API (docs/design.md): bearer token on every route, Idempotency-Key
replay on every write, JSON errors that name the unknown provider, region or fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from aggregator.errors import BadRequest, NotFound, Unprocessable
from aggregator.faults import FaultKind, parse_fault_request
from aggregator.httpapi import IdempotencyCache, admin_endpoint, json_body, json_response
from aggregator.region.runtime import FAULT_KINDS, Region

PROVIDER_FAULTS = frozenset(
    {FaultKind.PROVIDER_LATENCY, FaultKind.PROVIDER_ERRORS, FaultKind.PROVIDER_DOWN}
)
MAX_REPLAY = 100_000


class AdminApi:
    def __init__(self, region: Region, cache: IdempotencyCache) -> None:
        self._region = region
        self._cache = cache

    def install(self, app: Flask) -> None:
        guard = admin_endpoint(self._region.config.admin_token, self._cache)
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("/admin/state", "GET", self.state),
            ("/admin/providers/<provider>/isolate", "POST", self.isolate),
            ("/admin/providers/<provider>/restore", "POST", self.restore),
            ("/admin/wallet/queue", "GET", self.queue),
            ("/admin/wallet/queue/replay", "POST", self.replay),
            ("/admin/faults", "GET", self.faults),
            ("/admin/faults", "POST", self.add_fault),
            ("/admin/faults/<fault_id>", "DELETE", self.remove_fault),
        ]
        for path, method, view in routes:
            endpoint = f"admin_{view.__name__}"
            app.add_url_rule(path, endpoint, guard(view), methods=[method])

    def state(self) -> Response:
        region = self._region
        depth, oldest = region.queue.stats()
        breakers = region.breakers.snapshots()
        sessions = region.sessions.counts()
        providers = []
        for pid, spec in region.catalogue.providers.items():
            st, br = region.state.get(pid), breakers[pid]
            providers.append(
                {
                    "id": pid,
                    "name": spec.name,
                    "isolated": st.isolated,
                    "reason": st.reason,
                    "canary_percent": st.canary_percent,
                    "breaker": br.state.name.lower(),
                    "breaker_state": int(br.state),
                    "consecutive_failures": br.consecutive_failures,
                    "breaker_retry_in_s": br.retry_in_s,
                    "categories": sorted(spec.categories),
                    "games": len(spec.games),
                    "active_sessions": sessions.get(pid, 0),
                }
            )
        rid = region.config.region
        return json_response(
            {
                "region": rid,
                "providers": providers,
                "breakers": {pid: b.state.name.lower() for pid, b in breakers.items()},
                "regions": [{"id": rid, "up": not region.is_down()}],
                "queue": {"depth": depth, "oldest_age_seconds": oldest or 0.0},
                "faults": [f.as_json() for f in region.faults.active()],
            }
        )

    def _provider(self, provider: str) -> str:
        if provider not in self._region.catalogue.providers:
            raise NotFound(
                f"unknown provider {provider!r} in region {self._region.config.region!r}",
                code="unknown_provider",
                provider=provider,
            )
        return provider

    def isolate(self, provider: str) -> Response:
        pid = self._provider(provider)
        reason = json_body().get("reason", "")
        if not isinstance(reason, str):
            raise Unprocessable(f"reason must be a string, got {reason!r}")
        st, changed = self._region.state.isolate(pid, reason)
        return json_response(self._provider_json(st.provider, changed))

    def restore(self, provider: str) -> Response:
        pid = self._provider(provider)
        canary = json_body().get("canary_percent", 100)
        number = isinstance(canary, int | float) and not isinstance(canary, bool)
        if not number or not math.isfinite(canary) or not 0 <= canary <= 100:
            raise Unprocessable(f"canary_percent must be a number in [0, 100], got {canary!r}")
        st, changed = self._region.state.restore(pid, float(canary))
        return json_response(self._provider_json(st.provider, changed))

    def _provider_json(self, pid: str, changed: bool) -> dict[str, Any]:
        st = self._region.state.get(pid)
        return {
            "region": self._region.config.region,
            "provider": pid,
            "isolated": st.isolated,
            "reason": st.reason,
            "canary_percent": st.canary_percent,
            "changed": changed,
        }

    def queue(self) -> Response:
        status = request.args.get("status", "pending")
        if status not in ("pending", "settled"):
            raise BadRequest(f"status must be pending or settled, got {status!r}")
        limit = _int_arg("limit", 100, high=1000)
        depth, oldest = self._region.queue.stats()
        return json_response(
            {
                "region": self._region.config.region,
                "depth": depth,
                "oldest_age_seconds": oldest or 0.0,
                "items": self._region.queue.items(status=status, limit=limit),
            }
        )

    def replay(self) -> Response:
        max_items = json_body().get("max_items", 1000)
        if isinstance(max_items, bool) or not isinstance(max_items, int):
            raise Unprocessable(f"max_items must be an integer, got {max_items!r}")
        if not 1 <= max_items <= MAX_REPLAY:
            raise Unprocessable(f"max_items must be in [1, {MAX_REPLAY}], got {max_items!r}")
        report = self._region.queue.replay(max_items)
        return json_response({"region": self._region.config.region, **report.as_json()})

    def faults(self) -> Response:
        return json_response(
            {
                "region": self._region.config.region,
                "faults": [f.as_json() for f in self._region.faults.active()],
            }
        )

    def add_fault(self) -> Response:
        kind, target, magnitude, duration = parse_fault_request(json_body(), FAULT_KINDS)
        rid = self._region.config.region
        if kind in PROVIDER_FAULTS:
            if target != "*":
                self._provider(target)
        elif target not in (rid, "*"):
            raise NotFound(
                f"unknown region {target!r}: this is region {rid!r}",
                code="unknown_region",
                region=target,
            )
        fault = self._region.faults.add(kind, target, magnitude, duration)
        return json_response(fault.as_json(), 201)

    def remove_fault(self, fault_id: str) -> Response:
        fault = self._region.faults.remove(fault_id)
        return json_response({**fault.as_json(), "removed": True})


def _int_arg(name: str, default: int, *, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, got {raw!r}") from None
    if not 1 <= value <= high:
        raise BadRequest(f"query parameter {name} must be in [1, {high}], got {value!r}")
    return value
