"""Isolation and canary state per provider, persisted so a restarted region keeps them.

Reads come from an in-memory copy (they are on the per-launch and per-round path); writes go to
the database first and then to the copy, under one lock, so the two never disagree for long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import sqlalchemy as sa

from aggregator.region.database import provider_state


@dataclass(frozen=True, kw_only=True)
class ProviderState:
    provider: str
    isolated: bool = False
    reason: str = ""
    canary_percent: float = 100.0
    updated_at: float = 0.0


class ProviderStateStore:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        region: str,
        providers: Iterable[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._region = region
        self._clock = clock
        self._lock = threading.Lock()
        self._states = {p: ProviderState(provider=p) for p in providers}
        self._load()

    def _load(self) -> None:
        query = sa.select(provider_state).where(provider_state.c.region == self._region)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        for row in rows:
            # a provider dropped from the catalogue keeps its row but is no longer served
            if row["provider"] in self._states:
                self._states[row["provider"]] = ProviderState(
                    provider=row["provider"],
                    isolated=bool(row["isolated"]),
                    reason=row["reason"],
                    canary_percent=float(row["canary_percent"]),
                    updated_at=float(row["updated_at"]),
                )

    def get(self, provider: str) -> ProviderState:
        return self._states[provider]

    def all(self) -> dict[str, ProviderState]:
        return dict(self._states)

    def is_isolated(self, provider: str) -> bool:
        return self._states[provider].isolated

    def isolate(self, provider: str, reason: str) -> tuple[ProviderState, bool]:
        """Isolate; returns the new state and whether anything changed."""
        with self._lock:
            old = self._states[provider]
            new = replace(old, isolated=True, reason=reason, updated_at=self._clock())
            return self._save(new), not old.isolated

    def restore(self, provider: str, canary_percent: float) -> tuple[ProviderState, bool]:
        with self._lock:
            old = self._states[provider]
            new = replace(
                old,
                isolated=False,
                reason="",
                canary_percent=canary_percent,
                updated_at=self._clock(),
            )
            changed = old.isolated or old.canary_percent != canary_percent
            return self._save(new), changed

    def _save(self, new: ProviderState) -> ProviderState:
        values = {
            "isolated": new.isolated,
            "reason": new.reason,
            "canary_percent": new.canary_percent,
            "updated_at": new.updated_at,
        }
        key = (provider_state.c.region == self._region) & (
            provider_state.c.provider == new.provider
        )
        with self._engine.begin() as conn:
            updated = conn.execute(sa.update(provider_state).where(key).values(**values))
            if updated.rowcount == 0:
                conn.execute(
                    sa.insert(provider_state).values(
                        region=self._region, provider=new.provider, **values
                    )
                )
        self._states[new.provider] = new
        return new
