"""The wallet's HTTP API in the Hub88 shape: answers, ledger rules end to end, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aggregator.wallet.tokens import TokenSigner
from tests.aggregator.wallet.conftest import services
from tests.aggregator.wallet.wallet_checks import ledger_rows

RESPONSE_KEYS = {"user", "status", "request_uuid", "currency", "balance"}


def register(client: FlaskClient, user: str = "p1") -> str:
    answer = client.post("/operator/token", json={"user": user})
    assert answer.status_code == 200
    return str(answer.get_json()["token"])


def call(client: FlaskClient, kind: str, token: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    body = {"user": "p1", "token": token, "currency": "EUR", "round": "r1", **fields}
    answer = client.post(f"/transaction/{kind}", json=body)
    return answer.status_code, answer.get_json()


def test_token_registers_once_and_answers_in_the_hub88_shape(client: FlaskClient) -> None:
    first = client.post("/operator/token", json={"user": "p1"}).get_json()
    assert first == {
        "user": "p1",
        "token": first["token"],
        "currency": "EUR",
        "balance": 1000,
    }
    token = first["token"]
    http, bet = call(client, "bet", token, transaction_uuid="b1", amount=300, request_uuid="q1")
    assert http == 200
    assert bet == {
        "user": "p1",
        "status": "RS_OK",
        "request_uuid": "q1",
        "currency": "EUR",
        "balance": 700,
    }
    again = client.post("/operator/token", json={"user": "p1"}).get_json()
    assert again["balance"] == 700, "a second registration must not credit the user again"
    assert again["token"] == token
    balance = client.post(
        "/user/balance", json={"user": "p1", "token": token, "request_uuid": "q2"}
    ).get_json()
    assert balance == {**bet, "request_uuid": "q2"}


# The round rules (bets, wins, rollbacks and their answers) are tested from the shared table
# in tests/aggregator/round_cases.py, by test_wallet_rounds.py.


GOOD_BET = {
    "user": "p1",
    "transaction_uuid": "b1",
    "round": "r1",
    "currency": "EUR",
    "amount": 100,
}
BAD_INPUT = {
    "not json": (b"{not json", "RS_ERROR_WRONG_SYNTAX"),
    "json array": (b"[1, 2]", "RS_ERROR_WRONG_SYNTAX"),
    "empty body": (b"", "RS_ERROR_WRONG_SYNTAX"),
    "missing amount": (
        {k: v for k, v in GOOD_BET.items() if k != "amount"},
        "RS_ERROR_WRONG_SYNTAX",
    ),
    "missing uuid": (
        {k: v for k, v in GOOD_BET.items() if k != "transaction_uuid"},
        "RS_ERROR_WRONG_SYNTAX",
    ),
    "missing token": ("no-token", "RS_ERROR_WRONG_SYNTAX"),
    "empty user": ({**GOOD_BET, "user": ""}, "RS_ERROR_WRONG_SYNTAX"),
    "negative amount": ({**GOOD_BET, "amount": -1}, "RS_ERROR_WRONG_TYPES"),
    "float amount": ({**GOOD_BET, "amount": 1.5}, "RS_ERROR_WRONG_TYPES"),
    "integral float amount": ({**GOOD_BET, "amount": 100.0}, "RS_ERROR_WRONG_TYPES"),
    "bool amount": ({**GOOD_BET, "amount": True}, "RS_ERROR_WRONG_TYPES"),
    "string amount": ({**GOOD_BET, "amount": "100"}, "RS_ERROR_WRONG_TYPES"),
    "huge amount": ({**GOOD_BET, "amount": 10**30}, "RS_ERROR_WRONG_TYPES"),
    "numeric user": ({**GOOD_BET, "user": 17}, "RS_ERROR_WRONG_TYPES"),
    "wrong currency": ({**GOOD_BET, "currency": "USD"}, "RS_ERROR_WRONG_CURRENCY"),
}


@pytest.mark.parametrize(("body", "status"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_400_with_the_status_and_no_ledger_row(
    client: FlaskClient, wallet: Flask, body: Any, status: str
) -> None:
    token = register(client)
    if body == "no-token":
        data = json.dumps(GOOD_BET).encode()
    elif isinstance(body, dict):
        data = json.dumps({**body, "token": token}).encode()
    else:
        data = body
    answer = client.post("/transaction/bet", data=data, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["status"] == status
    assert set(answer.get_json()) >= RESPONSE_KEYS
    assert ledger_rows(services(wallet).engine) == []
    assert client.post("/operator/token", json={"user": "p1"}).get_json()["balance"] == 1000


def test_win_without_reference_and_balance_in_wrong_currency_are_400(client: FlaskClient) -> None:
    token = register(client)
    http, answer = call(client, "win", token, transaction_uuid="w1", amount=5)
    assert (http, answer["status"]) == (400, "RS_ERROR_WRONG_SYNTAX")
    balance = client.post("/user/balance", json={"user": "p1", "token": token, "currency": "USD"})
    assert balance.status_code == 400
    assert balance.get_json()["status"] == "RS_ERROR_WRONG_CURRENCY"


@pytest.mark.parametrize("case", ["garbage", "other user's", "other secret", "never registered"])
def test_bad_token_is_invalid_token_and_moves_nothing(
    client: FlaskClient, wallet: Flask, case: str
) -> None:
    register(client, "p1")
    tokens = {
        "garbage": "not-a-token",
        "other user's": register(client, "p2"),
        "other secret": TokenSigner("another-secret").issue("p1"),
        "never registered": TokenSigner("test-wallet-secret").issue("ghost"),
    }
    user = "ghost" if case == "never registered" else "p1"
    body = {**GOOD_BET, "user": user, "token": tokens[case]}
    for path in ("/transaction/bet", "/user/balance"):
        answer = client.post(path, json=body)
        assert answer.status_code == 200
        assert answer.get_json()["status"] == "RS_ERROR_INVALID_TOKEN"
        assert answer.get_json()["balance"] == 0
    assert ledger_rows(services(wallet).engine) == []


@pytest.mark.parametrize("body", [{}, {"user": ""}, {"user": 5}, {"user": "x" * 129}])
def test_token_endpoint_refuses_bad_users(client: FlaskClient, body: dict[str, Any]) -> None:
    answer = client.post("/operator/token", json=body)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_user"
