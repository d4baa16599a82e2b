"""Per-provider circuit breakers.

Only system failures count (timeouts, 5xx): a provider that answers, even with a business
refusal, is healthy. After `failure_threshold` consecutive failures the breaker opens for
`open_s`; then it is half-open and lets exactly one trial call through: success closes it,
failure opens it again. A trial whose caller never reports back (the round stopped before the
provider call) is given up after `trial_timeout_s`, so a lost trial cannot wedge the breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum, IntEnum


class BreakerState(IntEnum):
    # the values are the exported gauge casino_circuit_breaker_state
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CallResult(Enum):
    SUCCESS = "success"
    FAILURE = "failure"  # timeout or 5xx
    BUSINESS = "business"  # the provider answered with a refusal: healthy


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    failure_threshold: int = 5
    open_s: float = 30.0
    trial_timeout_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    retry_in_s: float | None  # while open: seconds until the half-open trial


class CircuitBreaker:
    def __init__(
        self,
        *,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self._policy = policy or BreakerPolicy()
        self._clock = clock
        self._on_open = on_open
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_since: float | None = None

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current(self._clock())

    def _current(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN:
            assert self._opened_at is not None
            if now >= self._opened_at + self._policy.open_s:
                self._state = BreakerState.HALF_OPEN
                self._trial_since = None
        return self._state

    def allow(self) -> bool:
        """May a call go to the provider now? In half-open this takes the one trial."""
        with self._lock:
            now = self._clock()
            state = self._current(now)
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.OPEN:
                return False
            stale = (
                self._trial_since is not None
                and now - self._trial_since >= self._policy.trial_timeout_s
            )
            if self._trial_since is None or stale:
                self._trial_since = now
                return True
            return False

    def abandon(self) -> None:
        """The caller allowed in will not call after all: free the half-open trial."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._trial_since = None

    def record(self, result: CallResult) -> None:
        opened = False
        with self._lock:
            state = self._current(self._clock())
            if result is not CallResult.FAILURE:
                if state is not BreakerState.OPEN:
                    self._close()
            elif state is BreakerState.HALF_OPEN:
                opened = self._open()
            elif state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self._policy.failure_threshold:
                    opened = self._open()
            # a failure reported while open came from a call admitted before it opened
        if opened and self._on_open is not None:
            self._on_open()

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = None
        self._trial_since = None

    def _open(self) -> bool:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._trial_since = None
        return True

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            now = self._clock()
            state = self._current(now)
            retry_in = None
            if state is BreakerState.OPEN and self._opened_at is not None:
                retry_in = max(0.0, self._opened_at + self._policy.open_s - now)
            return BreakerSnapshot(
                state=state, consecutive_failures=self._failures, retry_in_s=retry_in
            )


class BreakerBoard:
    """One breaker per provider of the region; `on_open(provider)` hears every opening."""

    def __init__(
        self,
        providers: Iterable[str],
        *,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        self._on_open = on_open
        self._breakers = {
            pid: CircuitBreaker(policy=policy, clock=clock, on_open=self._listener(pid))
            for pid in providers
        }

    def _listener(self, provider: str) -> Callable[[], None] | None:
        on_open = self._on_open
        if on_open is None:
            return None
        return lambda: on_open(provider)

    def __getitem__(self, provider: str) -> CircuitBreaker:
        return self._breakers[provider]

    def states(self) -> dict[str, BreakerState]:
        return {pid: b.state for pid, b in self._breakers.items()}

    def snapshots(self) -> dict[str, BreakerSnapshot]:
        return {pid: b.snapshot() for pid, b in self._breakers.items()}
