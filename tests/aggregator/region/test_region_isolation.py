from __future__ import annotations

from pathlib import Path

from tests.aggregator.region.conftest import MakeRegion


def test_isolated_provider_gets_no_launches_or_bets(make_region: MakeRegion) -> None:
    h = make_region()
    session = h.session("evo-crazy-time")
    assert h.play(session, "before").status_code == 200
    r = h.admin("POST", "/admin/providers/evolution/isolate", {"reason": "p99 latency"})
    assert r.get_json() == {
        "region": "eu",
        "provider": "evolution",
        "isolated": True,
        "reason": "p99 latency",
        "canary_percent": 100.0,
        "changed": True,
    }
    bets_before = len(h.wallet.sent("bet"))
    refused = h.play(session, "after")
    assert refused.status_code == 409
    assert refused.get_json()["error"] == "provider_isolated"
    assert refused.get_json()["money"] == "none"
    assert len(h.wallet.sent("bet")) == bets_before
    for _ in range(30):
        assert h.launch(category="live").get_json()["provider"] != "evolution"
    direct = h.launch(game="evo-crazy-time").get_json()
    assert direct["outcome"] == "failover" and direct["provider"] != "evolution"
    lobby = h.client.get("/player/lobby").get_json()["categories"]
    assert all(g["provider"] != "evolution" for games in lobby.values() for g in games)
    assert h.metric("casino_provider_isolated", provider="evolution") == 1
    assert h.metric("casino_provider_isolated", provider="netent") == 0
    assert (
        h.metric(
            "casino_provider_requests_total", provider="evolution", operation="launch", outcome="ok"
        )
        == 0
    )


def test_open_rounds_still_settle_their_win_after_isolation(make_region: MakeRegion) -> None:
    h = make_region()
    # the provider is isolated while the round is between its bet and its win
    h.wallet.hooks["bet"] = lambda: h.region.state.isolate("netent", "mid-round")
    r = h.play(h.session("ne-starburst"), "open-1")
    assert r.status_code == 200 and r.get_json()["status"] == "settled"
    assert h.wallet.sent("win") and h.region.state.is_isolated("netent")


def test_open_rounds_still_settle_their_rollback_after_isolation(make_region: MakeRegion) -> None:
    h = make_region()
    h.admin(
        "POST", "/admin/faults", {"kind": "provider_errors", "target": "netent", "magnitude": 1}
    )
    h.wallet.hooks["bet"] = lambda: h.region.state.isolate("netent", "mid-round")
    r = h.play(h.session("ne-starburst"), "open-2")
    assert r.status_code == 503 and r.get_json()["error"] == "provider_unavailable"
    rollback = h.wallet.ledger[h.wallet.sent("rollback")[0]]
    assert rollback.response["status"] == "RS_OK"
    assert h.wallet.balance("p1") == 1_000_000


def test_queued_wins_and_rollbacks_of_an_isolated_provider_still_settle(
    make_region: MakeRegion,
) -> None:
    h = make_region()
    session = h.session("ne-starburst")
    h.wallet.fail["win"] = "error"
    won = h.play(session, "q-win").get_json()
    h.wallet.fail = {"bet": "error", "rollback": "error"}
    assert h.play(session, "q-rollback").status_code == 503
    h.wallet.fail = {}
    assert {i["operation"] for i in h.region.queue.items()} == {"win", "rollback"}
    h.admin("POST", "/admin/providers/netent/isolate", {"reason": "down"})
    report = h.admin("POST", "/admin/wallet/queue/replay", {"max_items": 10}).get_json()
    assert (report["settled"], report["remaining"]) == (2, 0)
    assert h.wallet.balance("p1") == 1_000_000 - 100 + won["win"]


def test_restore_with_canary_and_the_state_survives_a_restart(
    make_region: MakeRegion, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/persist.db"
    h = make_region(database=url)
    h.admin("POST", "/admin/providers/netent/isolate", {"reason": "errors"})
    h.admin("POST", "/admin/providers/hacksaw/isolate", {"reason": "errors"})
    r = h.admin("POST", "/admin/providers/hacksaw/restore", {"canary_percent": 25})
    assert r.get_json()["isolated"] is False and r.get_json()["canary_percent"] == 25.0
    h.region.close()

    again = make_region(database=url)
    assert again.region.state.get("netent").isolated
    assert again.region.state.get("netent").reason == "errors"
    assert again.region.state.get("hacksaw").canary_percent == 25.0
    assert again.metric("casino_provider_isolated", provider="netent") == 1
    assert again.metric("casino_provider_canary_percent", provider="hacksaw") == 25
    # a different region on the same database keeps its own state
    other = make_region("latam", database=url)
    assert not any(s.isolated for s in other.region.state.all().values())
    # restoring at 100 % ends the canary
    again.admin("POST", "/admin/providers/hacksaw/restore", {"canary_percent": 100})
    outcomes = {again.launch(game="hs-chaos-crew").get_json()["outcome"] for _ in range(20)}
    assert outcomes == {"ok"}
