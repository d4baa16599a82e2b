"""Drives a Dispatcher in production: a thread that ticks whenever something is due."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.silences import utc_now

log = logging.getLogger(__name__)


class DispatcherRunner:
    """Ticks the dispatcher when its next flush or retry is due, when new alerts arrive, and
    at least every `max_sleep_s` (so a clock that jumps is noticed)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_sleep_s: float = 1.0,
    ) -> None:
        self._dispatcher = dispatcher
        self._clock = clock
        self._max_sleep = max_sleep_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notify-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._dispatcher.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        wakeup = self._dispatcher.wakeup
        while not self._stop.is_set():
            wakeup.clear()
            try:
                self._dispatcher.tick(self._clock())
            except Exception:  # keep notifying: one bad tick must not end the thread
                log.exception("notification dispatch tick failed")
            wakeup.wait(self._sleep_for())

    def _sleep_for(self) -> float:
        due = self._dispatcher.next_due()
        if due is None:
            return self._max_sleep
        return max(0.0, min(self._max_sleep, (due - self._clock()).total_seconds()))
