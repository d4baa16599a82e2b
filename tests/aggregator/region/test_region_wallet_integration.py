"""Launch and rounds against the real operator wallet app, served by waitress on a free port:
the money must add up, through wallet failures on both sides and the retry queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aggregator.reconcile import round_facts
from tests.aggregator.region.conftest import TOKEN, MakeRegion, RegionHarness
from tests.conftest import ServedApp

wallet_pkg = pytest.importorskip("aggregator.wallet")

INITIAL = 1_000_000


class RealWallet:
    def __init__(self, tmp_path: Path) -> None:
        config = wallet_pkg.WalletConfig(
            admin_token=TOKEN,
            database_url=f"sqlite:///{tmp_path}/wallet.db",
            token_secret="wallet-secret",
            initial_balance=INITIAL,
        )
        self.app = wallet_pkg.create_app(config)
        self.served = ServedApp(self.app)
        self.url = self.served.url
        self.http = requests.Session()

    def post(self, path: str, body: dict[str, Any], admin: bool = False) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"} if admin else {}
        r = self.http.post(self.url + path, json=body, headers=headers, timeout=10)
        return r.json()

    def delete(self, path: str) -> None:
        self.http.delete(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    def get(self, path: str) -> Any:
        r = self.http.get(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def summary(self) -> dict[str, Any]:
        return dict(self.get("/admin/ledger/summary"))

    def round_problems(self) -> list[tuple[str, str, Any]]:
        """Rounds the wallet does not call closed, or that break the round rules (reconcile)."""
        rounds = self.get("/admin/ledger/rounds?limit=1000")["rounds"]
        assert len(rounds) < 1000
        facts = [(r["round"], r["state"], round_facts(r).problems) for r in rounds]
        return [f for f in facts if f[1] in ("open", "inconsistent") or f[2]]

    def close(self) -> None:
        self.http.close()
        self.served.close()
        self.app.extensions["wallet"].close()


@pytest.fixture
def real_wallet(tmp_path: Path) -> Iterator[RealWallet]:
    wallet = RealWallet(tmp_path)
    yield wallet
    wallet.close()


class Players:
    """Plays rounds and keeps each player's expected balance from the region's answers."""

    def __init__(self, h: RegionHarness, wallet: RealWallet, n: int) -> None:
        self.h, self.wallet = h, wallet
        self.tokens = {
            f"p{i}": wallet.post("/operator/token", {"user": f"p{i}"})["token"] for i in range(n)
        }
        self.expected = dict.fromkeys(self.tokens, INITIAL)
        self.sessions: dict[str, str] = {}
        self.outcomes: dict[str, int] = {}
        self.unknown: list[tuple[str, str, str, int]] = []

    def launch_all(self, category: str) -> None:
        for user, token in self.tokens.items():
            r = self.h.launch(user=user, token=token, category=category)
            assert r.status_code == 200, r.get_json()
            self.sessions[user] = r.get_json()["session"]

    def play(self, prefix: str, rounds: int, bet: int = 250) -> None:
        for user, session in self.sessions.items():
            for i in range(rounds):
                r = self.h.play(session, f"{prefix}-{user}-{i}", bet=bet)
                body = r.get_json()
                key = "win_pending" if body.get("win_pending") else body.get("error", "settled")
                self.outcomes[key] = self.outcomes.get(key, 0) + 1
                self._settle(user, session, f"{prefix}-{user}-{i}", bet, r.status_code, body)

    def _settle(
        self, user: str, session: str, round_id: str, bet: int, status: int, body: dict[str, Any]
    ) -> None:
        if status == 200:
            self.expected[user] += body["win"] - body["bet"]
        elif "money" in body:
            assert body["money"] == "none", body
        else:  # an unknown outcome: the client retries the same round id later, as loadgen does
            self.unknown.append((user, session, round_id, bet))

    def resolve_unknown(self) -> None:
        pending, self.unknown = self.unknown, []
        for user, session, round_id, bet in pending:
            r = self.h.play(session, round_id, bet=bet)
            self._settle(user, session, round_id, bet, r.status_code, r.get_json())
        assert self.unknown == [], self.unknown

    def balances(self) -> dict[str, int]:
        return {
            user: self.wallet.post("/user/balance", {"user": user, "token": token})["balance"]
            for user, token in self.tokens.items()
        }


def test_launch_and_rounds_move_exactly_bet_and_win(
    make_region: MakeRegion, real_wallet: RealWallet
) -> None:
    h = make_region(wallet_url=real_wallet.url)
    players = Players(h, real_wallet, 3)
    players.launch_all("slots")
    players.play("plain", 15)
    assert players.outcomes == {"settled": 45}
    assert players.balances() == players.expected
    # a retried round answers the same, with the wallet's balance, and moves nothing
    again = h.play(players.sessions["p0"], "plain-p0-14", bet=250)
    assert again.status_code == 200
    assert again.get_json()["balance"] == players.expected["p0"]
    # the same round id with another stake is the wallet's duplicate: refused, no money
    other = h.play(players.sessions["p0"], "plain-p0-14", bet=100)
    assert other.status_code == 409
    assert other.get_json()["error"] == "rs_error_duplicate_transaction"
    assert players.balances() == players.expected
    assert real_wallet.round_problems() == []


def test_money_adds_up_through_wallet_failures_and_the_retry_queue(
    make_region: MakeRegion, real_wallet: RealWallet
) -> None:
    h = make_region(wallet_url=real_wallet.url, wallet_timeout_s=0.3)
    players = Players(h, real_wallet, 3)
    players.launch_all("live")
    # the wallet answers 500 to every win: the wins are owed, queued, and the round settles
    fault = real_wallet.post(
        "/admin/faults", {"kind": "wallet_errors", "target": "win", "magnitude": 1}, admin=True
    )
    players.play("wins-fail", 5)
    assert players.outcomes["win_pending"] == 15
    real_wallet.delete(f"/admin/faults/{fault['id']}")
    # region side: half of the calls are sent but their answers discarded
    h.admin("POST", "/admin/faults", {"kind": "wallet_timeout", "target": "eu", "magnitude": 0.5})
    players.play("chaos", 10)
    assert h.region.queue.stats()[0] > 15
    h.region.faults.remove(h.region.faults.active()[0].id)
    players.resolve_unknown()
    for _ in range(3):  # replaying twice more moves nothing
        h.admin("POST", "/admin/wallet/queue/replay", {"max_items": 1000})
    assert h.region.queue.stats()[0] == 0
    assert players.balances() == players.expected
    summary = real_wallet.summary()
    assert summary["total_balance"] == sum(players.expected.values())
    # the region's bets, wins, rollbacks and retries keep the round rules: one bet, one
    # settlement of it, same round and user, every round closed once the queue drained
    assert real_wallet.round_problems() == []
