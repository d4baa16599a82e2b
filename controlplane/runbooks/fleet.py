"""The aggregator's live state for the blast-radius guards, read from its admin APIs.

Fails safe: a region that does not answer contributes no providers and is not healthy, and a
front door that does not answer leaves no region healthy, so a drain is refused rather than
risked on a guess.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from controlplane.runbooks.act import AggregatorTargets
from controlplane.runbooks.guards import Fleet

log = logging.getLogger(__name__)


class FleetReader:
    def __init__(
        self,
        targets: AggregatorTargets,
        session: requests.Session | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self._targets = targets
        self._session = session or requests.Session()
        self._timeout = timeout_s

    def __call__(self) -> Fleet:
        providers: dict[str, frozenset[str]] = {}
        isolated: dict[str, frozenset[str]] = {}
        for region, url in self._targets.regions.items():
            state = self._get(url)
            rows = state.get("providers", []) if state else []
            providers[region] = frozenset(str(p["id"]) for p in rows)
            isolated[region] = frozenset(str(p["id"]) for p in rows if p.get("isolated"))
        front = self._get(self._targets.frontdoor_url) if self._targets.frontdoor_url else None
        healthy = frozenset(
            str(r["id"])
            for r in (front or {}).get("regions", [])
            if r.get("up") and not r.get("drained")
        )
        return Fleet(providers=providers, isolated=isolated, healthy_regions=healthy)

    def _get(self, base: str) -> dict[str, Any] | None:
        try:
            resp = self._session.get(
                base.rstrip("/") + "/admin/state",
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._targets.token}"},
            )
            resp.raise_for_status()
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("fleet state from %s unavailable: %s", base, exc)
            return None
        return body if isinstance(body, dict) else None
