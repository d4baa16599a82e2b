"""People for tests of the write paths: one per role, their tokens, and their headers.

access = people()                       # an Access for blueprints and the dashboards
client.post(path, headers=bearer("alice"))
"""

from __future__ import annotations

from controlplane.access import Access, AccessHolder, Role, User, token_digest

API_TOKEN = "secret-token"  # CONTROLPLANE_API_TOKEN: an admin named "api"
ROLES = {
    "oncall": Role.OPERATOR,
    "alice": Role.APPROVER,
    "bob": Role.APPROVER,
    "carol": Role.APPROVER,
    "vera": Role.VIEWER,
    "root": Role.ADMIN,
}


def token(name: str) -> str:
    return API_TOKEN if name == "api" else f"token-of-{name}"


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(name)}"}


def people(*, anonymous_read: bool = True) -> AccessHolder:
    users = [
        User(
            name=name,
            role=role,
            slack_id=f"U{name.upper()}",
            token_sha256=token_digest(token(name)),
        )
        for name, role in ROLES.items()
    ]
    users.append(User(name="api", role=Role.ADMIN, token_sha256=token_digest(API_TOKEN)))
    return AccessHolder(Access(users=tuple(users), anonymous_read=anonymous_read, source="test"))
