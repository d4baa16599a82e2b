"""The round rules of tests/aggregator/round_cases.py against the wallet over HTTP: every call
answers as the table says, the ledger holds exactly the rows the table predicts (the rows the
reconciler's half of the table classifies), every round ends in its state, and the reconciler
reading the wallet's own admin API finds nothing wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from aggregator.errors import ConfigError
from aggregator.reconcile import round_facts
from aggregator.wallet import schema
from tests.aggregator.round_cases import CASES, INITIAL, USERS, RoundCase, comparable, ledger_rounds
from tests.aggregator.wallet.conftest import ADMIN, services
from tests.aggregator.wallet.wallet_checks import check_ledger

RESPONSE_KEYS = {"user", "status", "request_uuid", "currency", "balance"}


@pytest.fixture
def tokens(client: FlaskClient) -> dict[str, str]:
    answers = {user: client.post("/operator/token", json={"user": user}) for user in USERS}
    assert all(a.get_json()["balance"] == INITIAL for a in answers.values())
    return {user: str(a.get_json()["token"]) for user, a in answers.items()}


def wallet_rounds(client: FlaskClient) -> list[dict[str, Any]]:
    answer = client.get("/admin/ledger/rounds?limit=1000", headers=ADMIN)
    assert answer.status_code == 200
    return list(answer.get_json()["rounds"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_round_rules_over_http(
    client: FlaskClient, wallet: Flask, tokens: dict[str, str], case: RoundCase
) -> None:
    for n, call in enumerate(case.calls):
        answer = client.post(
            f"/transaction/{call.kind}", json={**call.body(), "token": tokens[call.user]}
        )
        got = answer.get_json()
        assert set(got) >= RESPONSE_KEYS, got
        assert (answer.status_code, got["status"], got["balance"]) == (
            call.http,
            call.status,
            call.balance,
        ), f"call {n}: {call}"
    check_ledger(services(wallet).engine)
    rounds = wallet_rounds(client)
    assert comparable(rounds) == comparable(ledger_rounds(case))
    assert {r["round"]: r["state"] for r in rounds} == case.states
    assert [round_facts(r).problems for r in rounds] == [() for _ in rounds]


def _legacy_database(url: str, bets: int) -> None:
    """A wallet database from before the one-bet-a-round index, with `bets` taken in round r1."""
    engine = sa.create_engine(url)
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX {schema.one_bet_per_round.name}"))
        for n in range(bets):
            conn.execute(
                schema.transactions.insert().values(
                    transaction_uuid=f"b{n}", user_id="p1", kind="bet", round="r1", amount=1,
                    delta=-1, currency="EUR", status="RS_OK", balance=0, created_at=0.0,
                )
            )  # fmt: skip
    engine.dispose()


def _index_names(engine: sa.Engine) -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(engine).get_indexes("wallet_transactions")}


@pytest.mark.postgres
def test_an_older_database_gets_the_one_bet_a_round_index(postgres_schema: str) -> None:
    _legacy_database(postgres_schema, bets=1)
    engine = schema.make_engine(postgres_schema)
    try:
        assert schema.one_bet_per_round.name in _index_names(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_older_database_with_two_bets_in_a_round_is_refused(postgres_schema: str) -> None:
    _legacy_database(postgres_schema, bets=2)
    with pytest.raises(ConfigError, match="two bets that took money"):
        schema.make_engine(postgres_schema)


def test_sqlite_needs_no_index_for_it(tmp_path: Path) -> None:
    """One writer at a time decides every call on SQLite: the index would only cost time."""
    engine = schema.make_engine(f"sqlite:///{tmp_path}/w.db")
    try:
        assert schema.one_bet_per_round.name not in _index_names(engine)
    finally:
        engine.dispose()
