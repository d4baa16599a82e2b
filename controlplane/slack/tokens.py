"""Signed button values: each Slack button carries our own token, not a bare id.

A value is compact JSON, `{"v":1,"a":action,"s":subject,"p":params,"e":expiry,"n":nonce,
"m":mac}`, where `mac` is HMAC-SHA256, keyed by the `slack_buttons` secret (generated once and
kept in the `secrets` table, so every replica and restart agrees), over the JSON array
`["cp-slack-button", 1, action, subject, sha256(params), expiry, nonce]`. Slack's request
signature says a click came through Slack; the token says the button is one we made, for this
action on this subject with these parameters, and not after `expiry`. A button value may hold
2000 characters (Block Kit): `sign` refuses a longer one, so a group with too many labels gets
no button rather than a broken one.

A nonce is spent in the `slack_nonces` table, whose primary key (nonce, spender) makes the
second spend fail in the database, across restarts and replicas. Who spends depends on the
action (`SCOPES`):

- once for everyone (spender "*"): run, silence. Each press creates something new (an
  execution, a silence), so a second press, by anyone, must not create a second one.
- once per Slack user (spender = the user id): approve, reject, acknowledge, pause. One
  Approve button is shown to every approver of a two-person runbook: it must stay usable by
  the second approver after the first pressed it, while the same person pressing it twice
  is a replay. The execution's own state (pending, approvals recorded one per person) is what
  makes these act once overall; the nonce makes a replayed request a no-op.

A nonce is spent only after the person was found and their role allows the action, so a
viewer or a stranger pressing a button cannot use it up for the people who may.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from controlplane.slack.tables import slack_nonces

VERSION = 1
MAX_VALUE = 2000  # Block Kit: a button's value holds at most 2000 characters
DEFAULT_TTL_S = 24 * 3600.0  # buttons other than approvals: a day-old message is stale
_PURPOSE = "cp-slack-button"  # domain separation: this key signs nothing else
_FIELDS = frozenset({"v", "a", "s", "p", "e", "n", "m"})


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    RUN = "run"
    SILENCE_1H = "silence_1h"
    SILENCE_4H = "silence_4h"
    ACKNOWLEDGE = "acknowledge"
    PAUSE = "pause"


class Scope(Enum):
    ONCE = "once"  # one press, by anyone
    PER_USER = "per_user"  # one press per Slack user


SCOPES: Mapping[Action, Scope] = {
    Action.APPROVE: Scope.PER_USER,
    Action.REJECT: Scope.PER_USER,
    Action.ACKNOWLEDGE: Scope.PER_USER,
    Action.PAUSE: Scope.PER_USER,
    Action.RUN: Scope.ONCE,
    Action.SILENCE_1H: Scope.ONCE,
    Action.SILENCE_4H: Scope.ONCE,
}


class BadToken(Exception):
    """Not a value we signed: malformed, altered, or signed with another key."""


class TokenTooLong(ValueError):
    """The signed value would not fit a Slack button."""


@dataclass(frozen=True, kw_only=True)
class Token:
    action: Action
    subject: str  # an execution id or an alert group key
    params: Mapping[str, Any] = field(default_factory=dict)
    expires_at: int
    nonce: str

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def spender(self, slack_user: str) -> str:
        return slack_user if SCOPES[self.action] is Scope.PER_USER else "*"


def params_digest(params: Mapping[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Signer:
    """Makes and checks button values. `secret` is asked once, at first use (the database
    exists by then), as `Sessions` asks for its key."""

    def __init__(self, secret: Callable[[], str], *, clock: Callable[[], float] = time.time):
        self._secret, self._clock = secret, clock
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def sign(
        self,
        action: Action,
        subject: str,
        params: Mapping[str, Any] | None = None,
        *,
        expires_at: float | None = None,
    ) -> str:
        expiry = int(expires_at if expires_at is not None else self._clock() + DEFAULT_TTL_S)
        token = Token(
            action=action,
            subject=subject,
            params=dict(params or {}),
            expires_at=expiry,
            nonce=secrets.token_urlsafe(12),
        )
        body = {
            "v": VERSION,
            "a": token.action.value,
            "s": token.subject,
            "p": token.params,
            "e": token.expires_at,
            "n": token.nonce,
            "m": self._mac(token),
        }
        value = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(value) > MAX_VALUE:
            raise TokenTooLong(f"a {action.value} button for {subject[:80]!r} needs {len(value)}")
        return value

    def verify(self, value: str) -> Token:
        """The token this value carries, if we signed it; BadToken otherwise. Expiry is the
        caller's to judge (`Token.expired`), so that it can say "expired" rather than "forged"."""
        token, mac = _parse(value)
        if not hmac.compare_digest(mac, self._mac(token)):
            raise BadToken("the button's signature does not match")
        return token

    def _mac(self, token: Token) -> str:
        signed = json.dumps(
            [
                _PURPOSE,
                VERSION,
                token.action.value,
                token.subject,
                params_digest(token.params),
                token.expires_at,
                token.nonce,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hmac.new(self._signing_key(), signed.encode(), hashlib.sha256).hexdigest()

    def _signing_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._secret().encode()
            return self._key


def _parse(value: str) -> tuple[Token, str]:
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE:
        raise BadToken("not a button value of ours")
    try:
        body = json.loads(value)
    except ValueError:
        raise BadToken("not a button value of ours") from None
    if not isinstance(body, dict) or set(body) != _FIELDS or body["v"] != VERSION:
        raise BadToken("not a button value of ours")
    a, s, p, e, n, m = (body[k] for k in ("a", "s", "p", "e", "n", "m"))
    if not (
        isinstance(s, str)
        and isinstance(p, dict)
        and isinstance(e, int)
        and isinstance(n, str)
        and isinstance(m, str)
        and a in {x.value for x in Action}
    ):
        raise BadToken("not a button value of ours")
    return Token(action=Action(a), subject=s, params=p, expires_at=e, nonce=n), m


class Nonces:
    """Spent nonces, in the database."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine, self._clock = engine, clock

    def spent(self, nonce: str, spender: str) -> bool:
        query = sa.select(slack_nonces.c.nonce).where(
            slack_nonces.c.nonce == nonce, slack_nonces.c.spender == spender
        )
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None

    def spend(self, nonce: str, spender: str, *, action: str, expires_at: float) -> bool:
        """True for the first spend of (nonce, spender), False for every later one."""
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                # rows whose tokens have expired guard nothing any more: expiry refuses them
                conn.execute(slack_nonces.delete().where(slack_nonces.c.expires_at < now - 60))
                conn.execute(
                    slack_nonces.insert().values(
                        nonce=nonce,
                        spender=spender[:64],
                        action=action[:32],
                        spent_at=now,
                        expires_at=expires_at,
                    )
                )
        except IntegrityError:
            return False
        return True
