"""Fault injection shared by the roles: what can be injected, for how long, on what.

Each role accepts the kinds that make sense for it and validates targets against its own
catalogue; a fault clears itself when its duration runs out.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from aggregator.errors import NotFound, Unprocessable


class FaultKind(StrEnum):
    PROVIDER_LATENCY = "provider_latency"  # magnitude: added seconds of latency
    PROVIDER_ERRORS = "provider_errors"  # magnitude: probability of a 5xx, 0..1
    PROVIDER_DOWN = "provider_down"  # magnitude ignored: every call times out
    WALLET_TIMEOUT = "wallet_timeout"  # magnitude: probability (region) or delay s (wallet)
    WALLET_ERRORS = "wallet_errors"  # magnitude: probability of a 5xx, 0..1
    REGION_DOWN = "region_down"  # magnitude ignored: the region stops serving players


MAX_DURATION_S = 86_400.0


@dataclass(frozen=True, kw_only=True)
class Fault:
    id: str
    kind: FaultKind
    target: str
    magnitude: float
    duration_s: float
    started_at: float
    expires_at: float

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


def parse_fault_request(
    body: dict[str, Any], allowed: Iterable[FaultKind]
) -> tuple[FaultKind, str, float, float]:
    """Validate a POST /admin/faults body: (kind, target, magnitude, duration_s)."""
    allowed = tuple(allowed)
    raw_kind = body.get("kind")
    try:
        kind = FaultKind(str(raw_kind))
    except ValueError:
        raise NotFound(
            f"unknown fault kind {raw_kind!r}; this role accepts {[k.value for k in allowed]}",
            code="unknown_fault_kind",
        ) from None
    if kind not in allowed:
        raise Unprocessable(
            f"fault kind {kind.value!r} does not apply here; "
            f"accepted: {[k.value for k in allowed]}",
            code="unsupported_fault_kind",
        )
    target = body.get("target")
    if not isinstance(target, str) or not target:
        raise Unprocessable(f"fault target must be a non-empty string, got {target!r}")
    magnitude = _number(body, "magnitude", default=1.0, low=0.0, high=3600.0)
    duration = _number(body, "duration_s", default=300.0, low=0.001, high=MAX_DURATION_S)
    if kind in (FaultKind.PROVIDER_ERRORS, FaultKind.WALLET_ERRORS) and magnitude > 1:
        raise Unprocessable(f"{kind.value} magnitude is a probability in [0, 1], got {magnitude!r}")
    return kind, target, magnitude, duration


def _number(body: dict[str, Any], field: str, *, default: float, low: float, high: float) -> float:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Unprocessable(f"{field} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class FaultBook:
    """The active faults of one process, expiring by the injected clock."""

    def __init__(self, clock: Callable[[], float] = time.time, id_prefix: str = "f") -> None:
        self._clock = clock
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)
        self._prefix = id_prefix
        self._lock = threading.Lock()

    def add(self, kind: FaultKind, target: str, magnitude: float, duration_s: float) -> Fault:
        now = self._clock()
        with self._lock:
            fault = Fault(
                id=f"{self._prefix}{next(self._ids)}",
                kind=kind,
                target=target,
                magnitude=magnitude,
                duration_s=duration_s,
                started_at=now,
                expires_at=now + duration_s,
            )
            self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> Fault:
        with self._lock:
            fault = self._faults.pop(fault_id, None)
        if fault is None:
            raise NotFound(f"no active fault {fault_id!r}", code="unknown_fault")
        return fault

    def active(self) -> list[Fault]:
        now = self._clock()
        with self._lock:
            for fid in [f.id for f in self._faults.values() if f.expires_at <= now]:
                del self._faults[fid]
            return list(self._faults.values())

    def find(self, kind: FaultKind, target: str) -> Fault | None:
        """The strongest active fault of `kind` on `target` ("*" targets everything)."""
        hits = [f for f in self.active() if f.kind is kind and f.target in (target, "*")]
        return max(hits, key=lambda f: f.magnitude, default=None)
