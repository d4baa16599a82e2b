"""`config/access.yml`: users, their roles and tokens, and whether anyone may read.

    anonymous_read: auto        # true | false | auto: on when listening on 127.0.0.1 only
    users:
      - name: alice
        role: approver          # viewer | operator | approver | admin
        slack_id: U024BE7LH     # optional: who clicks in Slack
        token_env: CONTROLPLANE_TOKEN_ALICE   # the token in this environment variable
      - name: grafana
        role: viewer
        token_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8

A file that does not exist means no users: only `CONTROLPLANE_API_TOKEN` (an admin, named
"api") writes. Every error names the file and the field, as the other YAML files do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controlplane.access.model import CONTROL_PLANE, Access, Role, User, token_digest
from controlplane.errors import ConfigError
from controlplane.model import yamltext

API_USER = "api"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_USER_KEYS = ("name", "role", "slack_id", "token_env", "token_sha256")


def load_access(
    path: Path,
    *,
    api_token: str | None,
    listen_host: str = "127.0.0.1",
    environ: Mapping[str, str] | None = None,
) -> Access:
    doc: Any = yamltext.load(path, "access file") if path.exists() else {}
    return parse_access(
        doc, str(path), api_token=api_token, listen_host=listen_host, environ=environ
    )


def parse_access(
    doc: Any,
    source: str,
    *,
    api_token: str | None,
    listen_host: str = "127.0.0.1",
    environ: Mapping[str, str] | None = None,
) -> Access:
    env = os.environ if environ is None else environ
    doc = {} if doc is None else doc
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: expected a mapping with users and anonymous_read")
    unknown = sorted(set(doc) - {"users", "anonymous_read"})
    if unknown:
        raise ConfigError(f"{source}: unknown field {unknown[0]!r} (fields: users, anonymous_read)")
    raw_users = doc.get("users") or []
    if not isinstance(raw_users, list):
        raise ConfigError(f"{source}: users: expected a list, got {type(raw_users).__name__}")
    users = [_user(raw, f"{source}: users[{i}]", env) for i, raw in enumerate(raw_users)]
    _no_twins(users, source)
    if api_token:
        users.append(User(name=API_USER, role=Role.ADMIN, token_sha256=token_digest(api_token)))
    anonymous = _anonymous_read(doc.get("anonymous_read", "auto"), source, listen_host)
    return Access(users=tuple(users), anonymous_read=anonymous, source=source)


def _user(raw: object, at: str, env: Mapping[str, str]) -> User:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{at}: expected a mapping with name and role")
    unknown = sorted(set(raw) - set(_USER_KEYS))
    if unknown:
        raise ConfigError(f"{at}: unknown field {unknown[0]!r} (fields: {', '.join(_USER_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name in (API_USER, CONTROL_PLANE):
        raise ConfigError(
            f"{at}.name: expected 1-64 letters, digits, '._@-' (not {API_USER!r} or"
            f" {CONTROL_PLANE!r}), got {name!r}"
        )
    try:
        role = Role(raw.get("role"))
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ConfigError(f"{at}.role: expected one of {roles}, got {raw.get('role')!r}") from None
    slack_id = raw.get("slack_id")
    if slack_id is not None and (not isinstance(slack_id, str) or not slack_id.strip()):
        raise ConfigError(f"{at}.slack_id: expected a Slack user id, got {slack_id!r}")
    return User(name=name, role=role, slack_id=slack_id, token_sha256=_digest(raw, at, env))


def _digest(raw: Mapping[str, Any], at: str, env: Mapping[str, str]) -> str | None:
    if "token_env" in raw and "token_sha256" in raw:
        raise ConfigError(f"{at}: give token_env or token_sha256, not both")
    if "token_sha256" in raw:
        given = raw["token_sha256"]
        if not isinstance(given, str) or not _SHA256.match(given.lower()):
            raise ConfigError(f"{at}.token_sha256: expected 64 hex digits, got {given!r}")
        return given.lower()
    if "token_env" in raw:
        name = raw["token_env"]
        if not isinstance(name, str) or not _ENV.match(name):
            raise ConfigError(
                f"{at}.token_env: expected an environment variable name, got {name!r}"
            )
        token = env.get(name, "")
        return token_digest(token) if token else None  # unset: this user cannot sign in
    return None  # a Slack-only user


def _no_twins(users: list[User], source: str) -> None:
    seen: dict[str, int] = {}
    for i, user in enumerate(users):
        for kind, key in (
            ("name", user.name),
            ("slack_id", user.slack_id),
            ("token", user.token_sha256),
        ):
            if key is None:
                continue
            first = seen.setdefault(f"{kind}:{key}", i)
            if first != i:
                shown = key if kind != "token" else "(the same token)"
                raise ConfigError(
                    f"{source}: users[{i}].{kind}: {shown} already given in users[{first}]"
                )


def _anonymous_read(raw: object, source: str, listen_host: str) -> bool:
    if raw == "auto" or raw is None:
        return listen_host in _LOOPBACK
    if isinstance(raw, bool):
        return raw
    raise ConfigError(f"{source}: anonymous_read: expected true, false or auto, got {raw!r}")
