"""The durable wallet retry queue: backoff, replay, leases, and exactly-once under concurrent
replays (threads; SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from aggregator.faults import FaultBook
from aggregator.region.connector import WalletConnector
from aggregator.region.database import create_schema, make_engine
from aggregator.region.metrics import RegionMetrics
from aggregator.region.retryqueue import RetryQueue, RetryWorker, backoff_s, queue_table
from tests.aggregator.region.conftest import Clock, MakeRegion
from tests.aggregator.region.region_fakes import FakeWallet
from tests.conftest import ServedApp


def test_backoff_doubles_from_a_second_to_a_minute() -> None:
    assert [backoff_s(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_s(10_000) == 60


class QueueRig:
    """A queue (or several, as separate "processes") in front of the fake wallet over HTTP."""

    def __init__(self, url: str, served: ServedApp, wallet: FakeWallet) -> None:
        self.url, self.served, self.wallet = url, served, wallet
        self.clock = Clock()
        self.engines: list[sa.Engine] = []
        self.connectors: list[WalletConnector] = []

    def queue(self, *, lease_s: float = 60.0) -> RetryQueue:
        engine = make_engine(self.url)
        create_schema(engine)
        metrics = RegionMetrics("eu", CollectorRegistry())
        connector = WalletConnector(
            self.served.url,
            region="eu",
            timeout_s=2.0,
            faults=FaultBook(clock=self.clock),
            metrics=metrics,
            rng=random.Random(1),
        )
        self.engines.append(engine)
        self.connectors.append(connector)
        return RetryQueue(
            engine,
            region="eu",
            send=connector.call,
            metrics=metrics,
            clock=self.clock,
            lease_s=lease_s,
        )

    def seed_wins(self, queue: RetryQueue, n: int) -> list[str]:
        """n rounds whose bet landed and whose win is owed."""
        uuids = []
        for i in range(n):
            bet = {"user": f"u{i % 7}", "token": "t", "round": f"q{i}", "currency": "EUR"}
            self.wallet.handle(
                "bet", {**bet, "transaction_uuid": f"bet-{i}", "amount": 10, "round_closed": False}
            )
            win = {
                **bet,
                "transaction_uuid": f"win-{i}",
                "reference_transaction_uuid": f"bet-{i}",
                "amount": 25,
                "round_closed": True,
            }
            assert queue.enqueue("win", win, "timeout")
            uuids.append(f"win-{i}")
        return uuids

    def settled_rows(self) -> Counter[str]:
        with self.engines[0].connect() as conn:
            rows = conn.execute(
                sa.select(queue_table.c.transaction_uuid).where(queue_table.c.status == "settled")
            ).scalars()
            return Counter(rows)

    def close(self) -> None:
        for connector in self.connectors:
            connector.close()
        for engine in self.engines:
            engine.dispose()


@pytest.fixture
def sqlite_rig(tmp_path: Path, fake_wallet: tuple[FakeWallet, ServedApp]) -> Iterator[QueueRig]:
    wallet, served = fake_wallet
    rig = QueueRig(f"sqlite:///{tmp_path}/queue.db", served, wallet)
    yield rig
    rig.close()


@pytest.fixture
def postgres_rig(
    postgres_schema: str, fake_wallet: tuple[FakeWallet, ServedApp]
) -> Iterator[QueueRig]:
    wallet, served = fake_wallet
    rig = QueueRig(postgres_schema, served, wallet)
    yield rig
    rig.close()


def replay_concurrently(queues: list[RetryQueue], batch: int) -> list[int]:
    """Each queue replays in small batches until nothing is left; returns settled per queue."""
    barrier = threading.Barrier(len(queues))
    settled = [0] * len(queues)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(1000):  # bounded: far more batches than needed
                report = queues[i].replay(batch)
                settled[i] += report.settled
                if report.remaining == 0 and report.replayed == 0:
                    return
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(queues))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return settled


def check_exactly_once(rig: QueueRig, uuids: list[str], settled: list[int]) -> None:
    sent = Counter(rig.wallet.sent("win"))
    assert set(sent) == set(uuids)
    assert max(sent.values()) == 1, [u for u, n in sent.items() if n > 1]
    assert sum(settled) == len(uuids)
    assert rig.settled_rows() == Counter(uuids)
    rig.wallet.record_applied()
    assert all(rig.wallet.applied[u] == 1 for u in uuids)


@pytest.mark.parametrize("shared_engine", [True, False], ids=["threads", "two-engines"])
def test_concurrent_replays_send_each_item_once_sqlite(
    sqlite_rig: QueueRig, shared_engine: bool
) -> None:
    first = sqlite_rig.queue()
    uuids = sqlite_rig.seed_wins(first, 120)
    queues = [first, first] if shared_engine else [first, sqlite_rig.queue()]
    settled = replay_concurrently(queues, batch=7)
    check_exactly_once(sqlite_rig, uuids, settled)


@pytest.mark.postgres
def test_concurrent_replays_send_each_item_once_postgres(postgres_rig: QueueRig) -> None:
    queues = [postgres_rig.queue() for _ in range(3)]
    uuids = postgres_rig.seed_wins(queues[0], 90)
    settled = replay_concurrently(queues, batch=7)
    check_exactly_once(postgres_rig, uuids, settled)


def test_a_live_lease_hides_an_item_and_an_expired_one_frees_it(sqlite_rig: QueueRig) -> None:
    a, b = sqlite_rig.queue(lease_s=30), sqlite_rig.queue(lease_s=30)
    sqlite_rig.seed_wins(a, 3)
    claimed = a._claim(10, due_only=False)  # as if `a` died right after claiming
    assert len(claimed) == 3
    assert b.replay(10).replayed == 0
    sqlite_rig.clock.advance(30)
    report = b.replay(10)
    assert (report.replayed, report.settled, report.remaining) == (3, 3, 0)


def test_failed_attempts_back_off_and_the_worker_only_takes_due_items(
    sqlite_rig: QueueRig,
) -> None:
    q = sqlite_rig.queue()
    sqlite_rig.seed_wins(q, 2)
    sqlite_rig.wallet.fail["win"] = "error"
    assert q.replay(10, due_only=True).replayed == 0  # first retry is due 1 s after the enqueue
    sqlite_rig.clock.advance(1.0)
    report = q.replay(10, due_only=True)
    assert (report.replayed, report.failed, report.remaining) == (2, 2, 2)
    items = q.items()
    assert [i["attempts"] for i in items] == [2, 2]
    assert items[0]["next_attempt_at"] == pytest.approx(sqlite_rig.clock.now + 2.0)
    assert "HTTP 500" in items[0]["last_error"]
    sqlite_rig.clock.advance(1.9)
    assert q.replay(10, due_only=True).replayed == 0
    # the admin replay drives everything pending now, due or not
    sqlite_rig.wallet.fail.clear()
    report = q.replay(10)
    assert (report.replayed, report.settled, report.remaining) == (2, 2, 0)
    assert {i["result_status"] for i in q.items(status="settled")} == {"RS_OK"}


def test_a_dead_wallet_stops_the_batch_and_releases_the_rest(sqlite_rig: QueueRig) -> None:
    q = sqlite_rig.queue()
    sqlite_rig.seed_wins(q, 20)
    sqlite_rig.wallet.fail["win"] = "error"
    report = q.replay(100)
    # five failures in a row: the other 15 are not each given a timeout's worth of waiting
    assert (report.replayed, report.failed, report.remaining) == (5, 5, 20)
    assert len(sqlite_rig.wallet.sent("win")) == 5
    attempts = Counter(item["attempts"] for item in q.items())
    assert attempts == {1: 15, 2: 5}
    # released, not leased: the next replay may take them at once
    assert q.replay(100).replayed == 5
    sqlite_rig.wallet.fail.clear()
    assert q.replay(100).remaining == 0


def test_the_worker_replay_skips_the_database_while_the_queue_is_known_empty(
    sqlite_rig: QueueRig,
) -> None:
    q = sqlite_rig.queue()
    assert q.replay_due(10) is not None  # unknown at start: looks once
    assert q.replay_due(10) is None  # known empty: no query
    sqlite_rig.seed_wins(q, 2)  # an enqueue wakes it up
    sqlite_rig.clock.advance(1.0)
    report = q.replay_due(10)
    assert report is not None and report.settled == 2
    assert q.replay_due(10) is None


def test_enqueueing_the_same_transaction_twice_keeps_one_item(sqlite_rig: QueueRig) -> None:
    q = sqlite_rig.queue()
    payload = {"transaction_uuid": "w-1", "user": "u", "amount": 1}
    assert q.enqueue("win", payload, "timeout")
    assert not q.enqueue("win", payload, "timeout again")
    assert q.stats()[0] == 1
    with pytest.raises(ValueError, match="'bet'"):
        q.enqueue("bet", payload, "x")


def test_settled_items_are_purged_after_the_retention(sqlite_rig: QueueRig) -> None:
    q = sqlite_rig.queue()
    sqlite_rig.seed_wins(q, 2)
    q.replay(10)
    assert q.purge_settled(3600) == 0
    sqlite_rig.clock.advance(3601)
    assert q.purge_settled(3600) == 2


def test_the_worker_thread_settles_due_items_and_stops(make_region: MakeRegion) -> None:
    h = make_region()
    h.wallet.fail["win"] = "error"
    h.play(h.session("ne-starburst"), "worker-1")
    assert h.region.queue.stats()[0] == 1
    h.wallet.fail.clear()
    h.clock.advance(1)
    worker = RetryWorker(h.region.queue, interval_s=0.02)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while h.region.queue.stats()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert h.region.queue.stats()[0] == 0
    assert (
        h.wallet.sent("win").count(h.region.queue.items(status="settled")[0]["transaction_uuid"])
        == 2
    )


def test_items_a_failing_batch_never_reached_wait_too(sqlite_rig: QueueRig) -> None:
    """Five failures in a row stop the batch; the untried rest must not stay due, or the
    worker would hammer a wallet that is down every half second."""
    q = sqlite_rig.queue()
    sqlite_rig.seed_wins(q, 8)
    sqlite_rig.wallet.fail["win"] = "error"
    sqlite_rig.clock.advance(1.0)
    report = q.replay(10, due_only=True)
    assert (report.failed, report.remaining) == (5, 8)
    assert q.replay(10, due_only=True).replayed == 0  # nothing is due again at once
    sqlite_rig.clock.advance(2.0)
    assert q.replay(10, due_only=True).replayed == 5  # due again after the backoff
