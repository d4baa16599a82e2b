from __future__ import annotations

from collections import Counter

import pytest

from aggregator.errors import NotFound, Unavailable
from aggregator.faults import FaultKind
from aggregator.region.breakers import CallResult
from aggregator.region.launch import LaunchOutcome
from tests.aggregator.region.conftest import MakeRegion


def test_game_launch_goes_to_its_provider(make_region: MakeRegion) -> None:
    h = make_region()
    choice = h.region.router.launch(game_id="ne-starburst")
    assert (choice.provider, choice.game.id, choice.outcome) == (
        "netent",
        "ne-starburst",
        LaunchOutcome.OK,
    )
    assert h.metric("casino_game_launches_total", provider="netent", outcome="ok") == 1


def test_isolated_provider_gets_no_launches_they_fail_over_within_the_category(
    make_region: MakeRegion,
) -> None:
    h = make_region()
    h.region.state.isolate("netent", "test")
    providers: Counter[str] = Counter()
    for _ in range(50):
        choice = h.region.router.launch(game_id="ne-starburst")
        assert choice.outcome is LaunchOutcome.FAILOVER
        assert choice.game.category == "slots"
        providers[choice.provider] += 1
    assert "netent" not in providers
    assert len(providers) >= 3  # spread over the other slot providers
    # category launches never even pick it: its games have left the lobby
    for _ in range(100):
        choice = h.region.router.launch(category="slots")
        assert choice.provider != "netent"
        assert choice.outcome is LaunchOutcome.OK
    assert h.metric("casino_failover_events_total", kind="provider_failover") == 50


def test_breaker_open_provider_is_skipped(make_region: MakeRegion) -> None:
    h = make_region()
    for _ in range(5):
        h.region.breakers["spribe"].record(CallResult.FAILURE)
    choice = h.region.router.launch(game_id="sp-aviator")
    assert choice.outcome is LaunchOutcome.FAILOVER
    assert choice.provider != "spribe"
    assert choice.game.category == "crash"
    assert choice.tried == (choice.provider,)  # no launch call was sent to spribe
    assert (
        h.metric(
            "casino_provider_requests_total",
            provider="spribe",
            operation="launch",
            outcome="rejected",
        )
        == 1
    )


def test_failed_launch_call_fails_over_and_feeds_the_breaker(make_region: MakeRegion) -> None:
    h = make_region()
    h.admin("POST", "/admin/faults", {"kind": "provider_down", "target": "evolution"})
    choice = h.region.router.launch(game_id="evo-crazy-time")
    assert choice.outcome is LaunchOutcome.FAILOVER
    assert choice.tried[0] == "evolution"
    assert choice.latency_s >= h.region.catalogue.providers["evolution"].timeout_s
    assert h.region.breakers["evolution"].snapshot().consecutive_failures == 1


def test_no_provider_left_means_launch_failed(make_region: MakeRegion) -> None:
    h = make_region()
    h.admin("POST", "/admin/faults", {"kind": "provider_down", "target": "*"})
    with pytest.raises(Unavailable) as info:
        h.region.router.launch(category="live")
    assert info.value.code == "launch_failed"
    assert h.metric("casino_game_launches_total", outcome="failed") == 1
    response = h.launch(category="table")
    assert response.status_code == 503
    assert response.get_json()["error"] == "launch_failed"


def test_unknown_game_or_category(make_region: MakeRegion) -> None:
    h = make_region()
    with pytest.raises(NotFound, match="'nope'"):
        h.region.router.launch(game_id="nope")
    response = h.launch(category="bingo")
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown_category"
    assert "'bingo'" in response.get_json()["message"]
    assert h.launch().status_code == 422  # neither game nor category


@pytest.mark.parametrize("percent", [10, 30])
def test_canary_share_of_launches(make_region: MakeRegion, percent: int) -> None:
    h = make_region(rng_seed=percent)
    h.admin("POST", "/admin/providers/hacksaw/isolate", {"reason": "test"})
    h.admin("POST", "/admin/providers/hacksaw/restore", {"canary_percent": percent})
    n = 2000
    outcomes = Counter(h.region.router.launch(game_id="hs-chaos-crew").outcome for _ in range(n))
    share = outcomes[LaunchOutcome.OK] / n
    # binomial: 4 standard deviations is about 2.7 points at 30 %
    sd = (percent / 100 * (1 - percent / 100) / n) ** 0.5
    assert abs(share - percent / 100) < 4 * sd + 0.005, outcomes
    # the rest failed over to other providers (rare provider errors aside)
    assert outcomes[LaunchOutcome.FAILOVER] + outcomes[LaunchOutcome.OK] >= n - 5


def test_canary_is_deterministic_with_a_seeded_rng(make_region: MakeRegion) -> None:
    runs = []
    for _ in range(2):
        h = make_region(rng_seed=5)
        h.region.state.restore("netent", 50.0)
        runs.append([h.region.router.launch(game_id="ne-starburst").provider for _ in range(40)])
    assert runs[0] == runs[1]


def test_launch_api_answers_a_signed_session(make_region: MakeRegion) -> None:
    h = make_region()
    body = h.launch(game="evo-crazy-time").get_json()
    assert body["region"] == "eu"
    assert body["outcome"] == "ok"
    assert body["provider"] == "evolution"
    assert body["session"].count(".") == 1
    assert h.metric("casino_active_sessions", provider="evolution") == 1
    h.clock.advance(301)  # "active" means used in the last five minutes
    assert h.metric("casino_active_sessions", provider="evolution") == 0
    h.region.faults.add(FaultKind.REGION_DOWN, "eu", 1, 60)
    down = h.launch(game="evo-crazy-time")
    assert down.status_code == 503
    assert down.get_json()["error"] == "region_down"
    assert "money" not in down.get_json()
