"""Drives notifications in production: a thread that ticks the dispatcher whenever something is
due, and sender threads that deliver what it decided (sender.py).

The two never wait on each other: the dispatcher only writes the outbox, and each sender
thread takes one row at a time, so a receiver that hangs until its timeout holds one thread,
not the others nor the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from controlplane.notify.dispatch import Dispatcher
from controlplane.notify.sender import Sender
from controlplane.notify.silences import utc_now

log = logging.getLogger(__name__)


class SenderRunner:
    """`workers` threads that deliver due outbox rows; each sleeps until the next row is due,
    new rows are recorded (in this process), or `max_sleep_s` (rows from another replica)."""

    def __init__(
        self,
        sender: Sender,
        *,
        clock: Callable[[], datetime] = utc_now,
        workers: int = 4,
        max_sleep_s: float = 1.0,
    ) -> None:
        self.sender = sender
        self._clock = clock
        self._workers = workers
        self._max_sleep = max_sleep_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for i in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"notify-sender-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking rows; a delivery in flight finishes (or is taken over after its lease)."""
        self._stop.set()
        self.sender.outbox.wakeup.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []

    def _run(self) -> None:
        wakeup = self.sender.outbox.wakeup
        while not self._stop.is_set():
            wakeup.clear()
            try:
                self.sender.upkeep()
                if self.sender.run_once(limit=1):
                    continue
                pause = self._sleep_for()
            except Exception:  # keep sending: a database blip must not end the thread
                log.exception("notification sender failed")
                pause = self._max_sleep
            wakeup.wait(pause)

    def _sleep_for(self) -> float:
        due = self.sender.next_due()
        if due is None:
            return self._max_sleep
        return max(0.0, min(self._max_sleep, (due - self._clock()).total_seconds()))


class DispatcherRunner:
    """Ticks the dispatcher when its next flush is due, when new alerts arrive, and at least
    every `max_sleep_s` (so a clock that jumps is noticed); starts and stops `senders` with it."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        senders: SenderRunner | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_sleep_s: float = 1.0,
    ) -> None:
        self._dispatcher = dispatcher
        self.senders = senders
        self._clock = clock
        self._max_sleep = max_sleep_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.senders is not None:
            self.senders.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notify-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._dispatcher.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        # after the dispatcher: its last decisions are in the outbox, sent now or at next start
        if self.senders is not None:
            self.senders.stop(timeout_s)

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
