"""Open-loop scheduling: a ticker emits one tick per 1/rate seconds whatever the latency, and a
pool of workers turns each tick into one round of an idle player.

Stopping is graceful: no new ticks, rounds in flight finish (their bounded retries included),
so that a stopped run leaves no round half-played. `abort` cuts retries short.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.loadgen.client import Target
from aggregator.loadgen.players import Driver, PlayConfig, Player, make_players
from aggregator.loadgen.report import Stats

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LoadConfig:
    rate: float = 50.0
    players: int = 100
    concurrency: int = 32
    duration_s: float = 0.0  # 0: until stopped
    run_id: str = "run"
    user_prefix: str = "p"
    play: PlayConfig = field(default_factory=PlayConfig)
    max_backlog: int = 0  # ticks waiting for a worker before new ones are dropped; 0: 4 x rate


class Runner:
    def __init__(
        self,
        target: Target,
        config: LoadConfig,
        *,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.rate <= 0 or config.players <= 0 or config.concurrency <= 0:
            raise ValueError(f"rate, players and concurrency must be positive: {config!r}")
        self.config = config
        self.stats = Stats()
        self._clock = clock
        self._stopping = threading.Event()
        self._aborted = threading.Event()
        self._done = threading.Event()
        self._players = make_players(config.players, rng, config.run_id, config.user_prefix)
        self._idle: queue.Queue[Player] = queue.Queue()
        self._ticks: queue.Queue[float | None] = queue.Queue()  # due times
        self._backlog = config.max_backlog or max(int(config.rate * 4), config.concurrency)
        self._target = target
        self.driver = Driver(
            target,
            self.stats,
            config.play,
            clock=clock,
            sleep=self._aborted.wait,
            aborted=self._aborted.is_set,
        )
        self._started_at: float | None = None
        self._stopped_at: float | None = None

    def join_players(self, *, patience_s: float = 30.0) -> int:
        """Fetch every player's token up front, so initial balances are known, waiting up to
        `patience_s` for a wallet that is still starting; returns how many joined (the others
        try again on their first tick)."""
        deadline = self._clock() + patience_s
        joined = 0
        for player in self._players:
            while not self.driver.join(player):
                if self._stopping.is_set() or self._clock() >= deadline:
                    break
                self._stopping.wait(0.2)
            else:
                joined += 1
            self._idle.put(player)
        return joined

    def run(self) -> None:
        """Play until stopped or the duration ends, then finish rounds in flight."""
        self._started_at = self._clock()
        workers = [
            threading.Thread(target=self._work, name=f"loadgen-{i}", daemon=True)
            for i in range(self.config.concurrency)
        ]
        for worker in workers:
            worker.start()
        try:
            self._tick_until_stopped()
        finally:
            self._stopping.set()
            for _ in workers:
                self._ticks.put(None)  # wakes each worker once; they exit when stopping
            for worker in workers:
                worker.join()
            self._stopped_at = self._clock()
            self._done.set()

    def _tick_until_stopped(self) -> None:
        assert self._started_at is not None
        interval = 1.0 / self.config.rate
        n = 0
        while not self._stopping.is_set():
            due = self._started_at + n * interval
            if self.config.duration_s and due - self._started_at >= self.config.duration_s:
                break
            delay = due - self._clock()
            if delay > 0 and self._stopping.wait(delay):
                break
            n += 1
            dropped = self._ticks.qsize() >= self._backlog
            self.stats.tick(dropped)
            if not dropped:
                self._ticks.put(due)

    def _work(self) -> None:
        while True:
            due = self._ticks.get()
            if self._stopping.is_set() or due is None:
                return
            player = self._idle.get()
            if self._stopping.is_set():
                self._idle.put(player)
                return
            # open loop: how late the round starts against its schedule (queueing included)
            self.stats.lag((self._clock() - due) * 1000.0)
            try:
                self.driver.step(player)
            except Exception:  # one bad answer must not kill a worker and its player
                log.exception("player %s: unexpected error", player.user)
            finally:
                self._idle.put(player)

    def close(self) -> None:
        """Release the target's connections (after `run`)."""
        close = getattr(self._target, "close", None)
        if close is not None:
            close()

    def stop(self) -> None:
        """Graceful: no new rounds; rounds in flight finish."""
        self._stopping.set()

    def abort(self) -> None:
        """Hard: also cut short the retries of rounds in flight (they count as unknown)."""
        self._stopping.set()
        self._aborted.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def elapsed_s(self) -> float:
        if self._started_at is None:
            return 0.0
        end = self._stopped_at if self._stopped_at is not None else self._clock()
        return end - self._started_at

    def report(self) -> dict[str, Any]:
        report = self.stats.report(elapsed_s=self.elapsed_s(), target_rate=self.config.rate)
        report["run_id"] = self.config.run_id
        report["finished"] = self._done.is_set()
        return report
