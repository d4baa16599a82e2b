"""Request limits with the real servers: wallet, region and front door as processes, all on
waitress or all on granian, `--max-body-bytes` set. The body limit sits in the app, in front
of everything, so both servers answer alike, except where a server answers first: waitress
reads a whole body before the app runs and refuses a declared length past its backstop (16 x
the limit) itself, with a plain-text 413; granian streams, so the app refuses it unread."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import Proc, free_port, wait_http

ADMIN = {"Authorization": "Bearer test-admin-token"}
LIMIT = 64 << 10
PATHS = {
    "wallet": ["/transaction/bet", "/user/balance", "/operator/token", "/admin/faults"],
    "region": ["/player/round", "/player/launch", "/admin/faults"],
    "frontdoor": ["/player/round", "/player/launch", "/admin/faults"],
}


def start(name: str, args: list[str], procs: list[Proc], env: dict[str, str], logs: Path) -> str:
    port = free_port()
    proc = Proc(name, ["aggregator", *args, "--port", str(port), "--threads", "4"], env, logs)
    procs.append(proc.start())
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc=proc)
    return url


@pytest.fixture(params=["waitress", "granian"])
def roles(
    request: pytest.FixtureRequest, procs: list[Proc], base_env: dict[str, str], tmp_path: Path
) -> Iterator[dict[str, str]]:
    common = ["--server", request.param, "--max-body-bytes", str(LIMIT)]
    database = f"sqlite:///{tmp_path}/wallet.db"
    wallet = start("wallet", ["wallet", "--database", database, *common], procs, base_env, tmp_path)
    region_args = ["serve", "--region", "eu", "--wallet-url", wallet]
    region_args += ["--database", f"sqlite:///{tmp_path}/region.db", *common]
    region = start("region", region_args, procs, base_env, tmp_path)
    front_args = ["frontdoor", "--region", f"eu={region}", *common]
    front = start("frontdoor", front_args, procs, base_env, tmp_path)
    yield {"wallet": wallet, "region": region, "frontdoor": front}
    for proc in procs:
        assert "Traceback" not in proc.log(), proc.log()[-3000:]


def raw_post(url: str, path: str, head: str, body: bytes = b"") -> tuple[int, bytes, bytes]:
    """(status, headers, body) of a hand-written request: headers `head`, then `body`."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}\r\n"
        sock.sendall(request.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    headers, _, payload = data.partition(b"\r\n\r\n")
    return int(headers.split()[1]), headers.lower(), payload


CASES = {
    "array 10000 deep": (b"[" * 10_000 + b"]" * 10_000, 400),
    "object 10000 deep": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
    "not JSON": (b"{nope", 400),
    "over the limit": (b'{"a": "' + b"x" * LIMIT + b'"}', 413),
}


@pytest.mark.slow
def test_every_role_answers_hostile_bodies_with_json(roles: dict[str, str]) -> None:
    with requests.Session() as http:
        for role, paths in PATHS.items():
            for path in paths:
                for name, (body, status) in CASES.items():
                    answer = http.post(roles[role] + path, data=body, headers=ADMIN, timeout=10)
                    where = f"{role} {path} {name}: {answer.text[:200]}"
                    assert answer.status_code == status, where
                    assert answer.headers["Content-Type"].startswith("application/json"), where
                    assert isinstance(answer.json(), dict), where
                # a chunked body (no Content-Length) over the limit, streamed
                chunks = (b"x" * 8192 for _ in range(LIMIT // 8192 + 2))
                answer = http.post(roles[role] + path, data=chunks, headers=ADMIN, timeout=10)
                assert (answer.status_code, answer.json()["error"]) == (413, "payload_too_large")
        summary = http.get(roles["wallet"] + "/admin/ledger/summary", headers=ADMIN, timeout=10)
        assert summary.json()["transactions"] == 0
        for url in roles.values():
            assert http.get(url + "/healthz", timeout=10).status_code == 200


@pytest.mark.slow
def test_a_huge_declared_body_is_refused_before_it_is_sent(roles: dict[str, str]) -> None:
    """Content-Length: 8 GiB and no body at all: the answer comes at once (nobody waits for,
    or reads, the body). granian's is the app's JSON; waitress's backstop answers in text."""
    for role, paths in PATHS.items():
        status, headers, body = raw_post(roles[role], paths[0], "Content-Length: 8589934592\r\n")
        assert status == 413, (role, body)
        if b"server: granian" in headers:
            assert json.loads(body)["error"] == "payload_too_large"
