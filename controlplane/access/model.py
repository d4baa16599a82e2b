"""Roles, permissions, users, and the one check every surface asks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from controlplane.errors import ControlPlaneError

# The requester of automatic executions: no person, so any approver may approve them.
CONTROL_PLANE = "controlplane"


class AccessError(ControlPlaneError):
    """A refused call. `status` is the HTTP answer: 401 unknown person, 403 not allowed."""

    status = 403
    code = "forbidden"


class Unauthenticated(AccessError):
    status = 401
    code = "unauthorized"


class Forbidden(AccessError):
    pass


class Permission(Enum):
    READ = "read"
    PAUSE = "pause"  # pause automation
    SILENCE = "silence"  # create and expire silences
    ACKNOWLEDGE = "acknowledge"
    RUN = "run"  # manual runbooks, dry run or real
    MAINTENANCE = "maintenance"
    INGEST = "ingest"  # external alerts (Alertmanager's webhook): they can trigger runbooks
    APPROVE = "approve"
    REJECT = "reject"
    RESUME = "resume"  # resume automation: it acts again without anyone asking
    RELOAD = "reload"


class Role(Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]


_OPERATOR = frozenset(
    {
        Permission.READ,
        Permission.PAUSE,
        Permission.SILENCE,
        Permission.ACKNOWLEDGE,
        Permission.RUN,
        Permission.MAINTENANCE,
        Permission.INGEST,
    }
)
_GRANTS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: _OPERATOR,
    Role.APPROVER: _OPERATOR | {Permission.APPROVE, Permission.REJECT, Permission.RESUME},
    Role.ADMIN: frozenset(Permission),
}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class User:
    name: str
    role: Role
    slack_id: str | None = None
    token_sha256: str | None = field(default=None, repr=False)

    def may(self, permission: Permission) -> bool:
        return permission in self.role.permissions


ANONYMOUS = User(name="anonymous", role=Role.VIEWER)


@dataclass(frozen=True, kw_only=True)
class Access:
    users: Sequence[User] = ()
    anonymous_read: bool = True
    source: str = "config/access.yml"

    def authenticate(self, token: str | None) -> User | None:
        """The user whose token this is; every user is compared, in constant time each."""
        if not token:
            return None
        digest = token_digest(token)
        found = None
        for user in self.users:
            if user.token_sha256 is not None and hmac.compare_digest(digest, user.token_sha256):
                found = user
        return found

    def by_name(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def by_slack_id(self, slack_id: str) -> User | None:
        return next((u for u in self.users if u.slack_id and u.slack_id == slack_id), None)

    def reader(self, user: User | None) -> User:
        """Who reads: the user, or anonymous when anonymous reads are on."""
        if user is not None:
            return user
        if self.anonymous_read:
            return ANONYMOUS
        raise Unauthenticated("reading needs a token (anonymous_read is off)")

    def check(self, user: User | None, permission: Permission) -> User:
        return require(user, permission)


def require(user: User | None, permission: Permission) -> User:
    """The user, if they may; Unauthenticated (401) or Forbidden (403) otherwise."""
    if user is None:
        raise Unauthenticated("missing or unknown bearer token")
    if not user.may(permission):
        allowed = ", ".join(r.value for r in Role if permission in r.permissions)
        raise Forbidden(
            f"{user.name} ({user.role.value}) may not {permission.value}; roles that may: {allowed}"
        )
    return user


class AccessHolder:
    """The access file in force: called for the current one, replaced by /-/reload."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def __call__(self) -> Access:
        return self._access

    def replace(self, access: Access) -> None:
        self._access = access  # one reference swap: readers see the old or the new file
