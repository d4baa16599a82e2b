"""Player tokens: the operator signs the user id with WALLET_TOKEN_SECRET, so any wallet
process can check a token without storing it, and a token names exactly one user.
"""

from __future__ import annotations

from aggregator import sessions
from aggregator.errors import Unauthorized


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def issue(self, user: str) -> str:
        return sessions.sign({"user": user}, self._secret)

    def valid_for(self, token: str, user: str) -> bool:
        try:
            payload = sessions.verify(token, self._secret)
        except (Unauthorized, ValueError):
            return False
        return payload.get("user") == user
