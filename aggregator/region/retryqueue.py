"""The wallet retry queue: wins and rollbacks the wallet did not acknowledge, kept until it does.

Items live in the region database, `pending` until a definite answer (RS_OK or any business
status) makes them `settled`. A failed attempt pushes `next_attempt_at` back exponentially
(1 s doubling to 60 s; items a failing batch never reached wait as long). Senders claim items
with one conditional UPDATE that sets a lease (owner + expiry) only where no live lease exists,
so two replays running at once (threads or processes, SQLite or PostgreSQL) never send the same
item at the same time; a sender that dies leaves a lease that simply expires. The wallet's
idempotency makes a late repeat harmless.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aggregator.errors import WalletCallError
from aggregator.region.connector import WalletAnswer
from aggregator.region.database import queue_table
from aggregator.region.metrics import RegionMetrics

log = logging.getLogger(__name__)

PENDING = "pending"
SETTLED = "settled"
OPERATIONS = ("win", "rollback")


@dataclass(frozen=True, kw_only=True)
class ReplayReport:
    replayed: int
    settled: int
    failed: int
    remaining: int

    def as_json(self) -> dict[str, int]:
        return {
            "replayed": self.replayed,
            "settled": self.settled,
            "failed": self.failed,
            "remaining": self.remaining,
        }


def backoff_s(attempts: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Delay before the next try after `attempts` failed tries (1 -> 1 s, doubling)."""
    return min(cap, base * 2.0 ** max(0, min(attempts, 30) - 1))


Sender = Callable[[str, Mapping[str, Any]], WalletAnswer]


class RetryQueue:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        region: str,
        send: Sender,
        metrics: RegionMetrics,
        clock: Callable[[], float] = time.time,
        lease_s: float = 60.0,
        give_up_after: int = 5,
        new_owner: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._engine = engine
        self._region = region
        self._send = send
        self._metrics = metrics
        self._clock = clock
        self._lease_s = lease_s
        self._give_up_after = give_up_after
        self._new_owner = new_owner
        # lets the worker skip the database while the queue is known to be empty; bumped by
        # every enqueue so an item added during a replay is never mistaken for "empty"
        self._generation = 0
        self._empty_at: int | None = None
        self._gen_lock = threading.Lock()

    def enqueue(self, operation: str, payload: Mapping[str, Any], error: str) -> bool:
        """Keep a win or rollback for later; False if that transaction is already queued."""
        if operation not in OPERATIONS:
            raise ValueError(f"only wins and rollbacks are queued, not {operation!r}")
        now = self._clock()
        row = {
            "region": self._region,
            "transaction_uuid": str(payload["transaction_uuid"]),
            "operation": operation,
            "payload": json.dumps(dict(payload), sort_keys=True),
            "status": PENDING,
            "attempts": 1,  # the live call that failed was the first attempt
            "next_attempt_at": now + backoff_s(1),
            "last_error": error[:500],
            "created_at": now,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(queue_table).values(**row))
        except sa.exc.IntegrityError:
            # the same round failed twice (a client retry): one queued item owes the money
            return False
        finally:
            with self._gen_lock:
                self._generation += 1
        return True

    def replay_due(self, max_items: int) -> ReplayReport | None:
        """The worker's replay: due items only, and no query at all while known empty."""
        with self._gen_lock:
            generation = self._generation
            if self._empty_at == generation:
                return None
        report = self.replay(max_items, due_only=True)
        if report.remaining == 0:
            with self._gen_lock:
                self._empty_at = generation
        return report

    def replay(self, max_items: int = 1000, *, due_only: bool = False) -> ReplayReport:
        """Send up to `max_items` pending items now (all of them, or only those due).

        After `give_up_after` failures in a row the wallet is evidently down: the rest of the
        batch is released untried rather than spending a timeout on each of them.
        """
        items = self._claim(max_items, due_only=due_only)
        settled = failed = streak = 0
        for i, item in enumerate(items):
            if self._attempt(item):
                settled, streak = settled + 1, 0
                continue
            failed, streak = failed + 1, streak + 1
            if streak >= self._give_up_after:
                # the rest wait as long as the item that just failed: hammering a wallet that
                # is down helps nobody, and a replay once it is healthy drains them at once
                self._release(items[i + 1 :], retry_at=self._clock() + backoff_s(item.attempts + 1))
                break
        self._metrics.replayed("settled", settled)
        self._metrics.replayed("failed", failed)
        return ReplayReport(
            replayed=settled + failed, settled=settled, failed=failed, remaining=self.stats()[0]
        )

    def _release(self, items: list[sa.Row[Any]], *, retry_at: float) -> None:
        if not items:
            return
        q = queue_table.c
        owner = items[0].lease_owner
        release = (
            sa.update(queue_table)
            .where(q.id.in_([item.id for item in items]) & (q.lease_owner == owner))
            .values(lease_owner=None, lease_until=None, next_attempt_at=retry_at)
        )
        with self._engine.begin() as conn:
            conn.execute(release)

    def _pending(self, now: float) -> sa.ColumnElement[bool]:
        q = queue_table.c
        return (
            (q.region == self._region)
            & (q.status == PENDING)
            & sa.or_(q.lease_until.is_(None), q.lease_until <= now)
        )

    def _claim(self, limit: int, *, due_only: bool) -> list[sa.Row[Any]]:
        now, owner = self._clock(), self._new_owner()
        q = queue_table.c
        free = self._pending(now)
        if due_only:
            free = free & (q.next_attempt_at <= now)
        candidates = sa.select(q.id).where(free).order_by(q.next_attempt_at, q.id).limit(limit)
        # the lease condition is repeated on the UPDATE itself: under concurrency the database
        # re-checks it per row, so a row leased by another sender in between is skipped
        claim = (
            sa.update(queue_table)
            .where(q.id.in_(candidates))
            .where(free)
            .values(lease_owner=owner, lease_until=now + self._lease_s)
        )
        with self._engine.begin() as conn:
            conn.execute(claim)
            rows = conn.execute(
                sa.select(queue_table).where(q.lease_owner == owner).order_by(q.id)
            ).all()
        return list(rows)

    def _attempt(self, item: sa.Row[Any]) -> bool:
        q = queue_table.c
        payload = json.loads(item.payload)
        mine = (q.id == item.id) & (q.lease_owner == item.lease_owner)
        try:
            answer = self._send(item.operation, payload)
        except WalletCallError as exc:
            attempts = item.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "next_attempt_at": self._clock() + backoff_s(attempts),
                "last_error": str(exc)[:500],
                "lease_owner": None,
                "lease_until": None,
            }
            ok = False
        else:
            if not answer.ok:
                # definite, so settled; kept with its status for whoever reconciles
                log.warning(
                    "retry queue: %s %s settled with %s",
                    item.operation,
                    item.transaction_uuid,
                    answer.status,
                )
            values = {
                "status": SETTLED,
                "result_status": answer.status,
                "settled_at": self._clock(),
                "attempts": item.attempts + 1,
                "lease_owner": None,
                "lease_until": None,
            }
            ok = True
        with self._engine.begin() as conn:
            conn.execute(sa.update(queue_table).where(mine).values(**values))
        return ok

    def stats(self) -> tuple[int, float | None]:
        """(pending items, age in seconds of the oldest one or None)."""
        q = queue_table.c
        query = sa.select(sa.func.count(), sa.func.min(q.created_at)).where(
            (q.region == self._region) & (q.status == PENDING)
        )
        with self._engine.connect() as conn:
            depth, oldest = conn.execute(query).one()
        age = None if oldest is None else max(0.0, self._clock() - float(oldest))
        return int(depth), age

    def items(self, *, status: str = PENDING, limit: int = 100) -> list[dict[str, Any]]:
        q = queue_table.c
        query = (
            sa.select(
                q.id,
                q.transaction_uuid,
                q.operation,
                q.status,
                q.attempts,
                q.next_attempt_at,
                q.last_error,
                q.result_status,
                q.created_at,
                q.settled_at,
            )
            .where((q.region == self._region) & (q.status == status))
            .order_by(q.created_at, q.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def purge_settled(self, older_than_s: float) -> int:
        q = queue_table.c
        cutoff = self._clock() - older_than_s
        purge = sa.delete(queue_table).where(
            (q.region == self._region) & (q.status == SETTLED) & (q.settled_at < cutoff)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(purge).rowcount)


class RetryWorker:
    """Background thread that sends due items; a full batch is followed at once by the next."""

    def __init__(
        self,
        queue: RetryQueue,
        *,
        interval_s: float = 0.5,
        batch: int = 100,
        keep_settled_s: float = 86_400.0,
    ) -> None:
        self._queue = queue
        self._interval = interval_s
        self._batch = batch
        self._keep_settled = keep_settled_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wallet-retry", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        rounds = 0
        while not self._stop.is_set():
            report = None
            try:
                report = self._queue.replay_due(self._batch)
                rounds += 1
                if rounds % 1200 == 0:  # every ten minutes or so at the default interval
                    self._queue.purge_settled(self._keep_settled)
            except Exception:
                # a database hiccup must not kill the worker; the items stay pending
                log.exception("wallet retry worker: replay failed")
            if report is None or report.replayed < self._batch:
                self._stop.wait(self._interval)
