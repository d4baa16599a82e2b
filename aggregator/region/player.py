"""The player API: POST /player/launch, POST /player/round, GET /player/lobby.

While a region_down fault is active these answer 503 `region_down` without "money", which tells
the front door to try another region.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from aggregator.errors import BadRequest, Unavailable
from aggregator.httpapi import FastRoutes, json_object, json_response
from aggregator.region.runtime import Region
from aggregator.sessions import GameSession

MAX_BET = 1_000_000_000
MAX_ROUND_ID = 200


class PlayerApi:
    def __init__(self, region: Region) -> None:
        self._region = region

    def install(self, app: Flask) -> None:
        """The Flask routes, and launch and round again as fast routes in front of Flask
        (the hot path); Flask still answers their wrong methods."""
        app.add_url_rule("/player/launch", "player_launch", self.launch, methods=["POST"])
        app.add_url_rule("/player/round", "player_round", self.round, methods=["POST"])
        app.add_url_rule("/player/lobby", "player_lobby", self.lobby, methods=["GET"])
        fast = {
            ("POST", "/player/launch"): lambda raw: (200, self.launch_answer(raw)),
            ("POST", "/player/round"): lambda raw: (200, self.round_answer(raw)),
        }
        app.wsgi_app = FastRoutes(app, fast)  # type: ignore[method-assign]

    def _serving(self) -> None:
        if self._region.is_down():
            raise Unavailable(f"region {self._region.config.region!r} is down", code="region_down")

    def launch(self) -> Response:
        return json_response(self.launch_answer(request.get_data(cache=True)))

    def launch_answer(self, raw: bytes) -> dict[str, Any]:
        self._serving()
        body = json_object(raw)
        user, token, currency = (_text(body, k) for k in ("user", "token", "currency"))
        game = _optional_text(body, "game")
        category = _optional_text(body, "category")
        region = self._region
        choice = region.router.launch(game_id=game, category=category)
        session = GameSession(
            session_id=region.deps.new_session_id(),
            user=user,
            token=token,
            currency=currency,
            game=choice.game.id,
            provider=choice.provider,
            region=region.config.region,
        )
        region.sessions.touch(session.session_id, choice.provider)
        return {
            "session": session.encode(region.config.session_secret),
            "region": region.config.region,
            "provider": choice.provider,
            "game": choice.game.id,
            "category": choice.game.category,
            "outcome": choice.outcome.value,
            "provider_latency_ms": round(choice.latency_s * 1000.0, 1),
        }

    def round(self) -> Response:
        return json_response(self.round_answer(request.get_data(cache=True)))

    def round_answer(self, raw: bytes) -> dict[str, Any]:
        self._serving()
        body = json_object(raw)
        session = GameSession.decode(_text(body, "session"), self._region.config.session_secret)
        round_id = _text(body, "round")
        if len(round_id) > MAX_ROUND_ID:
            raise BadRequest(f"round id longer than {MAX_ROUND_ID} characters: {round_id[:40]!r}")
        bet = body.get("bet")
        if isinstance(bet, bool) or not isinstance(bet, int) or not 0 < bet <= MAX_BET:
            raise BadRequest(
                f"bet must be an integer in minor units in [1, {MAX_BET}], got {bet!r}",
                code="invalid_bet",
            )
        return self._region.rounds.play(session, round_id, bet)

    def lobby(self) -> Response:
        """Games on offer now, by category: isolated providers' games have left the lobby."""
        self._serving()
        region = self._region
        lobby: dict[str, list[dict[str, str]]] = {}
        for category, games in sorted(region.catalogue.categories.items()):
            lobby[category] = [
                {"id": g.id, "name": g.name, "provider": g.provider}
                for g in games
                if not region.state.is_isolated(g.provider)
            ]
        return json_response({"region": region.config.region, "categories": lobby})


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _text(body, key)
