"""Dashboard sessions: a signed, expiring cookie naming the user who signed in with their token.

The cookie holds the user's name, a prefix of their token's digest (a token changed or removed
in config/access.yml ends its sessions at the next reload) and a CSRF token that the pages echo
back with every write. It is signed with `CONTROLPLANE_SECRET_KEY`, or with a key generated once
and kept in the database (`secrets` table), so restarts and replicas accept each other's.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from controlplane.access.model import Access, User

COOKIE = "controlplane_session"
_SALT = "controlplane.dashboards.session"
_PREFIX = 16
metadata = sa.MetaData()
_SECRETS = sa.Table(
    "secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


@dataclass(frozen=True, kw_only=True)
class Session:
    user: User
    csrf: str


class Sessions:
    """Issues and reads session cookies; `secret` is asked once, at first use (the database
    exists by then)."""

    def __init__(self, secret: Callable[[], str], *, ttl_s: float = 12 * 3600.0) -> None:
        self._secret, self.ttl_s = secret, ttl_s
        self._serializer: URLSafeTimedSerializer | None = None
        self._lock = threading.Lock()

    def issue(self, user: User) -> str:
        digest = (user.token_sha256 or "")[:_PREFIX]
        return self._signer().dumps({"u": user.name, "t": digest, "c": secrets.token_urlsafe(18)})

    def read(self, access: Access, cookie: str | None) -> Session | None:
        """The session this cookie carries, if it is ours, unexpired, and its user's token is
        still the one they signed in with."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._signer().loads(cookie, max_age=round(self.ttl_s))
        except BadSignature:  # also expired (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict):
            return None
        user = access.by_name(str(data.get("u")))
        if user is None or not user.token_sha256 or user.token_sha256[:_PREFIX] != data.get("t"):
            return None
        return Session(user=user, csrf=str(data.get("c", "")))

    def _signer(self) -> URLSafeTimedSerializer:
        with self._lock:
            if self._serializer is None:
                self._serializer = URLSafeTimedSerializer(self._secret(), salt=_SALT)
            return self._serializer


def stored_secret(engine: Engine, name: str = "session_key") -> Callable[[], str]:
    """The named secret from the database, generated and stored on first use; two replicas
    generating at once both end up with the one that was inserted first."""

    def get() -> str:
        with engine.begin() as conn:
            row = conn.execute(sa.select(_SECRETS.c.value).where(_SECRETS.c.name == name)).first()
        if row is not None:
            return str(row[0])
        try:
            with engine.begin() as conn:
                conn.execute(
                    _SECRETS.insert().values(
                        name=name, value=secrets.token_urlsafe(48), created_at=time.time()
                    )
                )
        except IntegrityError:
            pass  # another replica stored it first: use theirs
        return get()

    return get
