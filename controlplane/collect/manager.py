"""Run every scrape target on its own interval, plus the store's checkpoint and retention.

    manager = ScrapeManager(store, targets, checkpointer=checkpointer)   # all optional but store
    manager.start()        # first scrape of each target right away, then every interval_s
    manager.statuses()     # [(ScrapeTarget, ScrapeStatus)] for /api/v1/targets
    manager.metadata()     # [(ScrapeTarget, {family: MetricMetadata})] for /api/v1/metadata
    manager.stop()         # the owner then calls checkpointer.close() for a final snapshot

Jobs run on an APScheduler BackgroundScheduler (passed in, or created and owned here), one job
per target with max_instances=1, so a slow target never overlaps itself nor delays another;
each scrape has its target's own timeout. The checkpoint job runs at least once per shortest
scrape interval, so a crash loses at most one interval of samples.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import urllib3
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from controlplane.collect.exposition import MetricMetadata
from controlplane.collect.scrape import Scraper, ScrapeStatus, ScrapeTarget
from controlplane.errors import ScrapeError
from controlplane.tsdb.checkpoint import Checkpointer
from controlplane.tsdb.store import Store

log = logging.getLogger(__name__)

_DEFAULT_INTERVAL_S = 15.0


class ScrapeManager:
    """`scheduler`: an APScheduler scheduler to add jobs to (default: a BackgroundScheduler
    owned and shut down by this manager); `http`: a urllib3.PoolManager shared by all scrapers
    (default: one owned here); `clock`: wall-clock seconds (sample timestamps, retention);
    `checkpointer`: checkpointed every `checkpoint_interval_s` (default: the shortest target
    interval); retention is applied every `retention_interval_s`."""

    def __init__(
        self,
        store: Store,
        targets: Iterable[ScrapeTarget] = (),
        *,
        scheduler: BackgroundScheduler | None = None,
        http: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        checkpointer: Checkpointer | None = None,
        checkpoint_interval_s: float | None = None,
        retention_interval_s: float = 60.0,
    ) -> None:
        self.store = store
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or BackgroundScheduler(timezone=UTC)
        self._own_http = http is None
        self._http = http or urllib3.PoolManager(num_pools=64, maxsize=4)
        self._clock = clock
        self._monotonic = monotonic
        self._checkpointer = checkpointer
        self._checkpoint_interval_s = checkpoint_interval_s
        self._retention_interval_s = retention_interval_s
        self._lock = threading.Lock()
        self._scrapers: dict[tuple[str, str], Scraper] = {}
        self._started = False
        for target in targets:
            self.add_target(target)

    def _job_id(self, key: tuple[str, str]) -> str:
        return f"scrape:{key[0]}:{key[1]}"

    def add_target(self, target: ScrapeTarget) -> None:
        with self._lock:
            if target.key in self._scrapers:
                raise ScrapeError(f"target {target.key!r} is already scraped")
            self._scrapers[target.key] = Scraper(
                target, self.store, http=self._http, clock=self._clock, monotonic=self._monotonic
            )
            if self._started:
                self._schedule(target)

    def remove_target(self, key: tuple[str, str]) -> None:
        """Stop scraping a target and end its series with staleness markers."""
        with self._lock:
            scraper = self._scrapers.pop(key, None)
            if scraper is None:
                raise ScrapeError(f"no target {key!r}")
            if self._started and self._scheduler.get_job(self._job_id(key)):
                self._scheduler.remove_job(self._job_id(key))
        scraper.mark_all_stale()

    def targets(self) -> list[ScrapeTarget]:
        with self._lock:
            return [s.target for s in self._scrapers.values()]

    def statuses(self) -> list[tuple[ScrapeTarget, ScrapeStatus]]:
        with self._lock:
            return [(s.target, s.status) for s in self._scrapers.values()]

    def metadata(self) -> list[tuple[ScrapeTarget, Mapping[str, MetricMetadata]]]:
        """Each target with what its last good scrape said of its metric families."""
        with self._lock:
            return [(s.target, s.metadata) for s in self._scrapers.values()]

    def scrape_now(self) -> list[ScrapeStatus]:
        """Scrape every target once, in this thread (tests, `controlplane query` one-shots)."""
        with self._lock:
            scrapers = list(self._scrapers.values())
        return [s.scrape() for s in scrapers]

    def _schedule(self, target: ScrapeTarget) -> None:
        self._scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=target.interval_s, timezone=UTC),
            args=[target.key],
            id=self._job_id(target.key),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(target.interval_s)),
            next_run_time=datetime.now(UTC),
        )

    def _run(self, key: tuple[str, str]) -> None:
        scraper = self._scrapers.get(key)
        if scraper is None:
            return
        try:
            scraper.scrape()
        except Exception:  # a bug must not kill the job: log it, the next scrape runs anyway
            log.exception("scrape of %r crashed", key)

    def _maintain(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            log.exception("store %s failed", what)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for scraper in self._scrapers.values():
                self._schedule(scraper.target)
            intervals = [s.target.interval_s for s in self._scrapers.values()]
            every = self._checkpoint_interval_s or min(intervals, default=_DEFAULT_INTERVAL_S)
            if self._checkpointer is not None:
                checkpointer = self._checkpointer
                self._scheduler.add_job(
                    self._maintain,
                    IntervalTrigger(seconds=every, timezone=UTC),
                    args=["checkpoint", checkpointer.checkpoint],
                    id="store:checkpoint",
                    max_instances=1,
                    coalesce=True,
                )
            self._scheduler.add_job(
                self._maintain,
                IntervalTrigger(seconds=self._retention_interval_s, timezone=UTC),
                args=["retention", self._apply_retention],
                id="store:retention",
                max_instances=1,
                coalesce=True,
            )
        if self._own_scheduler:
            self._scheduler.start()

    def _apply_retention(self) -> None:
        self.store.apply_retention(int(self._clock() * 1000))

    def stop(self) -> None:
        """Stop scraping (waits for running scrapes when the scheduler is ours)."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            if self._own_scheduler:
                self._scheduler.shutdown(wait=True)
            else:
                for key in self._scrapers:
                    if self._scheduler.get_job(self._job_id(key)):
                        self._scheduler.remove_job(self._job_id(key))
                for job_id in ("store:checkpoint", "store:retention"):
                    if self._scheduler.get_job(job_id):
                        self._scheduler.remove_job(job_id)
        if self._own_http:
            self._http.clear()
