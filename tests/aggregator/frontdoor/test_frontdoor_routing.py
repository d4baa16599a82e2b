from __future__ import annotations

from collections import Counter

import pytest

from aggregator.errors import ConfigError, NotFound
from aggregator.frontdoor.routing import Health, Region, RegionTable, parse_regions

USERS = [f"p{i}" for i in range(4000)]


def table(**weights: float) -> RegionTable:
    return RegionTable([Region(id=k, url=f"http://{k}", weight=w) for k, w in weights.items()])


def first_choice(t: RegionTable, user: str) -> str:
    return t.launch_order(user)[0].id


def test_weighted_choice_follows_weights() -> None:
    t = table(eu=3.0, latam=1.0)
    shares = Counter(first_choice(t, u) for u in USERS)
    assert shares["eu"] / len(USERS) == pytest.approx(0.75, abs=0.03)


def test_choice_is_sticky_and_moves_only_the_lost_regions_users() -> None:
    t = table(eu=1.0, latam=1.0, apac=1.0)
    before = {u: first_choice(t, u) for u in USERS}
    assert before == {u: first_choice(t, u) for u in USERS}
    t.record_probe("apac", False, at=1.0)
    t.record_probe("apac", False, at=2.0)
    during = {u: first_choice(t, u) for u in USERS}
    moved = [u for u in USERS if before[u] != during[u]]
    assert moved and all(before[u] == "apac" for u in moved)
    assert "apac" not in during.values()
    t.record_probe("apac", True, at=3.0)
    t.record_probe("apac", True, at=4.0)
    assert before == {u: first_choice(t, u) for u in USERS}


def test_drain_stops_new_sessions_but_keeps_existing_ones_home() -> None:
    t = table(eu=1.0, latam=1.0)
    assert t.set_drained("eu", True) is True
    assert t.set_drained("eu", True) is False
    assert {first_choice(t, u) for u in USERS[:200]} == {"latam"}
    assert t.round_order("eu", "p1")[0].id == "eu"
    view = {v.id: v for v in t.snapshot()}
    assert view["eu"].effective_weight == 0.0 and view["eu"].drained
    t.set_drained("eu", False)
    assert "eu" in {first_choice(t, u) for u in USERS[:200]}


def test_all_drained_leaves_no_region_for_new_sessions() -> None:
    t = table(eu=1.0)
    t.set_drained("eu", True)
    assert t.launch_order("p1") == []
    assert [r.id for r in t.round_order("eu", "p1")] == ["eu"]


def test_round_fails_over_when_home_is_down_and_prefers_undrained() -> None:
    t = table(eu=1.0, latam=1.0, apac=1.0)
    t.set_drained("apac", True)
    for at in (1.0, 2.0):
        t.record_probe("eu", False, at=at, error="refused")
    order = [r.id for r in t.round_order("eu", "p1")]
    assert order == ["latam", "apac"]


def test_health_needs_two_results_to_flip() -> None:
    t = table(eu=1.0)
    assert t.record_probe("eu", False, at=1.0) is Health.UP
    assert t.record_probe("eu", True, at=2.0) is Health.UP  # a success resets the count
    assert t.record_probe("eu", False, at=3.0) is Health.UP
    assert t.record_probe("eu", False, at=4.0) is Health.DOWN
    assert t.record_probe("eu", True, at=5.0) is Health.DOWN
    assert t.record_probe("eu", True, at=6.0) is Health.UP
    assert t.snapshot()[0].last_check_at == 6.0


def test_suspect_is_avoided_until_the_next_good_probe() -> None:
    t = table(eu=1.0, latam=1.0)
    t.mark_suspect("eu", "reset")
    assert {first_choice(t, u) for u in USERS[:100]} == {"latam"}
    t.record_probe("eu", True, at=1.0)
    assert "eu" in {first_choice(t, u) for u in USERS[:100]}


def test_nothing_healthy_falls_back_to_trying_everything() -> None:
    t = table(eu=1.0, latam=1.0)
    for rid in ("eu", "latam"):
        t.mark_suspect(rid, "down")
    assert {r.id for r in t.launch_order("p1")} == {"eu", "latam"}
    assert t.round_order("eu", "p1")[0].id == "eu"


def test_unknown_region_is_not_found() -> None:
    with pytest.raises(NotFound, match="'mars'"):
        table(eu=1.0).set_drained("mars", True)


@pytest.mark.parametrize(
    ("regions", "weights"),
    [
        (["eu"], []),
        (["eu=ftp://x"], []),
        (["eu=http://x"], ["latam=2"]),
        (["eu=http://x"], ["eu=heavy"]),
        (["eu=http://x"], ["eu=-1"]),
        (["eu=http://x", "eu=http://y"], []),
    ],
)
def test_bad_region_arguments(regions: list[str], weights: list[str]) -> None:
    with pytest.raises(ConfigError):
        RegionTable(parse_regions(regions, weights))


def test_parse_regions() -> None:
    parsed = parse_regions(["eu=http://a:1/", "latam=http://b:2"], ["eu=2.5"])
    assert parsed == [
        Region(id="eu", url="http://a:1", weight=2.5),
        Region(id="latam", url="http://b:2", weight=1.0),
    ]
