from __future__ import annotations

import pytest

from aggregator import sessions
from aggregator.errors import NotFound, Unauthorized, Unprocessable
from aggregator.faults import FaultBook, FaultKind, parse_fault_request


def test_session_roundtrip_and_tamper() -> None:
    s = sessions.GameSession(
        session_id="s1",
        user="p1",
        token="t",
        currency="EUR",
        game="g1",
        provider="pv1",
        region="eu",
    )
    token = s.encode("secret")
    assert sessions.GameSession.decode(token, "secret") == s
    assert sessions.unverified_payload(token)["region"] == "eu"
    with pytest.raises(Unauthorized):
        sessions.GameSession.decode(token, "other-secret")
    _body, mac = token.split(".")
    forged = sessions.sign({**sessions.unverified_payload(token), "user": "p2"}, "x").split(".")[0]
    with pytest.raises(Unauthorized):
        sessions.GameSession.decode(f"{forged}.{mac}", "secret")
    with pytest.raises(Unauthorized):
        sessions.unverified_payload("not-a-token")


def test_faults_expire_by_the_injected_clock() -> None:
    now = [1000.0]
    book = FaultBook(clock=lambda: now[0])
    fault = book.add(FaultKind.PROVIDER_DOWN, "pv1", 1.0, 30.0)
    assert book.find(FaultKind.PROVIDER_DOWN, "pv1") == fault
    assert book.find(FaultKind.PROVIDER_DOWN, "pv2") is None
    now[0] += 30.0
    assert book.active() == []
    with pytest.raises(NotFound):
        book.remove(fault.id)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"kind": "meteor", "target": "x"}, NotFound),
        ({"kind": "provider_errors", "target": "x", "magnitude": 2}, Unprocessable),
        ({"kind": "provider_down", "target": ""}, Unprocessable),
        ({"kind": "provider_down", "target": "x", "duration_s": -1}, Unprocessable),
        ({"kind": "provider_down", "target": "x", "duration_s": True}, Unprocessable),
        ({"kind": "region_down", "target": "eu"}, Unprocessable),
    ],
)
def test_fault_request_validation(body: dict[str, object], error: type[Exception]) -> None:
    allowed = [FaultKind.PROVIDER_DOWN, FaultKind.PROVIDER_ERRORS]
    with pytest.raises(error):
        parse_fault_request(body, allowed)
