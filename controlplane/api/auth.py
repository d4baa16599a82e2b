"""The one bearer-token check of the control plane's write calls."""

from __future__ import annotations

import hmac


def bearer_problem(authorization: str, token: str) -> str | None:
    """Why `authorization` (the header's value) does not carry `token`, or None if it does."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "missing bearer token in Authorization header"
    if not token or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "wrong bearer token"
    return None
