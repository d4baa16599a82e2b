"""Admin API, faults, probes and metrics of the wallet."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from aggregator.wallet import _ready
from tests.aggregator.wallet.conftest import ADMIN, services
from tests.aggregator.wallet.wallet_checks import ledger_rows


def play(client: FlaskClient, user: str, rnd: str, bet: int, win: int | None) -> None:
    token = client.post("/operator/token", json={"user": user}).get_json()["token"]
    base = {"user": user, "token": token, "currency": "EUR", "round": rnd}
    answer = client.post(
        "/transaction/bet", json={**base, "transaction_uuid": f"{rnd}:bet", "amount": bet}
    ).get_json()
    assert answer["status"] == "RS_OK"
    if win is not None:
        body = {**base, "transaction_uuid": f"{rnd}:win", "amount": win}
        body["reference_transaction_uuid"] = f"{rnd}:bet"
        assert client.post("/transaction/win", json=body).get_json()["status"] == "RS_OK"


ADMIN_ROUTES = [
    ("GET", "/admin/state"),
    ("GET", "/admin/ledger/summary"),
    ("GET", "/admin/ledger/rounds"),
    ("GET", "/admin/users/p1"),
    ("GET", "/admin/faults"),
    ("POST", "/admin/faults"),
    ("DELETE", "/admin/faults/wf1"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "x"}])
def test_admin_needs_the_bearer_token_and_changes_nothing_without_it(
    client: FlaskClient, wallet: Flask, method: str, path: str, headers: dict[str, str]
) -> None:
    play(client, "p1", "r1", 100, None)
    fault = {"kind": "wallet_errors", "target": "*", "magnitude": 1.0}
    assert client.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
    answer = client.open(path, method=method, json=fault, headers=headers)
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "unauthorized"
    assert [f.id for f in services(wallet).faults.book.active()] == ["wf1"]


def test_summary_users_state_and_rounds_paging(client: FlaskClient) -> None:
    for n in range(5):
        play(client, f"p{n % 2}", f"r{n}", 100, 30 * n)
    summary = client.get("/admin/ledger/summary", headers=ADMIN).get_json()
    assert summary == {
        "users": 2,
        "initial_funds": 2000,
        "total_balance": 2000 - 500 + 300,
        "bets": 500,
        "wins": 300,
        "rollbacks": 0,
        "transactions": 10,
        "consistent": True,
    }
    user = client.get("/admin/users/p0", headers=ADMIN).get_json()
    assert (user["balance"], user["ledger_balance"], user["transactions"]) == (880, 880, 6)
    missing = client.get("/admin/users/nobody", headers=ADMIN)
    assert missing.status_code == 404
    assert "nobody" in missing.get_json()["message"]
    state = client.get("/admin/state", headers=ADMIN).get_json()
    assert (state["role"], state["users"], state["transactions"]) == ("wallet", 2, 10)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2} if cursor is None else {"limit": 2, "after": cursor}
        page = client.get("/admin/ledger/rounds", query_string=query, headers=ADMIN).get_json()
        pages += 1
        seen += page["rounds"]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert [r["round"] for r in seen] == [f"r{n}" for n in range(5)]
    assert all(r["state"] == "settled" and len(r["bets"]) == len(r["wins"]) == 1 for r in seen)
    bad = client.get("/admin/ledger/rounds?limit=0", headers=ADMIN)
    assert bad.status_code == 400


def test_wallet_errors_answer_500_without_touching_the_ledger(
    client: FlaskClient, wallet: Flask
) -> None:
    token = client.post("/operator/token", json={"user": "p1"}).get_json()["token"]
    fault = client.post(
        "/admin/faults",
        json={"kind": "wallet_errors", "target": "bet", "magnitude": 1.0, "duration_s": 60},
        headers=ADMIN,
    )
    assert fault.status_code == 201
    body = {**_bet("b1"), "token": token}
    answer = client.post("/transaction/bet", json=body)
    assert answer.status_code == 500
    assert answer.get_json()["status"] == "RS_ERROR_UNKNOWN"
    assert ledger_rows(services(wallet).engine) == []
    # only bets are targeted: the balance still answers
    assert client.post("/user/balance", json=body).get_json()["status"] == "RS_OK"
    client.delete(f"/admin/faults/{fault.get_json()['id']}", headers=ADMIN)
    assert client.post("/transaction/bet", json=body).get_json()["status"] == "RS_OK"
    assert len(ledger_rows(services(wallet).engine)) == 1


def _bet(uuid: str, amount: int = 100) -> dict[str, Any]:
    return {
        "user": "p1",
        "currency": "EUR",
        "round": uuid,
        "transaction_uuid": uuid,
        "amount": amount,
    }


def test_wallet_timeout_stalls_after_applying_and_faults_expire(
    make_wallet: Callable[..., Flask], sqlite_url: str
) -> None:
    now = [1000.0]
    stalls: list[float] = []
    app = make_wallet(
        database_url=sqlite_url, initial_balance=1000, clock=lambda: now[0], sleep=stalls.append
    )
    client = app.test_client()
    token = client.post("/operator/token", json={"user": "p1"}).get_json()["token"]
    for magnitude in (0.2, 30.0):
        fault = {"kind": "wallet_timeout", "target": "wallet", "magnitude": magnitude}
        added = client.post("/admin/faults", json={**fault, "duration_s": 10}, headers=ADMIN)
        assert added.status_code == 201
    answer = client.post("/transaction/bet", json={**_bet("b1"), "token": token}).get_json()
    assert (answer["status"], answer["balance"]) == ("RS_OK", 900)
    assert stalls == [10.0], "the strongest fault applies, capped at 10 s"
    now[0] += 10.0
    answer = client.post("/transaction/bet", json={**_bet("b2"), "token": token}).get_json()
    assert (answer["status"], answer["balance"]) == ("RS_OK", 800)
    assert stalls == [10.0], "expired faults no longer stall"
    assert client.get("/admin/faults", headers=ADMIN).get_json() == {"faults": []}


def test_wallet_timeout_really_stalls(client: FlaskClient) -> None:
    token = client.post("/operator/token", json={"user": "p1"}).get_json()["token"]
    fault = {"kind": "wallet_timeout", "target": "*", "magnitude": 0.2, "duration_s": 30}
    client.post("/admin/faults", json=fault, headers=ADMIN)
    started = time.monotonic()
    answer = client.post("/transaction/bet", json={**_bet("b1"), "token": token}).get_json()
    assert time.monotonic() - started >= 0.2  # a lower bound: sleep never returns early
    assert (answer["status"], answer["balance"]) == ("RS_OK", 900)


@pytest.mark.parametrize(
    ("body", "status", "error", "named"),
    [
        ({"kind": "meteor", "target": "*"}, 404, "unknown_fault_kind", "'meteor'"),
        ({"kind": "provider_down", "target": "*"}, 422, "unsupported_fault_kind", "provider_down"),
        ({"kind": "wallet_errors", "target": "moon"}, 404, "unknown_target", "'moon'"),
        ({"kind": "wallet_errors", "target": "*", "magnitude": 2}, 422, "invalid", "2.0"),
    ],
)
def test_bad_fault_requests(
    client: FlaskClient, wallet: Flask, body: dict[str, Any], status: int, error: str, named: str
) -> None:
    answer = client.post("/admin/faults", json=body, headers=ADMIN)
    assert answer.status_code == status
    assert answer.get_json()["error"] == error
    assert named in answer.get_json()["message"]
    assert services(wallet).faults.book.active() == []


def test_fault_post_replays_by_idempotency_key(client: FlaskClient, wallet: Flask) -> None:
    fault = {"kind": "wallet_errors", "target": "win", "magnitude": 0.5}
    headers = {**ADMIN, "Idempotency-Key": "k1"}
    first = client.post("/admin/faults", json=fault, headers=headers)
    second = client.post("/admin/faults", json=fault, headers=headers)
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(services(wallet).faults.book.active()) == 1
    assert client.delete("/admin/faults/nope", headers=ADMIN).status_code == 404


def test_metrics_and_probes(client: FlaskClient) -> None:
    play(client, "p1", "r1", 100, 40)
    token = client.post("/operator/token", json={"user": "p1"}).get_json()["token"]
    client.post("/transaction/bet", json={**_bet("big", 10**6), "token": token})
    client.post("/transaction/bet", json={**_bet("big", 10**6), "token": token})
    client.post("/admin/faults", json={"kind": "wallet_errors", "target": "*"}, headers=ADMIN)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["status"] == "ready"
    families = {
        f.name: f for f in text_string_to_metric_families(client.get("/metrics").data.decode())
    }
    requests = {
        (s.labels["operation"], s.labels["status"]): s.value
        for s in families["casino_wallet_operator_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("bet", "RS_OK")] == 1
    assert requests[("bet", "RS_ERROR_NOT_ENOUGH_MONEY")] == 2
    assert requests[("win", "RS_OK")] == 1
    counts = [
        s.value
        for s in families["casino_wallet_operator_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["operation"] == "bet"
    ]
    assert counts == [3]
    replays = families["casino_wallet_operator_replays"].samples
    assert [(s.labels["operation"], s.value) for s in replays if s.name.endswith("_total")] == [
        ("bet", 1)
    ]
    assert families["casino_wallet_users"].samples[0].value == 1
    assert families["casino_wallet_balance_total_minor"].samples[0].value == 940
    assert families["casino_wallet_initial_funds_minor"].samples[0].value == 1000
    active = {s.labels["kind"]: s.value for s in families["casino_wallet_faults_active"].samples}
    assert active == {"wallet_errors": 1, "wallet_timeout": 0}


def test_readiness_fails_when_the_database_does_not_answer(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/wallet.db")
    try:
        ok, why = _ready(engine)
    finally:
        engine.dispose()
    assert not ok
    assert "database" in why


@pytest.mark.postgres
def test_the_http_wallet_and_its_reports_on_postgres(
    make_wallet: Callable[..., Flask], postgres_schema: str
) -> None:
    app = make_wallet(database_url=postgres_schema, initial_balance=1000)
    client = app.test_client()
    for n in range(3):
        play(client, "p1", f"r{n}", 100, 50 * n)
    summary = client.get("/admin/ledger/summary", headers=ADMIN).get_json()
    assert (summary["total_balance"], summary["consistent"]) == (850, True)
    page = client.get("/admin/ledger/rounds?limit=2", headers=ADMIN).get_json()
    assert [r["round"] for r in page["rounds"]] == ["r0", "r1"]
    rest = client.get(f"/admin/ledger/rounds?after={page['next']}", headers=ADMIN).get_json()
    assert ([r["round"] for r in rest["rounds"]], rest["next"]) == (["r2"], None)
    assert client.get("/admin/users/p1", headers=ADMIN).get_json()["ledger_balance"] == 850
    assert client.get("/readyz").status_code == 200
