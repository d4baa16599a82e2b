"""config/access.yml: users, roles, tokens, and the one permission check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.access import (
    Access,
    Forbidden,
    Permission,
    Role,
    Unauthenticated,
    load_access,
    parse_access,
    require,
    token_digest,
)
from controlplane.errors import ConfigError
from controlplane.model import yamltext
from tests.conftest import ROOT

GOOD = """
anonymous_read: false
users:
  - {name: alice, role: approver, slack_id: U1, token_env: TOKEN_ALICE}
  - {name: grafana, role: viewer, token_sha256: %s}
  - {name: slacky, role: operator, slack_id: U2}
"""


def parse(text: str, **kwargs: Any) -> Access:
    doc = yamltext.loads(text, "access.yml")
    return parse_access(doc, "access.yml", **{"api_token": None, **kwargs})


def test_users_tokens_and_roles() -> None:
    access = parse(
        GOOD % token_digest("g-token"), environ={"TOKEN_ALICE": "a-token"}, api_token="t"
    )
    assert access.authenticate("a-token").name == "alice"
    assert access.authenticate("g-token").role is Role.VIEWER
    assert access.authenticate("t").name == "api"
    assert access.authenticate("t").role is Role.ADMIN
    assert access.authenticate("nope") is None and access.authenticate("") is None
    assert access.by_slack_id("U2").name == "slacky"
    assert access.anonymous_read is False


def test_a_user_whose_variable_is_unset_cannot_sign_in() -> None:
    access = parse(GOOD % token_digest("g"), environ={})
    alice = access.by_name("alice")
    assert alice is not None and alice.token_sha256 is None
    assert access.authenticate("") is None


@pytest.mark.parametrize(
    ("role", "may"),
    [
        (Role.VIEWER, {Permission.READ}),
        (
            Role.OPERATOR,
            {
                Permission.READ,
                Permission.PAUSE,
                Permission.SILENCE,
                Permission.ACKNOWLEDGE,
                Permission.RUN,
                Permission.MAINTENANCE,
                Permission.INGEST,
            },
        ),
    ],
)
def test_what_each_role_may(role: Role, may: set[Permission]) -> None:
    assert role.permissions == may
    assert Role.APPROVER.permissions == Role.OPERATOR.permissions | {
        Permission.APPROVE,
        Permission.REJECT,
        Permission.RESUME,
    }
    assert Role.ADMIN.permissions == set(Permission)


def test_require_says_401_for_nobody_and_403_for_a_role() -> None:
    access = parse(GOOD % token_digest("g"), environ={})
    with pytest.raises(Unauthenticated) as nobody:
        require(None, Permission.READ)
    assert nobody.value.status == 401
    grafana = access.authenticate("g")
    with pytest.raises(Forbidden) as refused:
        require(grafana, Permission.PAUSE)
    assert refused.value.status == 403
    assert "grafana (viewer) may not pause" in str(refused.value)
    assert "operator, approver, admin" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("users: [{name: a, role: boss}]", "access.yml: users[0].role: expected one of viewer"),
        ("users: [{name: a, role: viewer, colour: red}]", "users[0]: unknown field 'colour'"),
        ("users: [{name: 'a b', role: viewer}]", "users[0].name"),
        ("users: [{name: api, role: viewer}]", "users[0].name"),
        (
            "users: [{name: a, role: viewer, token_sha256: abc}]",
            "users[0].token_sha256: expected 64 hex",
        ),
        ("users: [{name: a, role: viewer, token_env: lower}]", "users[0].token_env"),
        (
            "users: [{name: a, role: viewer, token_env: X, token_sha256: " + "a" * 64 + "}]",
            "users[0]: give token_env or token_sha256, not both",
        ),
        (
            "users: [{name: a, role: viewer}, {name: a, role: admin}]",
            "users[1].name: a already given in users[0]",
        ),
        (
            "users: [{name: a, role: viewer, slack_id: U1}, {name: b, role: admin, slack_id: U1}]",
            "users[1].slack_id",
        ),
        ("anonymous_read: maybe", "access.yml: anonymous_read: expected true, false or auto"),
        ("users: {name: a}", "access.yml: users: expected a list"),
        ("people: []", "access.yml: unknown field 'people'"),
        ("- a", "access.yml: expected a mapping"),
    ],
)
def test_errors_name_the_file_and_the_field(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert where in str(err.value)


def test_the_same_token_twice_is_refused_without_showing_it() -> None:
    digest = token_digest("same")
    with pytest.raises(ConfigError) as err:
        parse(
            f"users: [{{name: a, role: viewer, token_sha256: {digest}}}, {{name: b, role: admin, token_sha256: {digest}}}]"
        )
    assert "users[1].token: (the same token) already given" in str(err.value)
    assert digest not in str(err.value)


@pytest.mark.parametrize(
    ("host", "anonymous"),
    [("127.0.0.1", True), ("::1", True), ("0.0.0.0", False), ("10.0.0.5", False)],
)
def test_anonymous_reads_default_to_loopback_only(host: str, anonymous: bool) -> None:
    assert parse("users: []", listen_host=host).anonymous_read is anonymous
    assert parse("anonymous_read: true", listen_host=host).anonymous_read is True


def test_the_shipped_file_loads_and_a_missing_file_means_only_the_api_token(tmp_path: Path) -> None:
    shipped = load_access(
        ROOT / "config" / "access.yml", api_token=None, environ={"CONTROLPLANE_TOKEN_BOB": "b"}
    )
    assert {u.name: u.role for u in shipped.users} == {
        "oncall": Role.OPERATOR,
        "alice": Role.APPROVER,
        "bob": Role.APPROVER,
        "viewer": Role.VIEWER,
    }
    assert shipped.authenticate("b").name == "bob"  # type: ignore[union-attr]
    missing = load_access(tmp_path / "nope.yml", api_token="t")
    assert [u.name for u in missing.users] == ["api"]
    with pytest.raises(ConfigError) as err:
        (tmp_path / "bad.yml").write_text("users: [{name: a, role: boss}]")
        load_access(tmp_path / "bad.yml", api_token=None)
    assert "bad.yml: users[0].role" in str(err.value)
