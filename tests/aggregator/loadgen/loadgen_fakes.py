"""A fake target for the load generator: a tiny wallet + region in one, in process or over HTTP.

It keeps the true balances, so a test can compare them with what the load generator expects.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from flask import Flask, Response, request

from aggregator.httpapi import json_response
from aggregator.loadgen.client import Reply

INITIAL = 10_000


def win_of(round_id: str, bet: int) -> int:
    """Deterministic in the round id, as the real regions are."""
    return (hashlib.sha256(round_id.encode()).digest()[0] % 3) * bet  # 0, bet or 2 x bet


class FakeTarget:
    """`Target` in process. `script` maps a round id to replies served before the real answer."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.settled: dict[str, int] = {}  # round id -> net effect, applied once
        self.round_calls: list[str] = []
        self.launch_calls: list[dict[str, Any]] = []
        self.script: dict[str, list[Reply]] = {}
        self.launch_script: list[Reply] = []
        self.lock = threading.Lock()

    def token(self, user: str) -> Reply:
        with self.lock:
            balance = self.balances.setdefault(user, INITIAL)
        body = {"user": user, "token": f"t-{user}", "currency": "EUR", "balance": balance}
        return Reply(status=200, body=body)

    def launch(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.launch_calls.append(body)
            if self.launch_script:
                return self.launch_script.pop(0)
        session = f"s-{body['user']}-{len(self.launch_calls)}"
        return Reply(status=200, body={"session": session, "region": "eu", "outcome": "ok"})

    def round(self, body: dict[str, Any]) -> Reply:
        round_id, bet = str(body["round"]), int(body["bet"])
        user = str(body["session"]).split("-")[1]
        with self.lock:
            self.round_calls.append(round_id)
            queued = self.script.get(round_id)
            if queued:
                return queued.pop(0)
            win = win_of(round_id, bet)
            if round_id not in self.settled:  # idempotent by round id, like the wallet
                self.settled[round_id] = win - bet
                self.balances[user] += win - bet
            balance = self.balances[user]
        answer = {"round": round_id, "status": "settled", "bet": bet, "win": win}
        return Reply(status=200, body={**answer, "balance": balance})


def fake_http_app(fake: FakeTarget) -> Flask:
    """The same fake behind the real HTTP paths of the wallet and the player API."""
    app = Flask("fake-target")

    def relay(reply: Reply) -> Response:
        if reply.status is None:  # as close to a lost answer as a WSGI app gets
            return json_response({"error": "internal_server_error"}, 500)
        return json_response(reply.body, reply.status)

    @app.post("/operator/token")
    def token() -> Response:
        return relay(fake.token(str(request.get_json()["user"])))

    @app.post("/player/launch")
    def launch() -> Response:
        return relay(fake.launch(request.get_json()))

    @app.post("/player/round")
    def play() -> Response:
        return relay(fake.round(request.get_json()))

    return app
