"""One simulated player's behaviour: get a token, launch, play rounds, relaunch, and retry a
round whose outcome is unknown with the same round id until some region gives a definite answer.

Time and randomness come in from outside (`clock`, `sleep`, one seeded RNG per player), so the
same seed plays the same rounds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from aggregator.loadgen.client import Reply, Target
from aggregator.loadgen.report import LaunchOutcome, Stats, UnknownRound

# A player opens a new game after these; 401, 404 and 409 (the session itself is unusable
# here: isolated provider, provider not served in the failover region, ...) do the same.
RELAUNCH_ON = frozenset(
    {"provider_isolated", "provider_unavailable", "invalid_session", "rs_error_invalid_token"}
)
RELAUNCH_STATUSES = frozenset({401, 404, 409})
RETOKEN_ON = frozenset({"rs_error_invalid_token", "invalid_token"})


class Verdict(StrEnum):
    SETTLED = "settled"
    FAILED = "failed"  # definite: the region says no money moved (or will, once queues drain)
    RETRY = "retry"  # unknown: the same round id must be sent again


def judge_round(reply: Reply) -> Verdict:
    """Protocol rule: only a settled 200, a 4xx, or a 5xx that says `money` is definite."""
    if reply.status is None:
        return Verdict.RETRY
    if reply.status == 200:
        return Verdict.SETTLED if reply.body.get("status") == "settled" else Verdict.FAILED
    if 400 <= reply.status < 500 or "money" in reply.body:
        return Verdict.FAILED
    return Verdict.RETRY


@dataclass(frozen=True, kw_only=True)
class PlayConfig:
    bet: int = 100
    currency: str = "EUR"
    categories: tuple[str, ...] = ()
    rounds_per_session: tuple[int, int] = (5, 50)
    max_tries: int = 10
    retry_base_s: float = 0.25
    retry_cap_s: float = 3.0  # 10 tries then span about 20 s
    retry_window_s: float = 20.0  # and never longer than this, however slow each try is


class Player:
    """Mutable state of one player; exactly one worker thread owns it at a time."""

    def __init__(self, user: str, rng: random.Random, run_id: str) -> None:
        self.user = user
        self.rng = rng
        self.run_id = run_id
        self.token: str | None = None
        self.currency: str | None = None
        self.session: str | None = None
        self.rounds_left = 0
        self.seq = 0

    def next_round_id(self) -> str:
        self.seq += 1
        return f"{self.run_id}-{self.user}-{self.seq}"


def make_players(count: int, rng: random.Random, run_id: str, prefix: str = "p") -> list[Player]:
    # one RNG per player, seeded from the run's RNG: a player's choices do not depend on how
    # the threads interleave
    return [
        Player(f"{prefix}{i}", random.Random(rng.getrandbits(64)), run_id) for i in range(count)
    ]


class Driver:
    def __init__(
        self,
        target: Target,
        stats: Stats,
        config: PlayConfig,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], object],
        aborted: Callable[[], bool] = lambda: False,
    ) -> None:
        self._target = target
        self._stats = stats
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._aborted = aborted

    def join(self, player: Player) -> bool:
        """Fetch the player's token (first sight creates the wallet user); True on success."""
        reply = self._target.token(player.user)
        if reply.status != 200 or "token" not in reply.body:
            return False
        player.token = str(reply.body["token"])
        player.currency = str(reply.body.get("currency") or self._config.currency)
        self._stats.player_joined(player.user, int(reply.body.get("balance", 0)))
        return True

    def step(self, player: Player) -> None:
        """One scheduled round for this player, launching first when it has no session."""
        if player.token is None and not self.join(player):
            self._stats.launch(LaunchOutcome.FAILED, None, "token_unavailable")
            return
        if player.session is None or player.rounds_left <= 0:
            player.session = None
            if not self.launch(player):
                return
        self.play_round(player)

    def launch(self, player: Player) -> bool:
        body: dict[str, object] = {
            "user": player.user,
            "token": player.token,
            "currency": player.currency or self._config.currency,
        }
        if self._config.categories:
            body["category"] = player.rng.choice(self._config.categories)
        started = self._clock()
        reply = self._target.launch(body)
        latency = (self._clock() - started) * 1000.0
        if reply.status == 200 and isinstance(reply.body.get("session"), str):
            failover = reply.body.get("outcome") == LaunchOutcome.FAILOVER.value
            outcome = LaunchOutcome.FAILOVER if failover else LaunchOutcome.OK
            self._stats.launch(outcome, latency)
            player.session = reply.body["session"]
            player.rounds_left = player.rng.randint(*self._config.rounds_per_session)
            return True
        self._stats.launch(LaunchOutcome.FAILED, latency if reply.status else None, reply.code)
        if reply.code.lower() in RETOKEN_ON:
            player.token = None
        return False

    def play_round(self, player: Player) -> None:
        assert player.session is not None
        round_id = player.next_round_id()
        body = {"session": player.session, "round": round_id, "bet": self._config.bet}
        player.rounds_left -= 1
        self._stats.round_started()
        started = self._clock()
        reply = self._send_until_definite(body)
        latency = (self._clock() - started) * 1000.0
        verdict = judge_round(reply)
        if verdict is Verdict.SETTLED:
            bet = int(reply.body.get("bet", self._config.bet))
            self._stats.round_settled(player.user, bet, int(reply.body.get("win", 0)), latency)
        elif verdict is Verdict.FAILED:
            self._stats.round_failed(reply.code, latency)
            self._after_failure(player, reply)
        else:
            unknown = UnknownRound(
                round=round_id, user=player.user, bet=self._config.bet, last_error=reply.code
            )
            self._stats.round_unknown(unknown)
            player.session = None  # start afresh: the session's region may be gone

    def _send_until_definite(self, body: dict[str, object]) -> Reply:
        started = self._clock()
        reply = self._target.round(body)
        for attempt in range(1, self._config.max_tries):
            if judge_round(reply) is not Verdict.RETRY or self._aborted():
                break
            if self._clock() - started >= self._config.retry_window_s:
                break
            self._stats.round_retried()
            self._sleep(
                min(self._config.retry_base_s * 2 ** (attempt - 1), self._config.retry_cap_s)
            )
            reply = self._target.round(body)
        return reply

    def _after_failure(self, player: Player, reply: Reply) -> None:
        code = reply.code.lower()
        if code in RETOKEN_ON:
            player.token = None
        if code in RELAUNCH_ON or code in RETOKEN_ON or reply.status in RELAUNCH_STATUSES:
            player.session = None


def retry_schedule(config: PlayConfig) -> Sequence[float]:
    """The sleeps between tries of one round (documentation and tests)."""
    return [
        min(config.retry_base_s * 2 ** (i - 1), config.retry_cap_s)
        for i in range(1, config.max_tries)
    ]
