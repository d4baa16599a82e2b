"""The wallet as a real process: SIGKILL it under concurrent load, restart it on the same
SQLite file, and the ledger still adds up, with every answered RS_OK in it."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.aggregator.wallet.wallet_checks import check_ledger
from tests.conftest import Proc, free_port, wait_http

ADMIN = {"Authorization": "Bearer test-admin-token"}
PLAYERS = 6
CLIENTS = 6


def start_wallet(
    name: str, db: Path, env: dict[str, str], log_dir: Path, server: str = "granian"
) -> tuple[Proc, str]:
    port = free_port()
    args = ["aggregator", "wallet", "--port", str(port), "--database", f"sqlite:///{db}"]
    args += ["--server", server]
    proc = Proc(name, [*args, "--initial-balance", "100000", "--threads", "8"], env, log_dir)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/readyz", proc=proc)
    return proc, url


class Hammer:
    """Client threads playing bet+win rounds until the wallet dies (or a bound is reached);
    remembers every RS_OK answer and every call that got no answer."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url = url
        self.tokens = tokens
        self.ok: dict[str, tuple[str, dict[str, Any], int]] = {}  # uuid -> kind, body, balance
        self.unanswered: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def run(self, k: int, deadline: float) -> None:
        with requests.Session() as http:
            for i in range(5000):
                if time.monotonic() > deadline:
                    return
                user = f"p{(k + i) % PLAYERS}"
                rnd = f"c{k}-{i}"
                base = {"user": user, "token": self.tokens[user], "currency": "EUR", "round": rnd}
                bet = {**base, "transaction_uuid": f"{rnd}:bet", "amount": 10 + i % 50}
                win = {**base, "transaction_uuid": f"{rnd}:win", "amount": (i * 7) % 90}
                win["reference_transaction_uuid"] = f"{rnd}:bet"
                if not self.send(http, "bet", bet) or not self.send(http, "win", win):
                    return

    def send(self, http: requests.Session, kind: str, body: dict[str, Any]) -> bool:
        try:
            answer = http.post(f"{self.url}/transaction/{kind}", json=body, timeout=10).json()
        except requests.RequestException:
            with self.lock:
                self.unanswered.append((kind, body))
            return False
        if answer["status"] == "RS_OK":
            with self.lock:
                self.ok[body["transaction_uuid"]] = (kind, body, answer["balance"])
        return answer["status"] == "RS_OK"


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "waitress"])
def test_sigkill_under_load_keeps_the_ledger_consistent(
    server: str, tmp_path: Path, procs: list[Proc], base_env: dict[str, str]
) -> None:
    db = tmp_path / "var" / "wallet.db"
    wallet, url = start_wallet("wallet", db, base_env, tmp_path, server)
    procs.append(wallet)
    hammer = Hammer(url, _register(url))
    threads = [
        threading.Thread(target=hammer.run, args=(k, time.monotonic() + 20)) for k in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    waited = time.monotonic() + 15
    while len(hammer.ok) < 300 and time.monotonic() < waited:
        time.sleep(0.05)
    wallet.kill(signal.SIGKILL)
    for t in threads:
        t.join(timeout=30)
    assert len(hammer.ok) >= 300, "the load never got going"
    assert wallet.popen is not None and wallet.popen.returncode == -signal.SIGKILL

    again, hammer.url = start_wallet("wallet-restarted", db, base_env, tmp_path, server)
    procs.append(again)
    with requests.Session() as http:
        _check_after_restart(http, hammer)
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        check_ledger(engine)
    finally:
        engine.dispose()


def _register(url: str) -> dict[str, str]:
    with requests.Session() as http:
        return {
            f"p{n}": http.post(f"{url}/operator/token", json={"user": f"p{n}"}).json()["token"]
            for n in range(PLAYERS)
        }


def _check_after_restart(http: requests.Session, hammer: Hammer) -> None:
    url = hammer.url
    summary = http.get(f"{url}/admin/ledger/summary", headers=ADMIN).json()
    assert summary["consistent"], summary
    missing = set(hammer.ok) - _ok_uuids(http, url)
    assert not missing, f"answered RS_OK but not in the ledger: {sorted(missing)[:5]}"
    # answered calls replay their first answer across the restart, moving nothing
    for kind, body, balance in list(hammer.ok.values())[-40:]:
        answer = http.post(f"{url}/transaction/{kind}", json=body, timeout=10).json()
        assert (answer["status"], answer["balance"]) == ("RS_OK", balance)
    assert http.get(f"{url}/admin/ledger/summary", headers=ADMIN).json() == summary
    # calls cut off by the kill get a definite answer on retry, applied at most once
    assert hammer.unanswered, "the kill should have cut some calls off"
    for kind, body in hammer.unanswered:
        assert hammer.send(http, kind, body), (kind, body)
    summary = http.get(f"{url}/admin/ledger/summary", headers=ADMIN).json()
    assert summary["consistent"], summary


def _ok_uuids(http: requests.Session, url: str) -> set[str]:
    found: set[str] = set()
    cursor: str | None = None
    for _ in range(10_000):
        params: dict[str, Any] = {"limit": 1000, **({"after": cursor} if cursor else {})}
        page = http.get(f"{url}/admin/ledger/rounds", params=params, headers=ADMIN).json()
        for rnd in page["rounds"]:
            for row in rnd["bets"] + rnd["wins"] + rnd["rollbacks"]:
                if row["status"] == "RS_OK":
                    found.add(row["transaction_uuid"])
        cursor = page["next"]
        if cursor is None:
            return found
    raise AssertionError("rounds paging did not end")
