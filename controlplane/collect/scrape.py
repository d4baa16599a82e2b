"""Scrape targets: fetch /metrics, parse, label, append to the store; as Prometheus does.

    store = Store()
    scraper = Scraper(ScrapeTarget(job="aggregator", url="http://127.0.0.1:8101/metrics"),
                      store, http=urllib3.PoolManager(), clock=time.time)
    scraper.scrape()                       # one scrape; never raises for a target's failure

Per scrape, as Prometheus: samples get the target labels (`job`, `instance`, extra labels;
with honor_labels false an exposed label that conflicts is kept as `exported_<name>`), the
scrape timestamp is the scrape's start (a sample's own timestamp is honoured), and the report
series `up`, `scrape_duration_seconds`, `scrape_samples_scraped`, `scrape_series_added` are
written with the target labels. Staleness: a series exposed by the previous scrape and missing
from this one, or every series of the previous scrape when this one fails, gets a STALE_NAN
sample at the scrape time (series with explicit timestamps are exempt, as in Prometheus).
`Scraper.metadata` is what the last good body's `# TYPE` / `# HELP` / `# UNIT` lines said
(/api/v1/metadata); a failed scrape keeps the previous one, as Prometheus's scrape cache does.

A failed scrape (connection refused, timeout, non-200, not exposition text, body cut short)
records up=0, logs one line with the reason and appends nothing else from that body.

ScrapeManager (scrapemanager.py) runs scrapers on an APScheduler scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import numpy as np
import urllib3

from controlplane.collect.exposition import ExpositionParser, MetricMetadata
from controlplane.errors import ScrapeError
from controlplane.model.series import METRIC_NAME, STALE_NAN, Labels, labels_from
from controlplane.tsdb.store import Store

log = logging.getLogger(__name__)

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
_READ_CHUNK = 1 << 16
_NO_REF = -1


@dataclass(frozen=True, kw_only=True)
class ScrapeTarget:
    """One endpoint to scrape. `instance` defaults to the URL's host:port, as Prometheus's
    `__address__`; `labels` are extra target labels added to every series."""

    job: str
    url: str
    interval_s: float = 15.0
    timeout_s: float = 10.0
    labels: Mapping[str, str] = field(default_factory=dict)
    instance: str = ""
    honor_labels: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ScrapeError(f"scrape URL must be http(s)://host[:port]/path, got {self.url!r}")
        if not 0 < self.timeout_s <= self.interval_s:
            raise ScrapeError(
                f"target {self.url!r}: need 0 < timeout_s <= interval_s, "
                f"got {self.timeout_s!r} and {self.interval_s!r}"
            )
        if not self.instance:
            object.__setattr__(self, "instance", parts.netloc)

    @property
    def key(self) -> tuple[str, str]:
        return (self.job, self.url)

    def target_labels(self) -> Labels:
        return labels_from({**self.labels, "job": self.job, "instance": self.instance})


class Health(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, kw_only=True)
class ScrapeStatus:
    """The last scrape of a target, as /api/v1/targets shows it."""

    health: Health = Health.UNKNOWN
    last_error: str = ""
    last_scrape_s: float | None = None  # wall clock (UTC epoch seconds) at the start
    last_duration_s: float = 0.0
    samples: int = 0
    series_added: int = 0


def apply_target_labels(exposed: Labels, target: Labels, *, honor_labels: bool) -> Labels:
    """Prometheus's label merge: with honor_labels false, target labels win and a conflicting
    exposed label moves to `exported_<name>` (prefixed again until free); with honor_labels
    true, exposed labels win."""
    merged = dict(exposed)
    if honor_labels:
        for name, value in target:
            merged.setdefault(name, value)
        return labels_from(merged)
    conflicts = [(name, merged[name]) for name, _ in target if merged.get(name)]
    merged.update(target)
    for name, value in sorted(conflicts, key=lambda c: len(c[0])):
        new = "exported_" + name
        while merged.get(new):
            new = "exported_" + new
        merged[new] = value
    return labels_from(merged)


class Scraper:
    """Scrapes one target into `store`. `http`: a urllib3.PoolManager (shared, thread-safe);
    `clock`: wall-clock seconds for sample timestamps; `monotonic`: for durations/deadlines.
    Not re-entrant: run one scrape of a target at a time (the manager does)."""

    def __init__(
        self,
        target: ScrapeTarget,
        store: Store,
        *,
        http: urllib3.PoolManager,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.store = store
        self._http = http
        self._clock = clock
        self._monotonic = monotonic
        self._target_labels = target.target_labels()
        self._parser: ExpositionParser[int] = ExpositionParser(self._resolve)
        self._generation = store.generation
        self._added = 0
        self._previous = np.empty(0, np.int64)  # refs exposed by the last successful scrape
        self._report_refs: dict[str, int] = {}
        self.status = ScrapeStatus()
        # replaced whole by each good scrape, so readers in other threads see one body's view
        self.metadata: Mapping[str, MetricMetadata] = {}

    def _resolve(self, exposed: Labels) -> int:
        """The store ref of an exposed label set; the parser caches it by the line's text."""
        labels = apply_target_labels(
            exposed, self._target_labels, honor_labels=self.target.honor_labels
        )
        ref, created = self.store.series_ref(labels)
        self._added += created
        return ref

    def _forget_refs(self) -> None:
        self._parser.clear_cache()
        self._report_refs.clear()
        self._generation = self.store.generation

    def scrape(self) -> ScrapeStatus:
        """Scrape once; a failure is recorded (up=0) and logged, never raised."""
        started_s, started = self._clock(), self._monotonic()
        t_ms = int(started_s * 1000)
        try:
            body = self.fetch(deadline=started + self.target.timeout_s)
            samples, added = self.ingest(body, t_ms)
        except ScrapeError as exc:
            log.warning(
                "scrape failed: job=%s instance=%s: %s", self.target.job, self.target.instance, exc
            )
            self._mark_stale(self._previous, t_ms)
            self._previous = np.empty(0, np.int64)
            health, error, samples, added = Health.DOWN, str(exc), 0, 0
        else:
            health, error = Health.UP, ""
        duration = self._monotonic() - started
        self._report(t_ms, float(health is Health.UP), duration, samples, added)
        self.status = ScrapeStatus(
            health=health,
            last_error=error,
            last_scrape_s=started_s,
            last_duration_s=duration,
            samples=samples,
            series_added=added,
        )
        return self.status

    def fetch(self, *, deadline: float) -> str:
        """GET the target's body, all of it by `deadline` (monotonic), as text."""
        budget = max(deadline - self._monotonic(), 0.001)
        try:
            resp = self._http.request(
                "GET",
                self.target.url,
                headers={"Accept": ACCEPT, "User-Agent": "casino-controlplane"},
                timeout=urllib3.Timeout(connect=budget, read=budget),
                retries=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ScrapeError(f"GET {self.target.url!r}: {_reason(exc)}") from None
        try:
            if resp.status != 200:
                raise ScrapeError(f"GET {self.target.url!r}: HTTP status {resp.status!r}")
            ctype = resp.headers.get("Content-Type", "")
            if ctype.startswith("text/html"):
                raise ScrapeError(f"GET {self.target.url!r}: unexpected Content-Type {ctype!r}")
            chunks = []
            # read1: whatever has arrived (read() would wait for a whole chunk), so a body
            # trickling in slowly is caught by the deadline check
            while chunk := resp.read1(_READ_CHUNK):
                chunks.append(chunk)
                if self._monotonic() > deadline:
                    raise ScrapeError(
                        f"GET {self.target.url!r}: body not complete within "
                        f"{self.target.timeout_s!r}s"
                    )
            data = b"".join(chunks)
        except urllib3.exceptions.HTTPError as exc:
            raise ScrapeError(f"GET {self.target.url!r}: {_reason(exc)}") from None
        finally:
            resp.release_conn()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScrapeError(f"GET {self.target.url!r}: body is not UTF-8: {exc}") from None

    def ingest(self, body: str, t_ms: int) -> tuple[int, int]:
        """Parse a body and append it at t_ms (plus staleness markers); (samples, series added).
        Raises ScrapeError, appending nothing, if the body is not valid exposition text."""
        if self.store.generation != self._generation:
            self._forget_refs()
        self._added = 0
        parsed = self._parser.parse(body)
        refs = np.fromiter(parsed.series, dtype=np.int64, count=len(parsed.series))
        values = np.array(parsed.values, dtype=np.float64)
        stamps = np.full(len(refs), t_ms, np.int64)
        tracked = np.ones(len(refs), np.bool_)
        if parsed.timestamps is not None:
            explicit = np.array([ts is not None for ts in parsed.timestamps])
            stamps[explicit] = [ts for ts in parsed.timestamps if ts is not None]
            tracked = ~explicit
        result = self.store.append_many(refs, stamps, values)
        if result.unknown:  # series deleted by retention since we cached their refs
            self._forget_refs()
        current = np.unique(refs[tracked])
        self._mark_stale(np.setdiff1d(self._previous, current, assume_unique=True), t_ms)
        self._previous = current
        self.metadata = parsed.metadata
        return len(refs), self._added

    def _mark_stale(self, refs: np.ndarray, t_ms: int) -> None:
        if len(refs):
            self.store.append_many(refs, t_ms, np.full(len(refs), STALE_NAN))

    def _report(self, t_ms: int, up: float, duration_s: float, samples: int, added: int) -> None:
        values = {
            "up": up,
            "scrape_duration_seconds": duration_s,
            "scrape_samples_scraped": float(samples),
            "scrape_series_added": float(added),
        }
        if self.store.generation != self._generation:
            self._forget_refs()
        refs = []
        for name in values:
            ref = self._report_refs.get(name)
            if ref is None:
                labels = labels_from({**dict(self._target_labels), METRIC_NAME: name})
                ref = self._report_refs[name] = self.store.series_ref(labels)[0]
            refs.append(ref)
        self.store.append_many(refs, t_ms, list(values.values()))

    def mark_all_stale(self) -> None:
        """The target is going away: end all its series, report series included."""
        t_ms = int(self._clock() * 1000)
        self._mark_stale(self._previous, t_ms)
        self._previous = np.empty(0, np.int64)
        if self._report_refs and self.store.generation == self._generation:
            self._mark_stale(np.array(list(self._report_refs.values()), np.int64), t_ms)


def _reason(exc: Exception) -> str:
    """The useful part of a urllib3 error ('Connection refused', 'Read timed out', ...)."""
    inner = getattr(exc, "reason", None) or exc
    text = str(inner)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return f"{type(inner).__name__}: {text}"
