"""The round flow (docs/aggregator-protocol.md, "Money flow of one round").

checks (served here, isolation, breaker) -> wallet bet -> provider plays -> wallet win. The
wallet keys and the game outcome derive from the round id (and the seed, which every region
must share), so a retried round, on any region, sends the same transactions with the same
amounts and the wallet's idempotency does the rest.

Every refusal says "money": "none", and makes it true first: the round's bet is rolled back
(this attempt's, or one an earlier attempt left behind), unless the wallet answers that the
round is already paid, in which case the round is answered as settled. When that rollback
gets no answer at all, the refusal carries no "money": the outcome is unknown until it does.
A win or rollback the wallet does not acknowledge goes to the retry queue: that money is owed.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from aggregator.errors import ApiError, Unavailable, WalletCallError
from aggregator.region.catalogue import Game, RegionCatalogue, Volatility
from aggregator.region.connector import WalletConnector
from aggregator.region.metrics import ActiveSessions, RegionMetrics
from aggregator.region.providers import ProviderGateway
from aggregator.region.retryqueue import RetryQueue
from aggregator.region.state import ProviderStateStore
from aggregator.sessions import GameSession

RS_ERROR_DUPLICATE_TRANSACTION = "RS_ERROR_DUPLICATE_TRANSACTION"

# fixed forever: changing it would change every round's wallet keys
NAMESPACE = uuid.UUID("6f1c3d2e-9a47-5b8e-a1f0-3c5d7e9b2a41")

# chance that a round pays anything; the size of a win is scaled so the long-run return is the
# game's RTP whatever the volatility
HIT_RATE = {Volatility.LOW: 0.45, Volatility.MEDIUM: 0.30, Volatility.HIGH: 0.18}
MAX_WIN_MULTIPLIER = 5_000

# wallet business statuses on a bet, as the player's HTTP status
DECLINED_HTTP = {
    "RS_ERROR_NOT_ENOUGH_MONEY": 402,
    "RS_ERROR_INVALID_TOKEN": 401,
    "RS_ERROR_WRONG_SYNTAX": 400,
    "RS_ERROR_WRONG_TYPES": 400,
}


class RoundRefused(ApiError):
    """A definite refusal with its own HTTP status (402, 401, 409, ...)."""

    def __init__(self, status: int, message: str, *, code: str, **extra: object) -> None:
        super().__init__(message, code=code, **extra)
        self.status = status


@dataclass(frozen=True, kw_only=True)
class RoundKeys:
    bet: str
    win: str
    rollback: str

    @classmethod
    def for_round(cls, round_id: str) -> RoundKeys:
        return cls(
            bet=str(uuid.uuid5(NAMESPACE, round_id + ":bet")),
            win=str(uuid.uuid5(NAMESPACE, round_id + ":win")),
            rollback=str(uuid.uuid5(NAMESPACE, round_id + ":rollback")),
        )


def game_outcome(seed: int, round_id: str, game: Game, bet: int) -> int:
    """The win of a round (0 for a loss), a pure function of seed, round, game and bet."""
    rng = random.Random(f"{seed}:{round_id}")
    hit = HIT_RATE[game.volatility]
    if rng.random() >= hit:
        return 0
    multiplier = rng.expovariate(hit / game.rtp)  # mean rtp / hit
    return int(bet * min(multiplier, MAX_WIN_MULTIPLIER))


class RoundService:
    def __init__(
        self,
        *,
        catalogue: RegionCatalogue,
        gateway: ProviderGateway,
        state: ProviderStateStore,
        wallet: WalletConnector,
        queue: RetryQueue,
        metrics: RegionMetrics,
        sessions: ActiveSessions,
        seed: int,
    ) -> None:
        self._catalogue = catalogue
        self._gateway = gateway
        self._state = state
        self._wallet = wallet
        self._queue = queue
        self._metrics = metrics
        self._sessions = sessions
        self._seed = seed

    def play(self, session: GameSession, round_id: str, bet: int) -> dict[str, Any]:
        """Play one round; a dict for 200, an ApiError (with "money") for anything else."""
        provider, keys = session.provider, RoundKeys.for_round(round_id)
        base = {
            "user": session.user,
            "token": session.token,
            "round": round_id,
            "currency": session.currency,
            "game_code": session.game,
        }
        refusal = self._refusal(session)
        if refusal is not None:
            return self._refuse(provider, base, keys, bet, "rejected", refusal)
        bet_tx = {**base, "transaction_uuid": keys.bet, "amount": bet, "round_closed": False}
        try:
            placed = self._wallet.bet(bet_tx)
        except WalletCallError as exc:
            self._gateway.abandon(provider)
            failure = Unavailable(
                f"the wallet did not answer: {exc}", code="wallet_unavailable", money="none"
            )
            return self._refuse(provider, base, keys, bet, "wallet_unavailable", failure)
        if not placed.ok:
            self._gateway.abandon(provider)
            self._metrics.round(provider, "declined")
            raise RoundRefused(
                DECLINED_HTTP.get(placed.status, 409),
                f"the wallet declined the bet: {placed.status}",
                code=placed.status.lower(),
                money="none",
            )
        play = self._gateway.call(provider, "round")
        if not play.ok:
            failure = Unavailable(
                f"provider {provider!r} {play.outcome.value}",
                code="provider_unavailable",
                money="none",
            )
            return self._refuse(provider, base, keys, bet, "provider_unavailable", failure)
        win = game_outcome(self._seed, round_id, self._catalogue.games[session.game], bet)
        return self._pay(provider, base, keys, bet, win, placed.balance, play.latency_s)

    def _pay(
        self,
        provider: str,
        base: dict[str, Any],
        keys: RoundKeys,
        bet: int,
        win: int,
        balance: int | None,
        latency_s: float,
    ) -> dict[str, Any]:
        win_tx = {
            **base,
            "transaction_uuid": keys.win,
            "reference_transaction_uuid": keys.bet,
            "amount": win,
            "round_closed": True,
        }
        result: dict[str, Any] = {"round": base["round"], "status": "settled", "bet": bet}
        result.update(win=win, balance=balance, provider=provider)
        result["provider_latency_ms"] = round(latency_s * 1000.0, 1)
        try:
            paid = self._wallet.win(win_tx)
        except WalletCallError as exc:
            self._queue.enqueue("win", win_tx, str(exc))
            self._metrics.round(provider, "win_pending")
            # the balance is the one after the bet: the win is owed and will be paid
            return {**result, "win_pending": True}
        if not paid.ok:
            self._metrics.round(provider, "declined")
            extra = {"money": "none"} if paid.status == "RS_ERROR_TRANSACTION_ROLLED_BACK" else {}
            raise RoundRefused(
                409, f"the wallet refused the win: {paid.status}", code=paid.status.lower(), **extra
            )
        self._metrics.round(provider, "settled")
        return {**result, "balance": paid.balance}

    def _refusal(self, session: GameSession) -> ApiError | None:
        """Why this round cannot be played here at all, or None (admits it past the breaker)."""
        provider = session.provider
        game = self._catalogue.games.get(session.game)
        if game is None or game.provider != provider:
            return RoundRefused(
                409,
                f"game {session.game!r} of provider {provider!r} "
                f"is not served in region {self._catalogue.region!r}",
                code="provider_not_in_region",
                money="none",
            )
        self._sessions.touch(session.session_id, provider)
        if self._state.is_isolated(provider):
            self._metrics.provider_call(provider, "round", "rejected", None)
            return RoundRefused(
                409, f"provider {provider!r} is isolated", code="provider_isolated", money="none"
            )
        if not self._gateway.admit(provider, "round"):
            return Unavailable(
                f"provider {provider!r} circuit breaker is open",
                code="provider_unavailable",
                money="none",
            )
        return None

    def _refuse(
        self,
        provider: str,
        base: dict[str, Any],
        keys: RoundKeys,
        bet: int,
        outcome: str,
        refusal: ApiError,
    ) -> dict[str, Any]:
        """Refuse the round with "money": "none", after making that true.

        This attempt's bet, or an earlier attempt's (a region that died between bet and win,
        a front door that gave up waiting), may stand in the wallet, so the bet is rolled back
        first: refunded, or a tombstone if it never landed. Unless the wallet says the round is
        already paid: then that win stands, the same win as ever (a function of the round id).
        """
        rollback_tx = {
            **base,
            "transaction_uuid": keys.rollback,
            "reference_transaction_uuid": keys.bet,
            "amount": bet,
            "round_closed": True,
        }
        try:
            undone = self._wallet.rollback(rollback_tx)
        except WalletCallError as exc:
            self._queue.enqueue("rollback", rollback_tx, f"{refusal.message}; rollback: {exc}")
            self._metrics.round(provider, outcome)
            # The refund is owed and queued, but if an earlier attempt of this round was paid
            # elsewhere it will be refused: until the wallet answers, the round's money is not
            # ours to tell. No "money" field: the client retries the same round id.
            raise Unavailable(
                f"{refusal.message}; voiding the round got no answer from the wallet ({exc})",
                code=refusal.code,
            ) from exc
        else:
            if undone.status == RS_ERROR_DUPLICATE_TRANSACTION:
                return self._already_paid(provider, base, bet, undone.balance)
        self._metrics.round(provider, outcome)
        raise refusal

    def _already_paid(
        self, provider: str, base: dict[str, Any], bet: int, balance: int | None
    ) -> dict[str, Any]:
        game = self._catalogue.known_games.get(base["game_code"])
        if game is None:
            self._metrics.round(provider, "declined")
            raise RoundRefused(
                409,
                f"round {base['round']!r} was already paid elsewhere, for a game "
                f"({base['game_code']!r}) this catalogue does not know",
                code="round_already_settled",
            )
        win = game_outcome(self._seed, base["round"], game, bet)
        self._metrics.round(provider, "settled")
        return {
            "round": base["round"],
            "status": "settled",
            "bet": bet,
            "win": win,
            "balance": balance,
            "provider": provider,
        }
