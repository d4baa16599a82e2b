"""Signed, self-contained tokens: game sessions and operator player tokens.

A game session carries everything a region needs to play a round (user, wallet token, currency,
game, provider, home region), signed with a secret shared by the regions. Any region can serve
any session, so the front door can fail a session over to another region without shared state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from aggregator.errors import BadRequest, Unauthorized
from aggregator.limits import parse_json


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, object], secret: str) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac[:18])}"


def unverified_payload(token: str) -> dict[str, object]:
    """The payload without checking the signature (routing only, never for money)."""
    try:
        body, _mac = token.split(".", 1)
        value = parse_json(_unb64(body))  # a client's bytes: bounded nesting, like any body
    except (ValueError, BadRequest) as exc:
        raise Unauthorized(f"malformed token {token[:24]!r}", code="invalid_session") from exc
    if not isinstance(value, dict):
        raise Unauthorized(f"malformed token {token[:24]!r}", code="invalid_session")
    return value


def verify(token: str, secret: str) -> dict[str, object]:
    if not token.isascii():  # base64url and a dot: anything else is no token of ours
        raise Unauthorized(f"malformed token {token[:24]!r}", code="invalid_session")
    body, _, mac = token.partition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18]
    # the signature first: a forged token's payload is never even parsed
    if not hmac.compare_digest(_b64(expected).encode(), mac.encode()):
        raise Unauthorized("session signature does not match", code="invalid_session")
    return unverified_payload(token)


@dataclass(frozen=True, kw_only=True)
class GameSession:
    session_id: str
    user: str
    token: str  # the operator's player token, passed on to the wallet
    currency: str
    game: str
    provider: str
    region: str  # the home region; the front door routes the session there while it is up

    def encode(self, secret: str) -> str:
        return sign(asdict(self), secret)

    @classmethod
    def decode(cls, token: str, secret: str) -> GameSession:
        payload = verify(token, secret)
        try:
            return cls(**{k: str(payload[k]) for k in cls.__dataclass_fields__})
        except KeyError as exc:
            raise Unauthorized(
                f"session lacks field {exc.args[0]!r}", code="invalid_session"
            ) from exc
