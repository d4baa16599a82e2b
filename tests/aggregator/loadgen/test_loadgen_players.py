from __future__ import annotations

import random

import pytest
from loadgen_fakes import INITIAL, FakeTarget

from aggregator.loadgen.client import Reply
from aggregator.loadgen.players import (
    Driver,
    PlayConfig,
    Player,
    Verdict,
    judge_round,
    make_players,
    retry_schedule,
)
from aggregator.loadgen.report import Stats, percentile

CONFIG = PlayConfig(bet=100, categories=("slots", "live"), rounds_per_session=(3, 3))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


def driver(fake: FakeTarget, time_: FakeTime, config: PlayConfig = CONFIG) -> tuple[Driver, Stats]:
    stats = Stats()
    return Driver(fake, stats, config, clock=time_.clock, sleep=time_.sleep), stats


def joined(d: Driver, user: str = "p0") -> Player:
    player = Player(user, random.Random(1), "run")
    assert d.join(player)
    return player


def test_expected_balances_follow_settled_rounds(fake: FakeTarget, time_: FakeTime) -> None:
    d, stats = driver(fake, time_)
    players = make_players(4, random.Random(7), "run")
    for player in players:
        assert d.join(player)
    for _ in range(25):
        for player in players:
            d.step(player)
    report = stats.report(elapsed_s=1.0, target_rate=1.0)
    for player in players:
        entry = report["players"][player.user]
        assert entry["expected_balance"] == fake.balances[player.user]
        assert entry["initial_balance"] == INITIAL
        assert entry["rounds_settled"] == 25
    assert report["rounds"] == {"attempted": 100, "settled": 100, "failed": 0, "unknown": 0}
    # three rounds per session: 25 rounds need 9 launches per player
    assert report["launches"]["attempted"] == report["launches"]["ok"] == 36
    assert {c["category"] for c in fake.launch_calls} <= {"slots", "live"}


def test_round_ids_are_unique_and_seeded(fake: FakeTarget, time_: FakeTime) -> None:
    d, _ = driver(fake, time_)
    player = joined(d)
    for _ in range(10):
        d.step(player)
    assert len(set(fake.round_calls)) == 10
    assert fake.round_calls[0] == "run-p0-1"
    again = make_players(3, random.Random(7), "run")
    assert [p.rng.random() for p in again] == [
        p.rng.random() for p in make_players(3, random.Random(7), "run")
    ]


def test_unknown_outcome_is_retried_with_the_same_round_id(
    fake: FakeTarget, time_: FakeTime
) -> None:
    d, stats = driver(fake, time_)
    player = joined(d)
    fake.script["run-p0-1"] = [
        Reply(status=None, error="timeout"),
        Reply(status=502, body={"error": "bad_gateway"}),
        Reply(status=503, body={"error": "region_down"}),
    ]
    d.step(player)
    assert fake.round_calls == ["run-p0-1"] * 4
    assert time_.sleeps == [0.25, 0.5, 1.0]
    report = stats.report(elapsed_s=1.0, target_rate=1.0)
    assert report["rounds"]["settled"] == 1 and report["retries"] == 3
    assert report["players"]["p0"]["expected_balance"] == fake.balances["p0"]
    assert report["latency_ms"]["round"]["p50"] == pytest.approx(1750.0)


def test_unknown_after_every_try_is_reported_and_not_counted(
    fake: FakeTarget, time_: FakeTime
) -> None:
    d, stats = driver(fake, time_)
    player = joined(d)
    fake.script["run-p0-1"] = [Reply(status=None, error="timeout")] * 20
    d.step(player)
    assert fake.round_calls == ["run-p0-1"] * 10
    assert sum(time_.sleeps) == pytest.approx(sum(retry_schedule(CONFIG)))
    assert 15 <= sum(time_.sleeps) <= 25
    report = stats.report(elapsed_s=1.0, target_rate=1.0)
    assert report["rounds"]["unknown"] == 1
    assert report["unknown_rounds"] == [
        {"round": "run-p0-1", "user": "p0", "bet": 100, "last_error": "timeout"}
    ]
    assert report["players"]["p0"]["expected_balance"] == INITIAL
    assert player.session is None  # the next round starts with a fresh launch


def test_retry_window_bounds_slow_tries(fake: FakeTarget, time_: FakeTime) -> None:
    class Slow(FakeTarget):
        def round(self, body: dict[str, object]) -> Reply:
            time_.now += 9.0  # each try ends in a 9 s timeout
            return Reply(status=None, error="timeout")

    slow = Slow()
    d, stats = driver(slow, time_)
    player = joined(d)
    d.step(player)
    assert stats.counts()["rounds_unknown"] == 1
    assert time_.now < 35


@pytest.mark.parametrize(
    ("reply", "relaunch"),
    [
        (Reply(status=409, body={"error": "provider_isolated"}), True),
        (Reply(status=409, body={"error": "provider_not_in_region", "money": "none"}), True),
        (Reply(status=503, body={"error": "provider_unavailable", "money": "none"}), True),
        (Reply(status=503, body={"error": "wallet_unavailable", "money": "none"}), False),
        (Reply(status=402, body={"error": "rs_error_not_enough_money", "money": "none"}), False),
    ],
)
def test_definite_failures_are_not_retried(
    fake: FakeTarget, time_: FakeTime, reply: Reply, relaunch: bool
) -> None:
    d, stats = driver(fake, time_)
    player = joined(d)
    fake.script["run-p0-1"] = [reply]
    d.step(player)
    assert fake.round_calls == ["run-p0-1"]
    assert time_.sleeps == []
    assert stats.counts()["rounds_failed"] == 1
    d.step(player)
    assert len(fake.launch_calls) == (2 if relaunch else 1)
    assert (
        stats.report(elapsed_s=1, target_rate=1)["players"]["p0"]["expected_balance"]
        == (fake.balances["p0"])
    )


def test_failed_launch_and_invalid_token(fake: FakeTarget, time_: FakeTime) -> None:
    d, stats = driver(fake, time_)
    player = joined(d)
    fake.launch_script = [
        Reply(status=503, body={"error": "launch_failed"}),
        Reply(status=401, body={"error": "invalid_token"}),
        Reply(status=200, body={"session": "s-p0-x", "outcome": "failover"}),
    ]
    d.step(player)
    d.step(player)
    assert player.token is None
    d.step(player)
    launches = stats.report(elapsed_s=1, target_rate=1)["launches"]
    assert launches == {"attempted": 3, "ok": 0, "failover": 1, "failed": 2}
    assert fake.round_calls == ["run-p0-1"]


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (Reply(status=None, error="reset"), Verdict.RETRY),
        (Reply(status=200, body={"status": "settled"}), Verdict.SETTLED),
        (Reply(status=500, body={"error": "internal"}), Verdict.RETRY),
        (Reply(status=504, body={}), Verdict.RETRY),
        (Reply(status=503, body={"error": "x", "money": "none"}), Verdict.FAILED),
        (Reply(status=400, body={"error": "bad_request"}), Verdict.FAILED),
    ],
)
def test_judge_round(reply: Reply, verdict: Verdict) -> None:
    assert judge_round(reply) is verdict


def test_percentiles() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
