"""The wallet's admin API (bearer token on every route): state, ledger views, users, faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from aggregator.errors import BadRequest, NotFound
from aggregator.httpapi import IdempotencyCache, admin_endpoint, json_body, json_response
from aggregator.wallet import reports
from aggregator.wallet.config import WalletConfig
from aggregator.wallet.faults import WalletFaults
from aggregator.wallet.ledger import Ledger

MAX_PAGE = 1000
View = Callable[..., Any]
Decorator = Callable[[View], View]


def install_admin(
    app: Flask,
    *,
    config: WalletConfig,
    ledger: Ledger,
    faults: WalletFaults,
    cache: IdempotencyCache | None = None,
) -> None:
    admin = admin_endpoint(config.admin_token, cache or IdempotencyCache())
    _install_ledger_views(app, admin, config=config, ledger=ledger, faults=faults)
    _install_faults(app, admin, faults)


def _install_ledger_views(
    app: Flask,
    admin: Decorator,
    *,
    config: WalletConfig,
    ledger: Ledger,
    faults: WalletFaults,
) -> None:
    engine = ledger.engine

    @app.get("/admin/state")
    @admin
    def admin_state() -> dict[str, Any]:
        return {
            "role": "wallet",
            "database": engine.dialect.name,
            "currency": config.currency,
            "initial_balance": config.initial_balance,
            **reports.counts(engine),
            "faults": [f.as_json() for f in faults.book.active()],
        }

    @app.get("/admin/ledger/summary")
    @admin
    def admin_summary() -> dict[str, Any]:
        return reports.summary(engine)

    @app.get("/admin/ledger/rounds")
    @admin
    def admin_rounds() -> dict[str, Any]:
        after = request.args.get("after") or None
        return reports.rounds(engine, after=after, limit=_limit(request.args.get("limit")))

    @app.get("/admin/users/<user>")
    @admin
    def admin_user(user: str) -> dict[str, Any]:
        detail = reports.user_detail(engine, user)
        if detail is None:
            raise NotFound(f"unknown user {user!r}", code="unknown_user")
        return detail


def _install_faults(app: Flask, admin: Decorator, faults: WalletFaults) -> None:
    @app.get("/admin/faults")
    @admin
    def admin_faults() -> dict[str, Any]:
        return {"faults": [f.as_json() for f in faults.book.active()]}

    @app.post("/admin/faults")
    @admin
    def admin_add_fault() -> Response:
        return json_response(faults.add(json_body()).as_json(), 201)

    @app.delete("/admin/faults/<fault_id>")
    @admin
    def admin_delete_fault(fault_id: str) -> dict[str, Any]:
        return {"deleted": faults.book.remove(fault_id).as_json()}


def _limit(raw: str | None) -> int:
    if raw is None:
        return 100
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE:
        raise BadRequest(f"limit must be an integer in [1, {MAX_PAGE}], got {raw!r}")
    return value
