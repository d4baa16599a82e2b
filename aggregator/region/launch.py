"""Launch routing: which provider gets a new game session.

The natural choice is the requested game's provider, or for a category a random game of the
lobby (isolated providers have left the lobby). That provider gets the launch unless it is
isolated, misses its canary draw, has an open breaker, or its launch call fails; then the launch
fails over to another provider with a game of the same category that passes the same checks
(`outcome: failover`). With nobody left, the launch fails (503 `launch_failed`).

Canary: after a restore with canary_percent < 100, each launch that would go to the provider
is let through with that probability, drawn from the injected RNG; the rest fail over.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from aggregator.errors import NotFound, Unavailable, Unprocessable
from aggregator.region.catalogue import Game, RegionCatalogue
from aggregator.region.metrics import RegionMetrics
from aggregator.region.providers import Outcome, ProviderGateway
from aggregator.region.state import ProviderStateStore


class LaunchOutcome(StrEnum):
    OK = "ok"
    FAILOVER = "failover"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class LaunchChoice:
    game: Game
    outcome: LaunchOutcome
    latency_s: float  # simulated provider time spent, failed attempts included
    tried: tuple[str, ...]  # providers whose launch call was made, in order

    @property
    def provider(self) -> str:
        return self.game.provider


class Router:
    def __init__(
        self,
        catalogue: RegionCatalogue,
        gateway: ProviderGateway,
        state: ProviderStateStore,
        metrics: RegionMetrics,
        rng: random.Random,
        *,
        max_calls: int = 3,
    ) -> None:
        self._catalogue = catalogue
        self._gateway = gateway
        self._state = state
        self._metrics = metrics
        self._rng = rng
        self._max_calls = max_calls

    def natural_choice(self, *, game_id: str | None, category: str | None) -> Game:
        if game_id is not None:
            game = self._catalogue.games.get(game_id)
            if game is None:
                raise NotFound(f"unknown game {game_id!r}", code="unknown_game")
            return game
        if category is None:
            raise Unprocessable("a launch needs a game or a category", code="missing_field")
        games = self._catalogue.categories.get(category)
        if games is None:
            raise NotFound(
                f"unknown category {category!r}; known: {sorted(self._catalogue.categories)}",
                code="unknown_category",
            )
        lobby = [g for g in games if not self._state.is_isolated(g.provider)]
        return self._rng.choice(lobby or list(games))

    def launch(self, *, game_id: str | None = None, category: str | None = None) -> LaunchChoice:
        wanted = self.natural_choice(game_id=game_id, category=category)
        latency, tried = 0.0, []
        if self._try(wanted.provider):
            call = self._gateway.call(wanted.provider, "launch")
            latency += call.latency_s
            tried.append(wanted.provider)
            if call.outcome is Outcome.OK:
                self._metrics.launch(wanted.provider, LaunchOutcome.OK.value)
                return LaunchChoice(
                    game=wanted, outcome=LaunchOutcome.OK, latency_s=latency, tried=tuple(tried)
                )
        for provider in self._alternatives(wanted):
            if len(tried) >= self._max_calls:
                break
            if not self._try(provider):
                continue
            call = self._gateway.call(provider, "launch")
            latency += call.latency_s
            tried.append(provider)
            if call.outcome is Outcome.OK:
                game = self._game_of(provider, wanted)
                self._metrics.launch(provider, LaunchOutcome.FAILOVER.value)
                self._metrics.failover("provider_failover")
                return LaunchChoice(
                    game=game,
                    outcome=LaunchOutcome.FAILOVER,
                    latency_s=latency,
                    tried=tuple(tried),
                )
        self._metrics.launch(wanted.provider, LaunchOutcome.FAILED.value)
        raise Unavailable(
            f"no provider can launch a {wanted.category!r} game now "
            f"(wanted {wanted.id!r} on {wanted.provider!r}, tried {tried!r})",
            code="launch_failed",
        )

    def _try(self, provider: str) -> bool:
        """Isolation, canary draw, breaker admission: may the launch call go to `provider`?"""
        if self._state.is_isolated(provider):
            self._metrics.provider_call(provider, "launch", Outcome.REJECTED.value, None)
            return False
        canary = self._state.get(provider).canary_percent
        if canary < 100.0 and self._rng.random() * 100.0 >= canary:
            return False
        return self._gateway.admit(provider, "launch")

    def _alternatives(self, wanted: Game) -> list[str]:
        others = sorted(
            {
                g.provider
                for g in self._catalogue.categories[wanted.category]
                if g.provider != wanted.provider and not self._state.is_isolated(g.provider)
            }
        )
        self._rng.shuffle(others)
        return others

    def _game_of(self, provider: str, wanted: Game) -> Game:
        games = [
            g for g in self._catalogue.providers[provider].games if g.category == wanted.category
        ]
        return self._rng.choice(games)
