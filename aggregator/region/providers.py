"""Simulated game providers, and the gateway every provider call goes through.

A call draws its latency from the provider's log-normal (median and sigma from the catalogue)
plus any `provider_latency` fault, and its 5xx from the base error rate combined with any
`provider_errors` fault; a drawn latency above the provider's timeout is a timeout, and
`provider_down` makes every call time out. Nothing sleeps: the drawn latency is reported, and
metrics, breakers and the player's answer all use the same drawn call.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from aggregator.faults import FaultBook, FaultKind
from aggregator.region.breakers import BreakerBoard, CallResult
from aggregator.region.catalogue import Provider
from aggregator.region.metrics import RegionMetrics


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"  # the provider answered 5xx
    TIMEOUT = "timeout"
    REJECTED = "rejected"  # not sent: breaker open


@dataclass(frozen=True, kw_only=True)
class ProviderCall:
    provider: str
    operation: str
    outcome: Outcome
    latency_s: float

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class ProviderSimulator:
    """Seeded per provider: the same seed gives the same sequence of draws per provider."""

    def __init__(
        self, providers: Mapping[str, Provider], faults: FaultBook, *, seed: int, region: str
    ) -> None:
        self._providers = providers
        self._faults = faults
        self._rngs = {pid: random.Random(f"{seed}:{region}:{pid}") for pid in providers}
        self._locks = {pid: threading.Lock() for pid in providers}

    def call(self, provider_id: str, operation: str) -> ProviderCall:
        spec = self._providers[provider_id]
        timeout = spec.timeout_s
        if self._faults.find(FaultKind.PROVIDER_DOWN, provider_id) is not None:
            return ProviderCall(
                provider=provider_id,
                operation=operation,
                outcome=Outcome.TIMEOUT,
                latency_s=timeout,
            )
        extra = self._faults.find(FaultKind.PROVIDER_LATENCY, provider_id)
        errors = self._faults.find(FaultKind.PROVIDER_ERRORS, provider_id)
        p_error = spec.error_rate
        if errors is not None:
            p_error = 1.0 - (1.0 - p_error) * (1.0 - errors.magnitude)
        with self._locks[provider_id]:
            rng = self._rngs[provider_id]
            latency = rng.lognormvariate(math.log(spec.latency_median_s), spec.latency_sigma)
            failed = rng.random() < p_error
        if extra is not None:
            latency += extra.magnitude
        if latency > timeout:
            outcome, latency = Outcome.TIMEOUT, timeout
        else:
            outcome = Outcome.ERROR if failed else Outcome.OK
        return ProviderCall(
            provider=provider_id, operation=operation, outcome=outcome, latency_s=latency
        )


class ProviderGateway:
    """Breaker admission, the simulated call, breaker accounting and metrics, in one place.

    `admit` and `call` are separate because a round admits before the wallet bet and calls
    after it; a round that stops in between must `abandon` so a half-open trial is not lost.
    """

    def __init__(
        self, simulator: ProviderSimulator, breakers: BreakerBoard, metrics: RegionMetrics
    ) -> None:
        self._sim = simulator
        self._breakers = breakers
        self._metrics = metrics

    def admit(self, provider: str, operation: str) -> bool:
        if self._breakers[provider].allow():
            return True
        self._metrics.provider_call(provider, operation, Outcome.REJECTED.value, None)
        return False

    def abandon(self, provider: str) -> None:
        self._breakers[provider].abandon()

    def call(self, provider: str, operation: str) -> ProviderCall:
        """Make an admitted call and account for it."""
        result = self._sim.call(provider, operation)
        self._breakers[provider].record(CallResult.SUCCESS if result.ok else CallResult.FAILURE)
        self._metrics.provider_call(provider, operation, result.outcome.value, result.latency_s)
        return result

    def admit_and_call(self, provider: str, operation: str) -> ProviderCall:
        if not self.admit(provider, operation):
            return ProviderCall(
                provider=provider, operation=operation, outcome=Outcome.REJECTED, latency_s=0.0
            )
        return self.call(provider, operation)
