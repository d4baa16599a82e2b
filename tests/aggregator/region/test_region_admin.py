from __future__ import annotations

from typing import Any

import pytest

from tests.aggregator.region.conftest import MakeRegion, RegionHarness

WRITES = [
    ("POST", "/admin/providers/netent/isolate", {"reason": "x"}),
    ("POST", "/admin/providers/netent/restore", {"canary_percent": 10}),
    ("POST", "/admin/wallet/queue/replay", {"max_items": 5}),
    ("POST", "/admin/faults", {"kind": "region_down", "target": "eu"}),
    ("DELETE", "/admin/faults/eu-f1", None),
]
READS = ["/admin/state", "/admin/wallet/queue", "/admin/faults"]


@pytest.fixture
def h(make_region: MakeRegion) -> RegionHarness:
    return make_region()


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer "])
def test_every_admin_route_needs_the_bearer_token_and_nothing_changes(
    h: RegionHarness, auth: str | None
) -> None:
    headers = {} if auth is None else {"Authorization": auth}
    for method, path, body in WRITES:
        r = h.client.open(path, method=method, json=body, headers=headers)
        assert r.status_code == 401, (method, path)
        assert r.get_json()["error"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    for path in READS:
        assert h.client.get(path, headers=headers).status_code == 401
    assert not h.region.state.is_isolated("netent")
    assert h.region.faults.active() == []


def test_idempotency_key_replays_the_first_answer(h: RegionHarness) -> None:
    key = {"Idempotency-Key": "k-1"}
    body = {"kind": "provider_latency", "target": "netent", "magnitude": 0.2}
    first = h.admin("POST", "/admin/faults", body, **key)
    second = h.admin("POST", "/admin/faults", body, **key)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(h.region.faults.active()) == 1
    # the same key on a different request is refused, not silently replayed
    other = h.admin("POST", "/admin/faults", {**body, "magnitude": 0.3}, **key)
    assert other.status_code == 422
    assert other.get_json()["error"] == "idempotency_key_reused"
    # isolate: a repeat with the same key answers "changed": true again, from the cache
    iso = [
        h.admin(
            "POST", "/admin/providers/spribe/isolate", {"reason": "r"}, **{"Idempotency-Key": "k-2"}
        )
        for _ in range(2)
    ]
    assert [r.get_json()["changed"] for r in iso] == [True, True]
    again = h.admin("POST", "/admin/providers/spribe/isolate", {"reason": "r"})
    assert again.get_json()["changed"] is False  # without a key it is simply safe to repeat


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "named"),
    [
        ("POST", "/admin/providers/acme/isolate", {}, 404, "unknown_provider", "'acme'"),
        ("POST", "/admin/providers/acme/restore", {}, 404, "unknown_provider", "'acme'"),
        (
            "POST",
            "/admin/faults",
            {"kind": "meteor", "target": "eu"},
            404,
            "unknown_fault_kind",
            "'meteor'",
        ),
        (
            "POST",
            "/admin/faults",
            {"kind": "provider_down", "target": "acme"},
            404,
            "unknown_provider",
            "'acme'",
        ),
        (
            "POST",
            "/admin/faults",
            {"kind": "region_down", "target": "latam"},
            404,
            "unknown_region",
            "'latam'",
        ),
        (
            "POST",
            "/admin/faults",
            {"kind": "wallet_errors", "target": "eu", "magnitude": 2},
            422,
            "invalid",
            "2",
        ),
        ("DELETE", "/admin/faults/f-404", None, 404, "unknown_fault", "'f-404'"),
        ("POST", "/admin/providers/netent/restore", {"canary_percent": 150}, 422, "invalid", "150"),
        (
            "POST",
            "/admin/providers/netent/restore",
            {"canary_percent": "10"},
            422,
            "invalid",
            "'10'",
        ),
        ("POST", "/admin/providers/netent/isolate", {"reason": 5}, 422, "invalid", "5"),
        ("POST", "/admin/wallet/queue/replay", {"max_items": 0}, 422, "invalid", "0"),
        ("POST", "/admin/wallet/queue/replay", {"max_items": "all"}, 422, "invalid", "'all'"),
    ],
)
def test_errors_are_json_and_name_the_offending_value(
    h: RegionHarness, method: str, path: str, body: Any, status: int, code: str, named: str
) -> None:
    r = h.admin(method, path, body)
    assert r.status_code == status
    payload = r.get_json()
    assert payload["error"] == code
    assert named in payload["message"]


@pytest.mark.parametrize(
    "path",
    ["/admin/providers/netent/isolate", "/admin/faults", "/admin/wallet/queue/replay"],
)
def test_bad_json_is_400_json(h: RegionHarness, path: str) -> None:
    for raw in (b"{not json", b"[1, 2]"):
        r = h.client.post(path, data=raw, headers={**h.auth, "Content-Type": "application/json"})
        assert r.status_code == 400
        assert r.is_json and r.get_json()["error"] in ("malformed_json", "bad_request")
    assert not h.region.state.is_isolated("netent")


def test_state_reports_providers_breakers_queue_and_faults(h: RegionHarness) -> None:
    h.admin("POST", "/admin/providers/netent/isolate", {"reason": "latency"})
    h.admin("POST", "/admin/faults", {"kind": "provider_down", "target": "spribe"})
    state = h.admin("GET", "/admin/state").get_json()
    by_id = {p["id"]: p for p in state["providers"]}
    assert set(by_id) == set(h.region.catalogue.providers)
    assert by_id["netent"]["isolated"] is True and by_id["netent"]["reason"] == "latency"
    assert by_id["evolution"] | {"active_sessions": 0} == by_id["evolution"]
    assert state["breakers"]["spribe"] == "closed"
    assert state["queue"] == {"depth": 0, "oldest_age_seconds": 0.0}
    assert [f["kind"] for f in state["faults"]] == ["provider_down"]
    queue = h.admin("GET", "/admin/wallet/queue?limit=5").get_json()
    assert queue == {"region": "eu", "depth": 0, "oldest_age_seconds": 0.0, "items": []}
    assert h.admin("GET", "/admin/wallet/queue?limit=0").status_code == 400
    assert h.admin("GET", "/admin/wallet/queue?status=lost").status_code == 400


def test_probes_and_metrics_are_open(h: RegionHarness) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert h.client.get(path).status_code == 200
    assert h.client.get("/nope").get_json()["error"] == "not_found"
