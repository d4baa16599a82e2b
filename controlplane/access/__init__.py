"""Who may do what: users, roles and tokens from `config/access.yml`.

    access = load_access(Path("config/access.yml"), api_token=..., listen_host="127.0.0.1")
    user = access.authenticate(bearer_token)      # None: unknown token
    access.check(user, Permission.APPROVE)        # raises Forbidden (403) or Unauthenticated (401)

The HTTP API, the dashboards and (later) Slack all ask this package, so a role means the same
thing wherever a person acts. Tokens are kept as their SHA-256 only.
"""

from controlplane.access.load import load_access, parse_access
from controlplane.access.model import (
    CONTROL_PLANE,
    Access,
    AccessError,
    AccessHolder,
    Forbidden,
    Permission,
    Role,
    Unauthenticated,
    User,
    require,
    token_digest,
)

__all__ = [
    "CONTROL_PLANE",
    "Access",
    "AccessError",
    "AccessHolder",
    "Forbidden",
    "Permission",
    "Role",
    "Unauthenticated",
    "User",
    "load_access",
    "parse_access",
    "require",
    "token_digest",
]
