"""Fakes at the region's HTTP boundary: an in-memory Hub88 wallet served by waitress, and a
helper that serves any WSGI app on a free port in a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request


@dataclass
class Tx:
    kind: str
    fields: dict[str, Any]
    response: dict[str, Any]


@dataclass
class FakeWallet:
    """Hub88-shaped wallet with the ledger rules of the protocol doc, in memory.

    `fail[op]` = "error": answer HTTP 500 without touching the ledger;
    "unknown": answer RS_ERROR_UNKNOWN; ("stall", s): apply, then answer after s seconds.
    """

    initial_balance: int = 1_000_000
    currency: str = "EUR"
    balances: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, Tx] = field(default_factory=dict)
    tombstones: set[str] = field(default_factory=set)
    closed_rounds: dict[str, str] = field(default_factory=dict)  # bet uuid -> win | rollback
    received: list[tuple[str, str]] = field(default_factory=list)  # (operation, uuid)
    applied: Counter[str] = field(default_factory=Counter)  # uuid -> times money moved
    fail: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, Any] = field(default_factory=dict)  # op -> callable run before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("fake-wallet")
        for op in ("bet", "win", "rollback"):
            app.add_url_rule(f"/transaction/{op}", op, self._view(op), methods=["POST"])
        app.add_url_rule("/user/balance", "balance", self._view("balance"), methods=["POST"])
        return app

    def _view(self, op: str) -> Any:
        def view() -> Response:
            body = json.loads(request.get_data())
            mode = self.fail.get(op)
            with self.lock:
                self.received.append((op, str(body.get("transaction_uuid"))))
            if op in self.hooks:
                self.hooks[op]()
            if mode == "error":
                return Response("boom", status=500)
            with self.lock:
                answer = self.handle(op, body)
            if mode == "unknown":
                answer = {**answer, "status": "RS_ERROR_UNKNOWN"}
            if isinstance(mode, tuple) and mode[0] == "stall":
                time.sleep(mode[1])
            return Response(json.dumps(answer), mimetype="application/json")

        return view

    def balance(self, user: str) -> int:
        return self.balances.setdefault(user, self.initial_balance)

    def handle(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        user = body["user"]
        if body.get("token") == "bad-token":
            return self._answer(user, "RS_ERROR_INVALID_TOKEN")
        if op == "balance":
            return self._answer(user, "RS_OK")
        uuid = body["transaction_uuid"]
        known = self.ledger.get(uuid)
        if known is not None:
            same = known.fields == body
            return known.response if same else self._answer(user, "RS_ERROR_DUPLICATE_TRANSACTION")
        status, delta = getattr(self, f"_{op}")(user, body)
        response = self._answer(user, status, delta)
        if status == "RS_OK" or op == "rollback":
            self.ledger[uuid] = Tx(kind=op, fields=dict(body), response=response)
        return response

    def _bet(self, user: str, body: dict[str, Any]) -> tuple[str, int]:
        if body["transaction_uuid"] in self.tombstones:
            return "RS_ERROR_TRANSACTION_ROLLED_BACK", 0
        if self.balance(user) < body["amount"]:
            return "RS_ERROR_NOT_ENOUGH_MONEY", 0
        return "RS_OK", -body["amount"]

    def _bet_of(self, body: dict[str, Any]) -> Tx | None:
        """The referenced bet, if it is one of the same round and user (the round rules)."""
        bet = self.ledger.get(body["reference_transaction_uuid"])
        if bet is None or bet.kind != "bet":
            return None
        same = all(bet.fields[k] == body[k] for k in ("round", "user", "currency"))
        return bet if same else None

    def _win(self, user: str, body: dict[str, Any]) -> tuple[str, int]:
        ref = body["reference_transaction_uuid"]
        if self._bet_of(body) is None:
            return "RS_ERROR_TRANSACTION_DOES_NOT_EXIST", 0
        if self.closed_rounds.get(ref) == "rollback":
            return "RS_ERROR_TRANSACTION_ROLLED_BACK", 0
        if self.closed_rounds.get(ref) == "win":
            return "RS_ERROR_DUPLICATE_TRANSACTION", 0  # one win a bet
        self.closed_rounds[ref] = "win"
        return "RS_OK", body["amount"]

    def _rollback(self, user: str, body: dict[str, Any]) -> tuple[str, int]:
        ref = body["reference_transaction_uuid"]
        bet = self._bet_of(body)
        if bet is None:
            self.tombstones.add(ref)
            return "RS_ERROR_TRANSACTION_DOES_NOT_EXIST", 0
        if self.closed_rounds.get(ref) == "win":
            return "RS_ERROR_DUPLICATE_TRANSACTION", 0
        if self.closed_rounds.get(ref) == "rollback":
            return "RS_ERROR_TRANSACTION_ROLLED_BACK", 0  # one rollback a bet
        self.closed_rounds[ref] = "rollback"
        return "RS_OK", bet.fields["amount"]

    def _answer(self, user: str, status: str, delta: int = 0) -> dict[str, Any]:
        if delta:
            self.balances[user] = self.balance(user) + delta
        return {
            "user": user,
            "status": status,
            "request_uuid": "",
            "currency": self.currency,
            "balance": self.balance(user),
        }

    def record_applied(self) -> None:
        """Recount money-moving transactions from the ledger (for exactly-once checks)."""
        self.applied = Counter(
            uuid for uuid, tx in self.ledger.items() if tx.response["status"] == "RS_OK"
        )

    def sent(self, op: str) -> list[str]:
        with self.lock:
            return [uuid for o, uuid in self.received if o == op]
