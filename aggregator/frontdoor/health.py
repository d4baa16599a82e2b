"""Active health checks: GET /readyz on every region, every interval, in one background thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aggregator.frontdoor.routing import Health, RegionTable
from aggregator.frontdoor.transport import Transport, TransportError

log = logging.getLogger(__name__)


class HealthChecker:
    def __init__(
        self,
        table: RegionTable,
        transport: Transport,
        *,
        interval_s: float = 1.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.time,
        unreachable: Callable[[str], bool] = lambda _region: False,
    ) -> None:
        self._table = table
        self._transport = transport
        self._interval = interval_s
        # a probe must finish well inside the interval, or checks of a dead region pile up
        self._timeout = timeout_s if timeout_s is not None else min(max(interval_s, 0.2), 2.0)
        self._clock = clock
        self._unreachable = unreachable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def probe(self, region_id: str) -> tuple[bool, str]:
        if self._unreachable(region_id):
            return False, "region_down fault: unreachable from the front door"
        url = f"{self._table.region(region_id).url}/readyz"
        try:
            answer = self._transport.request("GET", url, timeout=self._timeout)
        except TransportError as exc:
            return False, str(exc)
        if answer.status != 200:
            return False, f"/readyz answered {answer.status}"
        return True, ""

    def check_once(self) -> None:
        for region_id in self._table.ids():
            ok, error = self.probe(region_id)
            before = self._table.is_up(region_id)
            after = self._table.record_probe(region_id, ok, at=self._clock(), error=error)
            if before != (after is Health.UP):
                log.warning("region %s is now %s (%s)", region_id, after.value, error or "ok")

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="frontdoor-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except Exception:  # the checker must outlive any single bad probe
                log.exception("health check round failed")
            self._stop.wait(self._interval)
