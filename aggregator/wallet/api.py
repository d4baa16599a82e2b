"""The operator wallet's HTTP API in the Hub88 shape, and the lobby's token endpoint.

Every wallet call answers `{"user", "status", "request_uuid", "currency", "balance"}`: HTTP 200
for every business outcome, 400 for a malformed call or a wrong currency (no ledger row), 500
with RS_ERROR_UNKNOWN for an injected or unexpected failure (ledger untouched or rolled back).
A token that does not verify for the named user, and a verified token for a user the wallet has
never registered, both answer RS_ERROR_INVALID_TOKEN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Flask, Response, request

from aggregator.errors import BadRequest
from aggregator.httpapi import FastRoutes, json_body, json_response
from aggregator.wallet import payloads
from aggregator.wallet.faults import WalletFaults
from aggregator.wallet.ledger import Ledger
from aggregator.wallet.metrics import WalletMetrics
from aggregator.wallet.rules import Kind, Status
from aggregator.wallet.tokens import TokenSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Reply:
    status: Status
    body: dict[str, Any]
    http: int = 200
    replayed: bool = False  # answered from the ledger row of an earlier identical call


def hub88(
    status: Status,
    body: dict[str, Any],
    *,
    currency: str | None,
    balance: int,
    http: int = 200,
    message: str | None = None,
    replayed: bool = False,
) -> Reply:
    """A reply echoing the caller's user and request_uuid (when they were strings)."""
    user, request_uuid = body.get("user"), body.get("request_uuid")
    out: dict[str, Any] = {
        "user": user if isinstance(user, str) else None,
        "status": status.value,
        "request_uuid": request_uuid if isinstance(request_uuid, str) else None,
        "currency": currency,
        "balance": balance,
    }
    if message is not None:
        out["message"] = message
    return Reply(status=status, body=out, http=http, replayed=replayed)


class WalletApi:
    def __init__(
        self,
        *,
        ledger: Ledger,
        signer: TokenSigner,
        faults: WalletFaults,
        metrics: WalletMetrics,
        perf_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._ledger = ledger
        self._signer = signer
        self._faults = faults
        self._metrics = metrics
        self._perf = perf_clock

    def install(self, app: Flask) -> None:
        """The Flask routes, and the same calls as fast routes in front of Flask (the hot
        path: two of them per round); Flask still answers their wrong methods."""
        handlers = {"/user/balance": self._handler("balance", self.balance)}
        for kind in Kind:
            handlers[f"/transaction/{kind.value}"] = self._handler(
                kind.value, partial(self.transaction, kind)
            )
        for path, handler in handlers.items():
            app.add_url_rule(path, path, self._view(handler), methods=["POST"])
        app.add_url_rule("/operator/token", "operator_token", self.token, methods=["POST"])
        fast = {("POST", path): handler for path, handler in handlers.items()}
        app.wsgi_app = FastRoutes(app, fast)  # type: ignore[method-assign]

    def _handler(
        self, operation: str, handler: Callable[[dict[str, Any]], Reply]
    ) -> Callable[[bytes], tuple[int, object]]:
        return lambda raw: self.serve(operation, handler, raw)

    @staticmethod
    def _view(handler: Callable[[bytes], tuple[int, object]]) -> Callable[[], Response]:
        def view() -> Response:
            status, body = handler(request.get_data())
            return json_response(body, status)

        return view

    def serve(
        self, operation: str, handler: Callable[[dict[str, Any]], Reply], raw: bytes
    ) -> tuple[int, object]:
        """(HTTP status, JSON body) of one wallet call, with its metrics."""
        started = self._perf()
        reply = self._answer(operation, handler, raw)
        self._metrics.observe(
            operation, reply.status.value, self._perf() - started, replayed=reply.replayed
        )
        return reply.http, reply.body

    def _answer(
        self, operation: str, handler: Callable[[dict[str, Any]], Reply], raw: bytes
    ) -> Reply:
        if self._faults.fails(operation):
            return hub88(
                Status.UNKNOWN, {}, currency=None, balance=0, http=500, message="injected fault"
            )
        body: dict[str, Any] = {}
        try:
            body = payloads.parse_object(raw)
            reply = handler(body)
        except payloads.InvalidCall as exc:
            reply = hub88(
                exc.rs_status, exc.echo, currency=None, balance=0, http=400, message=exc.message
            )
        except Exception:
            # the boundary: the database transaction was rolled back, the caller may retry
            log.exception("wallet %s failed", operation)
            reply = hub88(Status.UNKNOWN, body, currency=None, balance=0, http=500)
        self._faults.stall(operation)
        return reply

    def transaction(self, kind: Kind, body: dict[str, Any]) -> Reply:
        req = payloads.transaction(kind, body)
        if not self._signer.valid_for(payloads.token_of(body), req.user):
            return hub88(Status.INVALID_TOKEN, body, currency=req.currency, balance=0)
        outcome = self._ledger.apply(req)
        http = 400 if outcome.status is Status.WRONG_CURRENCY else 200
        return hub88(
            outcome.status,
            body,
            currency=outcome.currency,
            balance=outcome.balance,
            http=http,
            replayed=outcome.replayed,
        )

    def balance(self, body: dict[str, Any]) -> Reply:
        req = payloads.balance(body)
        if not self._signer.valid_for(req.token, req.user):
            return hub88(Status.INVALID_TOKEN, body, currency=req.currency, balance=0)
        account = self._ledger.account(req.user)
        if account is None:
            return hub88(Status.INVALID_TOKEN, body, currency=req.currency, balance=0)
        if req.currency is not None and req.currency != account.currency:
            return hub88(
                Status.WRONG_CURRENCY,
                body,
                currency=account.currency,
                balance=account.balance,
                http=400,
            )
        return hub88(Status.OK, body, currency=account.currency, balance=account.balance)

    def token(self) -> Response:
        """The operator's lobby registers a player (first sight) and gets its token."""
        started = self._perf()
        user = json_body().get("user")
        if not isinstance(user, str) or not 0 < len(user) <= payloads.MAX_TEXT:
            raise BadRequest(
                f"user must be a string of 1..{payloads.MAX_TEXT} characters, got {user!r}",
                code="invalid_user",
            )
        account = self._ledger.register(user)
        self._metrics.observe("token", Status.OK.value, self._perf() - started, replayed=False)
        return json_response(
            {
                "user": user,
                "token": self._signer.issue(user),
                "currency": account.currency,
                "balance": account.balance,
            }
        )
