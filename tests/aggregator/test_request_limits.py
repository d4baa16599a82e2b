"""Request limits on every role's HTTP surface (aggregator/limits.py): a body over the role's
`max_body_bytes` answers 413 JSON; JSON nested past MAX_JSON_DEPTH (thousands deep or just
over), a body that is not JSON, not an object, or of the wrong types answers 400 JSON; no
traceback reaches the client or the log, and nothing moves: the wallet's ledger stays empty,
the region never calls its wallet, the front door never calls a region. In-process here
(Flask's test client, through the same WSGI stack the servers run); as real processes under
waitress and granian in test_request_limits_process.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from aggregator.cli import build_parser
from aggregator.errors import ConfigError
from aggregator.frontdoor import FrontdoorConfig
from aggregator.frontdoor import create_app as frontdoor_app
from aggregator.frontdoor.transport import Upstream
from aggregator.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH
from aggregator.region import RegionConfig
from aggregator.region import create_app as region_app
from aggregator.wallet import WalletConfig
from aggregator.wallet import create_app as wallet_app
from tests.aggregator.region.region_fakes import FakeWallet
from tests.aggregator.wallet.wallet_checks import ledger_rows
from tests.conftest import ServedApp

TOKEN = "test-admin-token"
LIMIT = 256 << 10  # every role's max_body_bytes here: the default is 1 MiB


def nested(depth: int, kind: str = "array") -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def padded(size: int) -> bytes:
    """A well-formed JSON object of exactly `size` bytes."""
    head = b'{"user": "p1", "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


# what every POST answers, whatever the role: (body, HTTP status)
HOSTILE = {
    "array 10000 deep": (nested(10_000), 400),
    "object 10000 deep": (nested(10_000, "object"), 400),
    "array 100000 deep": (nested(100_000), 400),
    "array just past the depth limit": (nested(MAX_JSON_DEPTH + 1), 400),
    "deep value in a field": (b'{"user": ' + nested(50) + b"}", 400),
    "not JSON": (b"{not json", 400),
    "not UTF-8": (b'{"user": "\xff"}', 400),
    "a JSON array": (b"[1, 2]", 400),
    "a JSON string": (b'"user"', 400),
    "one byte over the body limit": (padded(LIMIT + 1), 413),
    "16 MiB": (padded(16 << 20), 413),
}

# per role: the POST paths, and a body of the wrong types for each (None: the role does not
# type-check that body itself; admin bodies of the wrong types are 422 by the admin contract)
PATHS: dict[str, dict[str, dict[str, Any] | None]] = {
    "wallet": {
        "/transaction/bet": {"transaction_uuid": 5, "user": "p1"},
        "/transaction/rollback": {"user": ["p1"], "transaction_uuid": "x"},
        "/user/balance": {"user": {"id": "p1"}, "token": "t"},
        "/operator/token": {"user": 17},
        "/admin/faults": None,
    },
    "region": {
        "/player/launch": {"user": 5, "token": "t", "currency": "EUR"},
        "/player/round": {"session": ["s"], "round": "r1", "bet": 100},
        "/admin/faults": None,
        "/admin/wallet/queue/replay": None,
    },
    "frontdoor": {
        "/player/round": {"session": 5, "round": "r1", "bet": 100},
        "/player/launch": None,
        "/admin/faults": None,
    },
}


class Refusing:
    """The front door's transport: records calls, and no region ever answers."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def request(
        self, method: str, url: str, *, body: bytes | None = None, timeout: float
    ) -> Upstream:
        self.calls.append(url)
        return Upstream(status=503, body=b'{"error": "region_down"}')

    def close(self) -> None:
        pass


class Roles:
    """The three roles built in-process with LIMIT, and what each would have touched."""

    def __init__(self, tmp_path: Path) -> None:
        self.wallet = wallet_app(
            WalletConfig(admin_token=TOKEN, database_url=f"sqlite:///{tmp_path}/w.db",
                         max_body_bytes=LIMIT)
        )  # fmt: skip
        self.fake_wallet = FakeWallet()
        self.served = ServedApp(self.fake_wallet.app())
        self.region = region_app(
            RegionConfig(admin_token=TOKEN, database_url=f"sqlite:///{tmp_path}/r.db",
                         wallet_url=self.served.url, max_body_bytes=LIMIT)
        )  # fmt: skip
        self.transport = Refusing()
        self.frontdoor = frontdoor_app(
            FrontdoorConfig(admin_token=TOKEN, max_body_bytes=LIMIT), transport=self.transport
        )

    def app(self, role: str) -> Flask:
        app: Flask = getattr(self, role)
        return app

    def untouched(self) -> None:
        """Nothing a refused request could have moved has moved."""
        assert ledger_rows(self.wallet.extensions["wallet"].engine) == []
        assert self.fake_wallet.received == []
        assert self.region.extensions["region"].queue.stats()[0] == 0
        assert self.transport.calls == [] or all("/readyz" in c for c in self.transport.calls)

    def close(self) -> None:
        self.wallet.extensions["wallet"].close()
        self.region.extensions["region"].close()
        self.served.close()


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Roles]:
    """Shared by the module's tests: each refused request must leave them as they were."""
    built = Roles(tmp_path_factory.mktemp("roles"))
    yield built
    built.close()


def post(app: Flask, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    answer = app.test_client().post(
        path,
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.mimetype == "application/json", answer.get_data()[:200]
    text = answer.get_data(as_text=True)
    assert "Traceback" not in text
    return answer.status_code, json.loads(text)


ROLE_PATHS = [(role, path) for role, paths in PATHS.items() for path in paths]


@pytest.mark.parametrize(("role", "path"), ROLE_PATHS)
@pytest.mark.parametrize(("body", "status"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bodies_answer_json_4xx_and_move_nothing(
    roles: Roles, caplog: pytest.LogCaptureFixture, role: str, path: str, body: bytes, status: int
) -> None:
    with caplog.at_level(logging.WARNING):
        got, answer = post(roles.app(role), path, body)
    assert got == status, answer
    if status == 413:
        assert answer["error"] == "payload_too_large"
        assert str(LIMIT) in answer["message"]
    elif path.startswith(("/transaction/", "/user/")):  # the Hub88 shape, with its status
        assert answer["status"] == "RS_ERROR_WRONG_SYNTAX"
    else:
        assert answer["error"] in ("malformed_json", "json_too_deep", "bad_request")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    roles.untouched()


WRONG_TYPES = [
    (role, path, body) for role, paths in PATHS.items() for path, body in paths.items() if body
]


@pytest.mark.parametrize(("role", "path", "body"), WRONG_TYPES)
def test_wrong_types_answer_400_json_and_move_nothing(
    roles: Roles, role: str, path: str, body: dict[str, Any]
) -> None:
    got, answer = post(roles.app(role), path, json.dumps(body).encode())
    assert got == 400, answer
    if path.startswith(("/transaction/", "/user/")):
        assert answer["status"] == "RS_ERROR_WRONG_TYPES"
    else:
        assert answer["error"] and answer["message"]
    roles.untouched()


@pytest.mark.parametrize("role", PATHS)
def test_a_body_at_the_limit_is_read_and_one_byte_more_is_not(roles: Roles, role: str) -> None:
    path = next(iter(PATHS[role]))
    at_limit, _ = post(roles.app(role), path, padded(LIMIT))
    assert at_limit not in (413, 500)
    over, answer = post(roles.app(role), path, padded(LIMIT + 1))
    assert over == 413
    assert (
        answer["message"] == f"request body of {LIMIT + 1} bytes is over the limit of {LIMIT} bytes"
    )


def test_json_nested_to_the_limit_is_still_parsed(roles: Roles) -> None:
    """MAX_JSON_DEPTH levels are a body the role reads (and refuses for what it says)."""
    body = b'{"user": ' + nested(MAX_JSON_DEPTH - 1) + b"}"
    got, answer = post(roles.wallet, "/operator/token", body)
    assert (got, answer["error"]) == (400, "invalid_user")


CONFIGS = {
    "wallet": lambda **kw: WalletConfig.from_env({"AGGREGATOR_ADMIN_TOKEN": TOKEN}, **kw),
    "serve": lambda **kw: RegionConfig(admin_token=TOKEN, **kw),
    "frontdoor": lambda **kw: FrontdoorConfig(admin_token=TOKEN, **kw),
}


@pytest.mark.parametrize("role", CONFIGS)
def test_the_body_limit_is_a_setting_of_every_role(role: str) -> None:
    config = CONFIGS[role]
    extra = {"serve": ["--region", "eu"], "frontdoor": ["--region", "eu=http://x"]}.get(role, [])
    args = build_parser().parse_args([role, *extra, "--max-body-bytes", "2048"])
    assert config(max_body_bytes=args.max_body_bytes).max_body_bytes == 2048
    assert config().max_body_bytes == MAX_BODY_BYTES == 1 << 20
    with pytest.raises(ConfigError, match="max_body_bytes"):
        config(max_body_bytes=0)


def test_the_region_reads_its_limit_from_the_serve_arguments() -> None:
    args = build_parser().parse_args(["serve", "--region", "eu", "--max-body-bytes", "999"])
    assert RegionConfig.from_args(args, env={"AGGREGATOR_ADMIN_TOKEN": TOKEN}).max_body_bytes == 999
