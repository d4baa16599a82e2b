"""The round flow against a fake wallet at the HTTP boundary (waitress on a free port)."""

from __future__ import annotations

import uuid

import pytest

from aggregator.region.breakers import CallResult
from aggregator.region.catalogue import Game, Volatility
from aggregator.region.rounds import NAMESPACE, RoundKeys, game_outcome
from tests.aggregator.region.conftest import MakeRegion, RegionHarness


def keys(round_id: str) -> RoundKeys:
    return RoundKeys.for_round(round_id)


def test_keys_are_uuid5_of_the_round_id() -> None:
    k = keys("r-17")
    assert k.bet == str(uuid.uuid5(NAMESPACE, "r-17:bet"))
    assert k.win == str(uuid.uuid5(NAMESPACE, "r-17:win"))
    assert k.rollback == str(uuid.uuid5(NAMESPACE, "r-17:rollback"))


def test_outcome_is_deterministic_and_returns_about_the_rtp() -> None:
    game = Game(
        id="g", name="G", category="slots", provider="p", rtp=0.96, volatility=Volatility.MEDIUM
    )
    assert [game_outcome(1, f"r{i}", game, 100) for i in range(50)] == [
        game_outcome(1, f"r{i}", game, 100) for i in range(50)
    ]
    n = 20_000
    paid = sum(game_outcome(1, f"r{i}", game, 100) for i in range(n))
    assert 0.90 < paid / (100 * n) < 1.02
    hits = sum(game_outcome(1, f"r{i}", game, 100) > 0 for i in range(2000)) / 2000
    assert 0.25 < hits < 0.35


def test_settled_round_moves_bet_and_win(make_region: MakeRegion) -> None:
    h = make_region()
    session = h.session("ne-starburst")
    for i in range(20):
        r = h.play(session, f"round-{i}", bet=100)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["status"] == "settled" and body["bet"] == 100
        assert body["balance"] == h.wallet.balance("p1")
    k = keys("round-3")
    assert k.bet in h.wallet.sent("bet") and k.win in h.wallet.sent("win")
    assert h.wallet.sent("rollback") == []
    total_win = sum(h.wallet.ledger[keys(f"round-{i}").win].fields["amount"] for i in range(20))
    assert h.wallet.balance("p1") == 1_000_000 - 20 * 100 + total_win
    assert h.metric("casino_rounds_total", provider="netent", outcome="settled") == 20
    assert h.metric("casino_wallet_requests_total", operation="bet", outcome="ok") == 20


def test_retried_round_gets_the_same_answer_and_moves_no_money_twice(
    make_region: MakeRegion,
) -> None:
    h = make_region()
    session = h.session("png-book-of-dead")
    first = h.play(session, "again").get_json()
    balance = h.wallet.balance("p1")
    second = h.play(session, "again").get_json()
    assert second["win"] == first["win"] and second["balance"] == first["balance"]
    assert h.wallet.balance("p1") == balance
    # a second region with the same seed answers the same round the same way
    other = make_region()
    third = other.play(other.session("png-book-of-dead"), "again").get_json()
    assert third["win"] == first["win"]
    assert h.wallet.balance("p1") == balance


def test_retry_of_a_paid_round_stays_settled_when_this_attempt_fails(
    make_region: MakeRegion,
) -> None:
    h = make_region()
    session = h.session("ne-starburst")
    first = h.play(session, "paid-1").get_json()
    balance = h.wallet.balance("p1")
    # this attempt's provider call fails: the rollback comes back "round already paid"
    h.admin(
        "POST", "/admin/faults", {"kind": "provider_errors", "target": "netent", "magnitude": 1}
    )
    retry = h.play(session, "paid-1")
    assert retry.status_code == 200, retry.get_json()
    assert retry.get_json()["win"] == first["win"] and retry.get_json()["status"] == "settled"
    # and when this attempt's bet gets no answer
    h.region.faults.remove(h.region.faults.active()[0].id)
    h.wallet.fail["bet"] = "error"
    again = h.play(session, "paid-1")
    assert again.status_code == 200 and again.get_json()["win"] == first["win"]
    assert h.wallet.balance("p1") == balance


def stranded_bet(h: RegionHarness, game: str, round_id: str, bet: int = 100) -> None:
    """A bet an earlier attempt placed before its region died (no win, no rollback)."""
    body = {
        "user": "p1",
        "token": "tok",
        "round": round_id,
        "currency": "EUR",
        "game_code": game,
        "transaction_uuid": keys(round_id).bet,
        "amount": bet,
        "round_closed": False,
    }
    assert h.wallet.handle("bet", body)["status"] == "RS_OK"


@pytest.mark.parametrize("why", ["not_in_region", "isolated", "breaker_open"])
def test_a_refused_retry_rolls_back_the_bet_an_earlier_attempt_left(
    make_region: MakeRegion, why: str
) -> None:
    eu = make_region()
    session = eu.session("ne-starburst")  # netent: eu only
    stranded_bet(eu, "ne-starburst", "stranded-1")
    assert eu.wallet.balance("p1") == 1_000_000 - 100
    h = make_region("latam") if why == "not_in_region" else eu
    if why == "isolated":
        eu.region.state.isolate("netent", "test")
    if why == "breaker_open":
        for _ in range(5):
            eu.region.breakers["netent"].record(CallResult.FAILURE)
    r = h.play(session, "stranded-1")
    assert r.status_code in (409, 503)
    assert r.get_json()["money"] == "none"
    assert eu.wallet.sent("rollback") == [keys("stranded-1").rollback]
    assert eu.wallet.balance("p1") == 1_000_000  # "money": "none" is true
    assert h.metric("casino_rounds_total", provider="netent", outcome="rejected") == 1


def test_a_refused_retry_of_a_round_paid_elsewhere_answers_settled(
    make_region: MakeRegion,
) -> None:
    eu, latam = make_region(), make_region("latam")
    session = eu.session("ne-starburst")
    first = eu.play(session, "paid-elsewhere").get_json()
    balance = eu.wallet.balance("p1")
    again = latam.play(session, "paid-elsewhere")
    assert again.status_code == 200
    assert (again.get_json()["status"], again.get_json()["win"]) == ("settled", first["win"])
    assert eu.wallet.balance("p1") == balance


@pytest.mark.parametrize(
    ("user", "token", "bet", "status", "error"),
    [
        ("poor", "tok", 2_000_000, 402, "rs_error_not_enough_money"),
        ("p1", "bad-token", 100, 401, "rs_error_invalid_token"),
    ],
)
def test_business_refusals_move_no_money_and_do_not_touch_the_breaker(
    make_region: MakeRegion, user: str, token: str, bet: int, status: int, error: str
) -> None:
    h = make_region()
    session = h.session("evo-crazy-time", user=user, token=token)
    for i in range(8):
        r = h.play(session, f"b{i}", bet=bet)
        assert r.status_code == status
        assert r.get_json()["error"] == error
        assert r.get_json()["money"] == "none"
    assert h.wallet.balance(user) == 1_000_000
    assert h.wallet.sent("rollback") == []
    assert h.region.breakers["evolution"].snapshot().consecutive_failures == 0
    assert h.metric("casino_rounds_total", outcome="declined") == 8
    assert h.metric("casino_wallet_requests_total", operation="bet", outcome="declined") == 8


@pytest.mark.parametrize("mode", ["error", "unknown", ("stall", 0.5)])
def test_bet_without_definite_answer_is_rolled_back(make_region: MakeRegion, mode: object) -> None:
    h = make_region(wallet_timeout_s=0.2)
    h.wallet.fail["bet"] = mode
    r = h.play(h.session("ne-starburst"), "rb-1")
    assert r.status_code == 503
    assert r.get_json()["error"] == "wallet_unavailable"
    assert r.get_json()["money"] == "none"
    assert h.wallet.sent("rollback") == [keys("rb-1").rollback]
    assert h.wallet.sent("win") == []
    assert h.wallet.balance("p1") == 1_000_000  # refunded (or never taken)
    assert h.region.queue.stats()[0] == 0
    expected = "timeout" if isinstance(mode, tuple) else "error"
    assert h.metric("casino_wallet_requests_total", operation="bet", outcome=expected) == 1


def test_bet_and_rollback_failing_queues_the_rollback(make_region: MakeRegion) -> None:
    h = make_region()
    h.wallet.fail.update(bet="error", rollback="error")
    r = h.play(h.session("ne-starburst"), "rb-2")
    # the void rollback got no answer: the outcome is unknown, so no "money" claim
    assert r.status_code == 503 and "money" not in r.get_json()
    assert r.get_json()["error"] == "wallet_unavailable"
    assert h.region.queue.stats()[0] == 1
    assert h.region.queue.items()[0]["transaction_uuid"] == keys("rb-2").rollback
    h.wallet.fail.clear()
    assert h.region.queue.replay(10).settled == 1
    assert h.wallet.ledger[keys("rb-2").rollback].response["status"] == (
        "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"  # the bet never landed: a tombstone
    )
    # the client's retry of that round now sees the tombstone: a definite "no money"
    retry = h.play(h.session("ne-starburst"), "rb-2")
    assert retry.status_code == 409
    assert retry.get_json() | {"message": ""} == {
        "error": "rs_error_transaction_rolled_back",
        "message": "",
        "money": "none",
    }


def test_provider_failure_after_the_bet_rolls_it_back(make_region: MakeRegion) -> None:
    h = make_region()
    h.admin(
        "POST", "/admin/faults", {"kind": "provider_errors", "target": "netent", "magnitude": 1}
    )
    r = h.play(h.session("ne-starburst"), "pf-1")
    assert r.status_code == 503
    assert r.get_json()["error"] == "provider_unavailable" and r.get_json()["money"] == "none"
    assert h.wallet.sent("bet") == [keys("pf-1").bet]
    assert h.wallet.sent("rollback") == [keys("pf-1").rollback]
    assert h.wallet.balance("p1") == 1_000_000
    assert h.metric("casino_rounds_total", provider="netent", outcome="provider_unavailable") == 1


def test_failed_win_is_owed_queued_and_paid_by_the_replay(make_region: MakeRegion) -> None:
    h = make_region()
    session = h.session("pp-gates-of-olympus")
    h.wallet.fail["win"] = "error"
    results = [h.play(session, f"w{i}").get_json() for i in range(10)]
    assert all(r["status"] == "settled" and r["win_pending"] for r in results)
    assert h.region.queue.stats()[0] == 10
    assert h.metric("casino_rounds_total", outcome="win_pending") == 10
    h.wallet.fail.clear()
    report = h.region.queue.replay(100)
    assert (report.replayed, report.settled, report.failed, report.remaining) == (10, 10, 0, 0)
    expected = 1_000_000 - 10 * 100 + sum(r["win"] for r in results)
    assert h.wallet.balance("p1") == expected


def test_session_from_elsewhere_or_forged_is_refused(make_region: MakeRegion) -> None:
    h = make_region()
    r = h.client.post("/player/round", json={"session": "x.y", "round": "r", "bet": 1})
    assert r.status_code == 401
    latam = make_region("latam")
    eu_only = h.session("ne-starburst")  # netent is not integrated in latam
    r = latam.play(eu_only, "r-x")
    assert r.status_code == 409
    assert r.get_json()["error"] == "provider_not_in_region"
    assert r.get_json()["money"] == "none"
    assert latam.wallet.sent("bet") == []


@pytest.mark.parametrize("bet", [0, -5, 1.5, True, "100", None])
def test_bad_bets_are_400(harness_eu: RegionHarness, bet: object) -> None:
    r = harness_eu.play(harness_eu.session("ne-starburst"), "r", bet=bet)  # type: ignore[arg-type]
    assert r.status_code == 400
    assert r.get_json()["error"] == "invalid_bet"


@pytest.fixture
def harness_eu(make_region: MakeRegion) -> RegionHarness:
    return make_region()
