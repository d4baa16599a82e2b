"""Acting from the dashboards: who is signed in, and one way to run a write as them.

Every button calls `act(acting, page_session, do)`: it finds the person from the session
cookie (signed, HttpOnly, SameSite=Strict: see controlplane/access/session.py), checks the CSRF
token the page echoes back and the request's Origin, then runs `do(ops, user)`, which calls the
same `controlplane.operate.Operations` method as the HTTP API: one place decides who may, and
every write is audited with the person. Refusals come back as a message for the page, never as
an exception.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import request

from controlplane.access import Access, AccessError, User
from controlplane.access.session import COOKIE, Session, Sessions
from controlplane.errors import ControlPlaneError
from controlplane.operate import Operations


@dataclass(frozen=True, kw_only=True)
class Acting:
    ops: Operations
    access: Callable[[], Access]
    sessions: Sessions


@dataclass(frozen=True, kw_only=True)
class Outcome:
    ok: bool
    message: str
    link: str | None = None  # where to look at what was done


def session(acting: Acting | None) -> Session | None:
    """The signed-in session of the request being served, if any."""
    if acting is None:
        return None
    return acting.sessions.read(acting.access(), request.cookies.get(COOKIE))


def session_view(acting: Acting | None) -> dict[str, Any]:
    """What the page keeps (dcc.Store "session"): who, their role, and the CSRF token."""
    found = session(acting)
    if found is None:
        anonymous = acting is None or acting.access().anonymous_read
        return {"user": None, "read": anonymous, "acts": acting is not None}
    return {
        "user": found.user.name,
        "role": found.user.role.value,
        "csrf": found.csrf,
        "read": True,
        "acts": True,
    }


def act(
    acting: Acting | None,
    page_session: Mapping[str, Any] | None,
    do: Callable[[Operations, User], Outcome | str],
) -> Outcome:
    """Run `do` as the signed-in person, or say why not."""
    if acting is None:
        return Outcome(ok=False, message="these dashboards are read-only here")
    found = session(acting)
    if found is None:
        return Outcome(ok=False, message="sign in with your token to act")
    echoed = str((page_session or {}).get("csrf") or "")
    if not hmac.compare_digest(echoed.encode(), found.csrf.encode()) or not _same_origin():
        return Outcome(ok=False, message="refused: this page's session is stale; reload it")
    try:
        done = do(acting.ops, found.user)
    except AccessError as exc:
        return Outcome(ok=False, message=f"refused: {exc}")
    except ControlPlaneError as exc:  # a conflict or bad input: nothing was changed
        return Outcome(ok=False, message=str(exc))
    return done if isinstance(done, Outcome) else Outcome(ok=True, message=done)


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # browsers send it on every POST that could be cross-site
    return urlsplit(origin).netloc == request.host
