"""Each fault kind changes /metrics the way an on-call engineer expects (parsed with
prometheus_client.parser, as a scraper would see it)."""

from __future__ import annotations

from typing import Any

from tests.aggregator.region.conftest import MakeRegion, RegionHarness


def inject(h: RegionHarness, kind: str, target: str, **extra: Any) -> str:
    r = h.admin("POST", "/admin/faults", {"kind": kind, "target": target, **extra})
    assert r.status_code == 201, r.get_json()
    return str(r.get_json()["id"])


def test_provider_down_times_out_opens_the_breaker_and_launches_fail_over(
    make_region: MakeRegion,
) -> None:
    h = make_region()
    inject(h, "provider_down", "playtech")
    outcomes = [h.launch(game="pt-age-of-the-gods").get_json() for _ in range(12)]
    assert all(o["outcome"] == "failover" and o["provider"] != "playtech" for o in outcomes)
    m = {
        "timeouts": h.metric(
            "casino_provider_requests_total", provider="playtech", outcome="timeout"
        ),
        "rejected": h.metric(
            "casino_provider_requests_total", provider="playtech", outcome="rejected"
        ),
        "breaker": h.metric("casino_circuit_breaker_state", provider="playtech"),
        "opened": h.metric("casino_failover_events_total", kind="breaker_open"),
        "failovers": h.metric("casino_failover_events_total", kind="provider_failover"),
        "launch_failover": h.metric("casino_game_launches_total", outcome="failover"),
    }
    # 5 timeouts open the breaker; the 7 launches after it are not even sent
    assert m == {
        "timeouts": 5,
        "rejected": 7,
        "breaker": 1,
        "opened": 1,
        "failovers": 12,
        "launch_failover": 12,
    }
    assert h.metric("casino_circuit_breaker_state", provider="netent") == 0
    assert h.metric("casino_faults_active", kind="provider_down") == 1
    # rounds on an open breaker are refused before any money moves
    r = h.play(h.session("pt-age-of-the-gods"), "down-1")
    assert r.status_code == 503 and r.get_json()["money"] == "none"
    assert h.wallet.sent("bet") == []
    # 30 s later the breaker is half-open (2); the fault is still on, so the trial fails
    h.clock.advance(30)
    assert h.metric("casino_circuit_breaker_state", provider="playtech") == 2
    h.launch(game="pt-age-of-the-gods")
    assert h.metric("casino_circuit_breaker_state", provider="playtech") == 1
    assert h.metric("casino_failover_events_total", kind="breaker_open") == 2


def test_provider_errors_show_as_error_outcomes(make_region: MakeRegion) -> None:
    h = make_region()
    inject(h, "provider_errors", "netent", magnitude=0.3)
    session = h.session("ne-gonzos-quest")
    statuses = [h.play(session, f"e{i}").status_code for i in range(40)]

    def calls(outcome: str) -> float:
        return h.metric(
            "casino_provider_requests_total", provider="netent", operation="round", outcome=outcome
        )

    def rounds(outcome: str) -> float:
        return h.metric("casino_rounds_total", provider="netent", outcome=outcome)

    assert 4 <= calls("error") <= 24
    assert rounds("provider_unavailable") == calls("error")
    # with errors this frequent the breaker may open; refused rounds are counted as such
    assert rounds("rejected") == calls("rejected")
    assert statuses.count(503) == calls("error") + calls("rejected")
    assert statuses.count(200) == calls("ok") == rounds("settled")
    assert h.metric("casino_provider_requests_total", provider="evolution", outcome="error") == 0


def mean_duration(h: RegionHarness, provider: str) -> float:
    total = h.metric("casino_provider_request_duration_seconds_sum", provider=provider)
    count = h.metric("casino_provider_request_duration_seconds_count", provider=provider)
    return total / count


def test_provider_latency_shifts_the_duration_histogram(make_region: MakeRegion) -> None:
    h = make_region()
    session = h.session("evo-infinite-blackjack")
    for i in range(20):
        h.play(session, f"before-{i}")
    before = mean_duration(h, "evolution")
    fast = h.metric(
        "casino_provider_request_duration_seconds_bucket", provider="evolution", le="0.25"
    )
    assert fast == 20 and before < 0.1
    inject(h, "provider_latency", "evolution", magnitude=0.4)
    for i in range(20):
        assert h.play(session, f"after-{i}").status_code == 200
    # the 20 slow calls all land above 0.25 s: the bucket does not move, the count does
    assert (
        h.metric("casino_provider_request_duration_seconds_bucket", provider="evolution", le="0.25")
        == 20
    )
    assert h.metric("casino_provider_request_duration_seconds_count", provider="evolution") == 40
    assert mean_duration(h, "evolution") > before + 0.15


def test_wallet_timeout_discards_answers_and_the_queue_grows(make_region: MakeRegion) -> None:
    h = make_region()
    inject(h, "wallet_timeout", "eu", magnitude=0.5)
    session = h.session("ne-starburst")
    answers = [h.play(session, f"t{i}") for i in range(40)]
    timeouts = h.metric("casino_wallet_requests_total", outcome="timeout")
    assert timeouts >= 10
    assert h.metric("casino_wallet_requests_total", operation="bet", outcome="timeout") >= 5
    queued = {item["operation"] for item in h.region.queue.items()}
    assert queued == {"win", "rollback"}
    depth = h.metric("casino_wallet_queue_depth")
    assert depth == len(h.region.queue.items()) > 0
    h.clock.advance(42)
    assert h.metric("casino_wallet_queue_oldest_age_seconds") >= 42
    # the discarded calls were applied by the wallet; replaying moves no money twice
    h.admin("DELETE", f"/admin/faults/{h.region.faults.active()[0].id}")
    assert h.admin("POST", "/admin/wallet/queue/replay", {}).get_json()["remaining"] == 0
    assert h.metric("casino_wallet_queue_depth") == 0
    assert h.metric("casino_wallet_queue_replayed_total", outcome="settled") == depth
    expected = 1_000_000
    for r in answers:
        if r.status_code == 200:
            expected += r.get_json()["win"] - r.get_json()["bet"]
    assert h.wallet.balance("p1") == expected


def test_wallet_errors_fail_calls_without_sending_them(make_region: MakeRegion) -> None:
    h = make_region()
    inject(h, "wallet_errors", "*", magnitude=1.0)
    r = h.play(h.session("ne-starburst"), "we-1")
    assert r.status_code == 503 and r.get_json()["error"] == "wallet_unavailable"
    assert h.wallet.received == []
    assert h.metric("casino_wallet_requests_total", operation="bet", outcome="error") == 1
    assert h.metric("casino_wallet_requests_total", operation="rollback", outcome="error") == 1
    assert h.metric("casino_wallet_queue_depth") == 1
    report = h.admin("POST", "/admin/wallet/queue/replay", {"max_items": 5}).get_json()
    assert report == {"region": "eu", "replayed": 1, "settled": 0, "failed": 1, "remaining": 1}
    assert h.metric("casino_wallet_queue_replayed_total", outcome="failed") == 1


def test_region_down_makes_readyz_and_players_503_while_admin_works(
    make_region: MakeRegion,
) -> None:
    h = make_region()
    assert h.client.get("/readyz").status_code == 200
    fault = inject(h, "region_down", "eu")
    assert h.client.get("/readyz").status_code == 503
    assert h.client.get("/healthz").status_code == 200
    assert h.launch(category="slots").status_code == 503
    r = h.play(h.session("ne-starburst"), "rd-1")
    assert r.status_code == 503 and r.get_json()["error"] == "region_down"
    assert "money" not in r.get_json()  # the front door may retry it elsewhere
    assert h.metric("casino_region_down") == 1
    state = h.admin("GET", "/admin/state").get_json()
    assert state["regions"] == [{"id": "eu", "up": False}]
    assert h.admin("DELETE", f"/admin/faults/{fault}").status_code == 200
    assert h.client.get("/readyz").status_code == 200
    assert h.launch(category="slots").status_code == 200


def test_faults_expire_by_duration(make_region: MakeRegion) -> None:
    h = make_region()
    inject(h, "region_down", "eu", duration_s=5)
    assert h.client.get("/readyz").status_code == 503
    h.clock.advance(5)
    assert h.client.get("/readyz").status_code == 200
    assert h.admin("GET", "/admin/faults").get_json()["faults"] == []


def test_probes_see_a_down_provider_even_while_it_is_isolated(make_region: MakeRegion) -> None:
    h = make_region()
    names = {name for name, _labels in h.metrics()}
    assert "casino_provider_probe_success" not in names  # nothing claimed before the first probe
    inject(h, "provider_down", "playtech")
    h.admin("POST", "/admin/providers/playtech/isolate", {"reason": "test"})
    h.region.probes.probe_all()
    assert h.metric("casino_provider_probe_success", provider="playtech") == 0
    assert h.metric("casino_provider_probe_success", provider="netent") == 1
    assert h.metric("casino_provider_probes_total", provider="playtech", outcome="timeout") == 1
    # probes never touch the breakers or the player-facing request counters
    assert h.metric("casino_circuit_breaker_state", provider="playtech") == 0
    assert h.metric("casino_provider_requests_total", provider="playtech", outcome="timeout") == 0
