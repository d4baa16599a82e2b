"""Which region serves a request: weights, drain, health and suspicion, and the ordering of
candidate regions by weighted rendezvous hashing.

Rendezvous (highest-random-weight) hashing keeps a user on the same region as long as that
region stays eligible, and moves only the users of a region that leaves; the weighted variant
(score = -w / ln(u)) gives each region a share of users proportional to its weight.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from aggregator.errors import ConfigError, NotFound


class Health(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, kw_only=True)
class Region:
    id: str
    url: str
    weight: float = 1.0


@dataclass(frozen=True, kw_only=True)
class RegionView:
    """A region as seen at one instant, for /admin/state and the metrics collector."""

    id: str
    url: str
    weight: float
    effective_weight: float
    health: Health
    drained: bool
    suspect: bool
    consecutive_failures: int
    consecutive_successes: int
    last_check_at: float | None
    last_error: str

    @property
    def up(self) -> bool:
        return self.health is Health.UP

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "url": self.url,
            "weight": self.weight,
            "effective_weight": self.effective_weight,
            "health": self.health.value,
            "up": self.up,
            "drained": self.drained,
            "suspect": self.suspect,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "last_check_at": self.last_check_at,
            "last_error": self.last_error,
        }


class _State:
    __slots__ = ("drained", "fails", "health", "last_at", "last_error", "oks", "suspect")

    def __init__(self) -> None:
        # Optimistic start: a fresh front door serves at once; the first probes correct it.
        self.health = Health.UP
        self.drained = False
        self.suspect = False
        self.fails = 0
        self.oks = 0
        self.last_at: float | None = None
        self.last_error = ""


def rendezvous_score(region_id: str, key: str, weight: float) -> float:
    """Weighted rendezvous score; the highest score among eligible regions wins."""
    if weight <= 0:
        return -math.inf
    digest = hashlib.blake2b(f"{region_id}\x00{key}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 0.5) / 2.0**64  # strictly inside (0, 1)
    return -weight / math.log(unit)


def rank(regions: Iterable[Region], key: str) -> list[Region]:
    return sorted(regions, key=lambda r: rendezvous_score(r.id, key, r.weight), reverse=True)


class RegionTable:
    """Thread-safe routing state of the front door."""

    def __init__(
        self,
        regions: Sequence[Region],
        *,
        fall_after: int = 2,
        rise_after: int = 2,
    ) -> None:
        if not regions:
            raise ConfigError("the front door needs at least one region")
        ids = [r.id for r in regions]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"duplicate region ids in {ids!r}")
        for region in regions:
            if region.weight < 0 or not math.isfinite(region.weight):
                raise ConfigError(
                    f"region {region.id!r} weight must be >= 0, got {region.weight!r}"
                )
        self._regions = {r.id: r for r in regions}
        self._state = {r.id: _State() for r in regions}
        self._fall_after = fall_after
        self._rise_after = rise_after
        self._lock = threading.Lock()

    def ids(self) -> list[str]:
        return list(self._regions)

    def region(self, region_id: str) -> Region:
        try:
            return self._regions[region_id]
        except KeyError:
            raise NotFound(f"unknown region {region_id!r}", code="unknown_region") from None

    def set_drained(self, region_id: str, drained: bool) -> bool:
        """Drain or undrain; True when this call changed the state."""
        self.region(region_id)
        with self._lock:
            state = self._state[region_id]
            changed = state.drained != drained
            state.drained = drained
        return changed

    def record_probe(self, region_id: str, ok: bool, *, at: float, error: str = "") -> Health:
        """Count one health probe; the region flips after enough consecutive results."""
        with self._lock:
            state = self._state[region_id]
            state.last_at = at
            if ok:
                state.oks, state.fails = state.oks + 1, 0
                state.suspect = False
                state.last_error = ""
                if state.health is Health.DOWN and state.oks >= self._rise_after:
                    state.health = Health.UP
            else:
                state.fails, state.oks = state.fails + 1, 0
                state.last_error = error
                if state.health is Health.UP and state.fails >= self._fall_after:
                    state.health = Health.DOWN
            return state.health

    def mark_suspect(self, region_id: str, error: str) -> None:
        """Avoid a region that just failed a request until its next successful probe."""
        with self._lock:
            state = self._state[region_id]
            state.suspect = True
            state.last_error = error

    def _available(self, region_id: str) -> bool:
        state = self._state[region_id]
        return state.health is Health.UP and not state.suspect

    def launch_order(self, user: str) -> list[Region]:
        """Regions to try for a new session, best first: available and undrained."""
        with self._lock:
            eligible = [
                r
                for r in self._regions.values()
                if self._available(r.id) and not self._state[r.id].drained
            ]
            if not eligible:
                # Health may lag reality; rather try undrained regions than refuse outright.
                eligible = [r for r in self._regions.values() if not self._state[r.id].drained]
        return rank(eligible, user)

    def round_order(self, home: str, user: str) -> list[Region]:
        """Regions to try for a round: the home region while available, then failover targets
        (undrained before drained: drain only stops new sessions)."""
        with self._lock:
            available = [r for r in self._regions.values() if self._available(r.id)]
            drained = {rid for rid, s in self._state.items() if s.drained}
        if not available:
            available = list(self._regions.values())
        home_first = [r for r in available if r.id == home]
        others = [r for r in available if r.id != home]
        undrained = rank([r for r in others if r.id not in drained], user)
        fallback = rank([_unit_weight(r) for r in others if r.id in drained], user)
        return home_first + undrained + fallback

    def is_up(self, region_id: str) -> bool:
        with self._lock:
            return self._state[region_id].health is Health.UP

    def snapshot(self) -> list[RegionView]:
        with self._lock:
            return [self._view(r) for r in self._regions.values()]

    def _view(self, region: Region) -> RegionView:
        state = self._state[region.id]
        serving = state.health is Health.UP and not state.drained
        return RegionView(
            id=region.id,
            url=region.url,
            weight=region.weight,
            effective_weight=region.weight if serving else 0.0,
            health=state.health,
            drained=state.drained,
            suspect=state.suspect,
            consecutive_failures=state.fails,
            consecutive_successes=state.oks,
            last_check_at=state.last_at,
            last_error=state.last_error,
        )


def _unit_weight(region: Region) -> Region:
    return Region(id=region.id, url=region.url, weight=max(region.weight, 1.0))


def parse_regions(specs: Sequence[str], weights: Sequence[str]) -> list[Region]:
    """`--region ID=URL` and `--weight ID=W` arguments into regions (file and field named)."""
    urls: dict[str, str] = {}
    for spec in specs:
        rid, sep, url = spec.partition("=")
        if not sep or not rid or not url.startswith(("http://", "https://")):
            raise ConfigError(f"--region must be ID=http://HOST:PORT, got {spec!r}")
        if rid in urls:
            raise ConfigError(f"--region {rid!r} given twice")
        urls[rid] = url.rstrip("/")
    given: dict[str, float] = {}
    for spec in weights:
        rid, sep, raw = spec.partition("=")
        if not sep or rid not in urls:
            raise ConfigError(f"--weight must be ID=WEIGHT for a known region, got {spec!r}")
        try:
            given[rid] = float(raw)
        except ValueError:
            raise ConfigError(f"--weight {spec!r}: {raw!r} is not a number") from None
    return [Region(id=rid, url=url, weight=given.get(rid, 1.0)) for rid, url in urls.items()]
